"""Run ``tiered run`` in a real subprocess and follow what it prints, line by line.

The tests wait for lines (``is up`` on stderr, ``stop a`` on stdout), never
for fixed delays: two reader threads collect the child's stdout and stderr as
they come, and :meth:`Daemon.wait_for` blocks until a matching line arrived,
with a timeout.  Every wait has a timeout, and leaving the ``with`` block kills
the child if it is still running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

__all__ = ["ROOT", "TIMEOUT", "Daemon", "child_env", "tiered_command"]

ROOT = Path(__file__).resolve().parent.parent.parent

#: The longest any single wait may take, in seconds.  Generous, since a
#: loaded two-core machine is slow; a passing test never waits this long.
TIMEOUT = 20.0

Stream = Literal["stdout", "stderr"]


def tiered_command(*args: str, script: bool = False) -> list[str]:
    """``python -m tiered ARGS``, or the installed ``tiered`` script if asked."""
    if script:
        return [str(Path(sys.executable).parent / "tiered"), *args]
    return [sys.executable, "-m", "tiered", *args]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without systemd or probe settings, plus ``extra``.

    Warnings are errors in the child too, as they are in the test suite.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_", "PROBE_"))
    }
    env["PYTHONWARNINGS"] = "error"
    env.update(extra or {})
    return env


class Daemon:
    """A ``tiered`` child process whose output is read as it comes.

    Example::

        with Daemon(tiered_command("run", TARGET, "--backend", "trio")) as d:
            d.wait_for("stderr", "is up")
            d.signal(signal.SIGTERM)
            assert d.wait() == 0
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.command = list(command)
        self.env = child_env(env)
        self.cwd = cwd
        self.lines: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers: list[threading.Thread] = []
        self._proc: subprocess.Popen[str] | None = None
        self.started_at = 0.0

    @property
    def proc(self) -> subprocess.Popen[str]:
        """The child process (once started)."""
        assert self._proc is not None, "the daemon was not started"
        return self._proc

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def __enter__(self) -> Self:
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        for name, stream in (
            ("stdout", self._proc.stdout),
            ("stderr", self._proc.stderr),
        ):
            reader = threading.Thread(
                target=self._read, args=(name, stream), daemon=True
            )
            reader.start()
            self._readers.append(reader)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self.proc
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def _read(self, name: Stream, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()

    def signal(self, signum: signal.Signals) -> None:
        """Send a real signal to the child."""
        self.proc.send_signal(signum)

    def wait_for(
        self,
        stream: Stream,
        match: str | Callable[[str], bool],
        *,
        count: int = 1,
        timeout: float = TIMEOUT,
    ) -> str:
        """Block until ``count`` lines of ``stream`` matched; return the last one.

        ``match`` is a substring of the line, or a predicate on it.  Fails the
        test, showing both streams, after ``timeout`` seconds or when the child
        exits first.
        """
        test = match if callable(match) else (lambda line: match in line)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines[stream] if test(line)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reading()):
                    msg = (
                        f"no {count} line(s) matching {match!r} on {stream} "
                        f"(exit status {self.proc.poll()})\n{self.output()}"
                    )
                    raise AssertionError(msg)
                self._changed.wait(timeout=min(left, 0.1))

    def _reading(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the child to exit and for its output to be read; its status."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            msg = f"the daemon did not exit within {timeout}s\n{self.output()}"
            raise AssertionError(msg) from None
        for reader in self._readers:
            reader.join(timeout=timeout)
        return status

    @property
    def stdout(self) -> list[str]:
        """Lines of stdout read so far."""
        with self._changed:
            return list(self.lines["stdout"])

    @property
    def stderr(self) -> list[str]:
        """Lines of stderr read so far."""
        with self._changed:
            return list(self.lines["stderr"])

    def output(self) -> str:
        """Both streams, for an assertion message."""
        return (
            "--- stdout\n"
            + "\n".join(self.stdout)
            + "\n--- stderr\n"
            + "\n".join(self.stderr)
        )
