"""The status file (tiered/_status.py) and ``tiered probe`` (tiered/_probe.py).

``tiered probe PATH [--ready | --live]`` runs in real processes, against files
written by ``StatusFile``: exit status 0 when the file says ready (or live)
and its process is alive, 1 with one line on stdout saying why, 2 for a usage
error (argparse's line on stderr).  The stale case is a file written by a
process that then exited.  The writer is checked for atomicity against a
reader in another process, and for never raising an ``OSError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import typing
from typing import TYPE_CHECKING, Any

import pytest

from support.daemon import ROOT, TIMEOUT, child_env, tiered_command
from tiered._report import Status
from tiered._status import (
    DRIVER_STATUSES,
    STATES,
    StatusError,
    StatusFile,
    StatusFileMissing,
    read_status,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the probe checks the pid with os.kill(pid, 0)"
)

STARTING = {"secrets": "running", "storage": "starting", "qemu": "pending"}
RUNNING = {"secrets": "running", "storage": "running", "qemu": "running"}


def probe(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tiered probe ARGS`` and collect what it printed."""
    return subprocess.run(
        tiered_command("probe", *map(str, args)),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def verdict(result: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """The exit status and the one line on stdout (nothing on stderr)."""
    assert result.stderr == ""
    assert result.stdout.count("\n") == (result.returncode != 0)
    return result.returncode, result.stdout.rstrip("\n")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the status file goes (not written yet)."""
    return tmp_path / "status.json"


def write(
    path: Path, state: str, drivers: dict[str, str], *, live: bool = True
) -> None:
    """Write the status of this process (alive) with StatusFile."""
    StatusFile(path, "virtd").write(
        state=state, ready=state == "running", live=live, drivers=drivers
    )


# -- the probe -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [(), ("--ready",), ("--live",)])
def test_a_running_daemon_is_ready_and_live(path: Path, mode: tuple[str, ...]) -> None:
    """state running, ready, live, pid alive: exit 0 and nothing printed."""
    write(path, "running", RUNNING)
    assert verdict(probe(path, *mode)) == (0, "")


@pytest.mark.parametrize("mode", [(), ("--ready",)])
def test_not_ready_names_the_drivers_not_running(
    path: Path, mode: tuple[str, ...]
) -> None:
    """Not ready: exit 1, the state and each driver not running with its status."""
    write(path, "starting", STARTING)
    assert verdict(probe(path, *mode)) == (
        1,
        "not ready: state starting; not running: storage (starting), qemu (pending)",
    )


def test_a_starting_daemon_is_live(path: Path) -> None:
    """A daemon that is starting is not ready, but live."""
    write(path, "starting", STARTING)
    assert verdict(probe(path, "--live")) == (0, "")


def test_not_ready_with_every_driver_running(path: Path) -> None:
    """A restart with every driver running: only the state is named."""
    write(path, "restarting", RUNNING)
    assert verdict(probe(path)) == (1, "not ready: state restarting")


def test_not_ready_counts_what_it_does_not_name(path: Path) -> None:
    """Past ten drivers not running, the line counts the rest."""
    write(path, "starting", {f"d{i}": "pending" for i in range(25)})
    named = ", ".join(f"d{i} (pending)" for i in range(10))
    assert verdict(probe(path)) == (
        1,
        f"not ready: state starting; not running: {named}, and 15 more",
    )


def test_not_live_names_the_state_and_the_failed_drivers(path: Path) -> None:
    """Not live (the run failed): exit 1, the state, and which drivers failed."""
    drivers = {"secrets": "stopped", "storage": "failed", "qemu": "cancelled"}
    write(path, "stopping", drivers, live=False)
    assert verdict(probe(path, "--live")) == (
        1,
        "not live: state stopping; failed: storage",
    )
    assert verdict(probe(path)) == (
        1,
        "not ready: state stopping; not running: secrets (stopped), "
        "storage (failed), qemu (cancelled)",
    )


def test_not_live_without_a_failed_driver(path: Path) -> None:
    """A run that failed with no driver marked failed: the state alone."""
    write(path, "stopped", dict.fromkeys(RUNNING, "stopped"), live=False)
    assert verdict(probe(path, "--live")) == (1, "not live: state stopped")


@pytest.mark.parametrize("mode", [(), ("--live",)])
def test_a_file_left_by_a_dead_process_is_stale(
    path: Path, mode: tuple[str, ...]
) -> None:
    """A file whose process exited: stale, with its pid, state and age."""
    code = (
        "import sys; from tiered._status import StatusFile; "
        "StatusFile(sys.argv[1], 'virtd').write(state='running', ready=True, "
        "live=True, drivers={'qemu': 'running'})"
    )
    writer = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=child_env(), timeout=TIMEOUT
    )
    assert writer.returncode == 0  # and the process is gone: run() reaped it
    pid = read_status(path)["pid"]
    assert pid == json.loads(path.read_text())["pid"] != os.getpid()
    status, line = verdict(probe(path, *mode))
    assert status == 1
    match = re.fullmatch(
        rf"stale: pid {pid} is gone \(state running, updated (\d+\.\d)s ago\)", line
    )
    assert match is not None, line
    assert 0 <= float(match[1]) < TIMEOUT


def test_a_missing_file(path: Path) -> None:
    """No file: exit 1 and ``missing:`` with its path."""
    assert verdict(probe(path)) == (1, f"missing: no status file {path}")
    assert verdict(probe(path, "--live")) == (1, f"missing: no status file {path}")


def test_an_unreadable_file(tmp_path: Path) -> None:
    """A path that cannot be read (a directory): exit 1 and ``unreadable:``."""
    assert verdict(probe(tmp_path)) == (1, f"unreadable: {tmp_path}: Is a directory")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "is not JSON (the file is empty)"),
        ('{"runtime": "virtd", "pid"', "is not JSON (Expecting ':' delimiter)"),
        ("\xff", "is not JSON (not UTF-8)"),
        ("[1, 2]", "is not a status file (not a JSON object)"),
        (
            '{"runtime": "virtd", "pid": 1}',
            "is not a status file (no state, ready, live, drivers, updated)",
        ),
    ],
    ids=["empty", "cut", "not-utf8-text", "array", "keys-missing"],
)
def test_a_file_that_is_not_a_status_file(path: Path, content: str, why: str) -> None:
    """Not JSON, or JSON that is no status file: exit 1 and ``invalid:``."""
    path.write_text(content, encoding="latin-1")
    assert verdict(probe(path)) == (1, f"invalid: {path} {why}")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("pid", "4242", 'pid is "4242", not a process id'),
        ("pid", 0, "pid is 0, not a process id"),
        ("pid", -1, "pid is -1, not a process id"),
        ("pid", True, "pid is true, not a process id"),
        ("ready", "yes", 'ready is "yes", not true or false'),
        ("drivers", ["qemu"], 'drivers is ["qemu"], not an object'),
        ("drivers", {"qemu": 1}, "the status of driver 'qemu' is 1, not a string"),
        ("updated", None, "updated is null, not a number"),
    ],
)
def test_a_value_of_the_wrong_type(path: Path, key: str, value: Any, why: str) -> None:
    """A key whose value has the wrong type: exit 1, the key and its value."""
    write(path, "running", RUNNING)
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    assert verdict(probe(path)) == (1, f"invalid: {path}: {why}")


def test_names_cannot_break_the_one_line(path: Path) -> None:
    """A driver name with a newline is escaped: the answer stays one line."""
    write(path, "starting", {"evil\nname": "pending"})
    assert verdict(probe(path)) == (
        1,
        "not ready: state starting; not running: evil\\nname (pending)",
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--ready", "--live"], "argument --live: not allowed with argument --ready"),
        (["--live", "--ready"], "argument --ready: not allowed with argument --live"),
        ([], "the following arguments are required: PATH"),
        (["--startup"], "unrecognized arguments: --startup"),
    ],
    ids=["ready-and-live", "live-and-ready", "no-path", "unknown-option"],
)
def test_bad_usage_exits_2(path: Path, args: list[str], complaint: str) -> None:
    """A usage mistake: status 2, argparse's usage and complaint on stderr."""
    write(path, "running", RUNNING)
    result = probe(*args, *([path] if args != [] else []))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: tiered")
    assert complaint in result.stderr


def test_the_probe_path_imports_only_what_it_needs(path: Path) -> None:
    """``tiered probe`` imports _cli, _probe and _status, not anyio nor the runtime."""
    # tiered/__init__.py imports the whole core eagerly: an empty package
    # stands in for it, so this checks the imports of the CLI's probe path
    write(path, "running", RUNNING)
    code = textwrap.dedent(
        f"""
        import json, sys, types
        package = types.ModuleType("tiered")
        package.__path__ = [{str(ROOT / "src" / "tiered")!r}]
        sys.modules["tiered"] = package
        before = set(sys.modules)
        from tiered._cli import main
        status = main(["probe", sys.argv[1]])
        print(json.dumps([status, sorted(set(sys.modules) - before)]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    status, modules = json.loads(out)
    assert status == 0
    imported = set(modules)
    assert {m for m in imported if m.startswith("tiered")} == {
        "tiered._cli",
        "tiered._probe",
        "tiered._status",
    }
    # argparse (and shutil behind it, with zlib, bz2, lzma): a plain probe
    # command line is read without it, and kubelet runs this often
    assert not imported & {
        "argparse",
        "anyio",
        "logging",
        "asyncio",
        "socket",
        "tempfile",
        "shutil",
    }


def test_the_probe_opens_no_socket(path: Path) -> None:
    """The probe makes no socket at all (audit hooks, PEP 578), ready or not."""
    code = textwrap.dedent(
        """
        import sys
        events = []
        sys.addaudithook(
            lambda event, args: event.startswith("socket.") and events.append(event)
        )
        from tiered._cli import main
        statuses = [main(["probe", sys.argv[1]]), main(["probe", sys.argv[1] + "x"])]
        print(statuses, events, file=sys.stderr)
        """
    )
    write(path, "running", RUNNING)
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert result.stderr == "[0, 1] []\n"


# -- the status file -------------------------------------------------------------


def test_the_file_holds_every_key(path: Path) -> None:
    """One JSON object: runtime, pid, state, ready, live, drivers, updated."""
    before = time.time()
    StatusFile(str(path), "virtd").write(
        state="starting", ready=False, live=True, drivers=STARTING
    )
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.count("\n") == 1
    data = json.loads(text)
    assert list(data) == [
        "runtime",
        "pid",
        "state",
        "ready",
        "live",
        "drivers",
        "updated",
    ]
    assert data["runtime"] == "virtd"
    assert data["pid"] == os.getpid()
    assert (data["state"], data["ready"], data["live"]) == ("starting", False, True)
    assert list(data["drivers"].items()) == list(STARTING.items())
    assert before <= data["updated"] <= time.time()
    assert read_status(path) == data


def test_a_write_replaces_the_file_and_leaves_no_temporary(path: Path) -> None:
    """Each write replaces the whole file; no temporary file is left beside it."""
    status = StatusFile(path, "virtd")
    status.write(state="starting", ready=False, live=True, drivers=STARTING)
    status.write(state="running", ready=True, live=True, drivers={"qemu": "running"})
    assert read_status(path)["drivers"] == {"qemu": "running"}
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_the_vocabulary() -> None:
    """The states and the driver statuses are the documented ones."""
    assert STATES == ("starting", "running", "restarting", "stopping", "stopped")
    assert set(DRIVER_STATUSES) == {
        "pending",
        "starting",
        "running",
        "restarting",
        "failed",
        "skipped",
        "cancelled",
        "stopped",
    }
    # the status file's list is the report's, written apart so that the
    # probe imports nothing but the status file's module
    assert typing.get_args(Status) == DRIVER_STATUSES


READER = """\
import json, os, sys
path, stop = sys.argv[1], sys.argv[2]
reads = invalid = 0
sizes = set()
while not os.path.exists(stop):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        continue
    reads += 1
    try:
        sizes.add(len(json.loads(raw)["drivers"]))
    except ValueError:
        invalid += 1
print(json.dumps({"reads": reads, "invalid": invalid, "sizes": sorted(sizes)}))
"""


def test_a_reader_never_sees_a_partial_file(path: Path, tmp_path: Path) -> None:
    """Thousands of writes of two sizes while another process reads: always valid JSON."""
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)],
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    status = StatusFile(path, "virtd")
    small = {"qemu": "starting"}
    large = {f"driver-{i:04}": "running" for i in range(2000)}  # about 50 KB
    try:
        deadline = time.monotonic() + 3.0
        writes = 0
        while writes < 2000 and time.monotonic() < deadline:
            status.write(
                state="starting",
                ready=False,
                live=True,
                drivers=large if writes % 2 else small,
            )
            writes += 1
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=TIMEOUT)
    result = json.loads(out)
    assert reader.returncode == 0
    assert result["invalid"] == 0
    assert result["reads"] >= 50, result  # the reader really overlapped the writes
    assert result["sizes"] == [1, 2000]
    assert [p.name for p in tmp_path.iterdir() if p.name != "stop"] == ["status.json"]


def test_a_thread_reading_meanwhile_never_sees_a_partial_file(path: Path) -> None:
    """The same with a reader thread of the daemon's own process."""
    status = StatusFile(path, "virtd")
    status.write(state="starting", ready=False, live=True, drivers={})
    done = threading.Event()
    errors: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                read_status(path)
            except StatusError as exc:
                errors.append(str(exc))
            reads += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1000):
            drivers = {f"d{j}": "running" for j in range(i % 7 * 100)}
            status.write(state="running", ready=True, live=True, drivers=drivers)
    finally:
        done.set()
        reader.join(timeout=TIMEOUT)
    assert errors == []
    assert reads > 0


def test_threads_writing_at_once_never_mix_their_files(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Writers in four threads share the temporary name, one at a time."""
    status = StatusFile(path, "virtd")
    seen: list[int | str] = []

    def write_many(size: int) -> None:
        drivers = {f"d{j}": "running" for j in range(size)}
        for _ in range(200):
            status.write(state="running", ready=True, live=True, drivers=drivers)
            try:
                seen.append(len(read_status(path)["drivers"]))
            except StatusError as exc:
                seen.append(str(exc))

    with caplog.at_level(logging.WARNING, logger="tiered"):
        writers = [
            threading.Thread(target=write_many, args=(size,))
            for size in (1, 300, 600, 900)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=TIMEOUT)
    assert set(seen) <= {1, 300, 600, 900}
    assert len(seen) == 800
    assert caplog.records == []
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_a_failed_write_warns_once_and_keeps_trying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No directory: no exception, one warning; the next write that can, does."""
    directory = tmp_path / "run"
    path = directory / "status.json"
    status = StatusFile(path, "virtd")
    with caplog.at_level(logging.WARNING, logger="tiered"):
        for _ in range(3):
            status.write(state="starting", ready=False, live=True, drivers=STARTING)
        [record] = caplog.records
        assert record.name == "tiered"
        assert record.levelno == logging.WARNING
        assert record.msg == "cannot write the status file %s: %s (will keep trying)"
        assert record.getMessage() == (
            f"cannot write the status file {path}: No such file or directory "
            "(will keep trying)"
        )
        directory.mkdir()
        status.write(state="running", ready=True, live=True, drivers=RUNNING)
        assert read_status(path)["state"] == "running"
        assert len(caplog.records) == 1
        # once it worked again, a new failure is news again
        path.unlink()
        directory.rmdir()
        status.write(state="stopping", ready=False, live=True, drivers=RUNNING)
        assert len(caplog.records) == 2


def test_read_status_errors() -> None:
    """read_status raises StatusFileMissing for no file, StatusError otherwise."""
    with pytest.raises(StatusFileMissing, match=r"^missing: no status file /nonexist"):
        read_status("/nonexistent/status.json")
    assert issubclass(StatusFileMissing, StatusError)
    with pytest.raises(StatusError, match=r"^unreadable: /: Is a directory$"):
        read_status("/")
