"""``tiered probe PATH [--ready | --live]``: read a status file, answer with a status.

Made for Kubernetes exec probes, which run it every few seconds: it imports
nothing but the status file's reader (no anyio, no runtime) and opens no
socket.  Exit status 0 when the file says the daemon is ready (``--ready``,
the default) or live (``--live``) and its process is alive; 1 otherwise, with
one line on stdout saying why.  See docs/cli.md.
"""

from __future__ import annotations

import os
import sys
import time

from ._status import StatusError, read_status

TYPE_CHECKING = False  # not typing's: the probe need not import typing
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["probe", "verdict"]

#: Drivers named in a "not ready" line; the rest are counted.
_MAX_NAMED = 10


def verdict(path: str | os.PathLike[str], *, live: bool = False) -> str | None:
    """None when the probe passes; otherwise the one line that says why.

    Args:
        path: the status file.
        live: probe liveness (the file says ``live`` and its process is
            alive) instead of readiness (it says ``ready``, and the process is
            alive).
    """
    try:
        status = read_status(path)
    except StatusError as exc:
        return str(exc)
    pid: int = status["pid"]
    if not _alive(pid):
        age = time.time() - status["updated"]
        return (
            f"stale: pid {pid} is gone (state {status['state']}, "
            f"updated {age:.1f}s ago)"
        )
    if live:
        return None if status["live"] else _not_live(status)
    return None if status["ready"] else _not_ready(status)


def _not_ready(status: dict[str, Any]) -> str:
    line = f"not ready: state {status['state']}"
    waiting = [
        f"{name} ({driver})"
        for name, driver in status["drivers"].items()
        if driver != "running"
    ]
    if waiting:
        named = ", ".join(waiting[:_MAX_NAMED])
        more = len(waiting) - _MAX_NAMED
        line += f"; not running: {named}" + (f", and {more} more" if more > 0 else "")
    return line


def _not_live(status: dict[str, Any]) -> str:
    line = f"not live: state {status['state']}"
    failed = [name for name, s in status["drivers"].items() if s == "failed"]
    if failed:
        named = ", ".join(failed[:_MAX_NAMED])
        more = len(failed) - _MAX_NAMED
        line += f"; failed: {named}" + (f", and {more} more" if more > 0 else "")
    return line


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks, sends nothing)."""
    if sys.platform == "win32":  # pragma: no cover - os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    except (OverflowError, OSError):  # no such pid can exist
        return False
    return True


def probe(
    path: str | os.PathLike[str], *, live: bool = False, out: TextIO | None = None
) -> int:
    """Run the probe: 0 when it passes, 1 after printing why it does not."""
    line = verdict(path, live=live)
    if line is None:
        return 0
    # one line, whatever names the file holds
    line = line.replace("\r", "\\r").replace("\n", "\\n")
    print(line, file=sys.stdout if out is None else out, flush=True)
    return 1
