"""The virtualization-host demo (issue 4): libvirt's restart race, measured.

Flat mode (every driver in one tier) must kill a guest in a large share of
restarts, as libvirtd did in about 40% of them; tiered mode in none.  The demo
runs for real: guests are processes, delays are real sleeps.  No guest may
outlive the demo, whatever ends it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tiered.demo import MARKER, _main, guest_pids, main
from tiered.demo import _drivers as drivers
from tiered.demo import _guests as guests_module

if TYPE_CHECKING:
    import tiered

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="the demo finds guests in /proc"
)

SEED = 4


def demo(*args: str) -> subprocess.Popen[str]:
    """Start ``main(args)`` in a new interpreter."""
    code = f"import sys; from tiered.demo import main; sys.exit(main({list(args)!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 50) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the bug
        proc.kill()
        proc.communicate()
        raise
    return out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def wait_for_guests(pid: int, count: int, timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = guest_pids(pid)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    pytest.fail(f"the demo (pid {pid}) never had {count} guests running")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_flat_mode_kills_guests_in_a_large_share_of_restarts(
    backend: str, tmp_path: Path
) -> None:
    """The race of the seed: a guest killed in some restarts, neither never nor always."""
    proc = demo(
        "--mode", "flat", "--restarts", "30", "--json", "--seed", str(SEED),
        "--backend", backend, "--state-dir", str(tmp_path),
    )  # fmt: skip
    out, err = finish(proc)
    assert proc.returncode == 0, err
    [result] = json_lines(out)
    assert result["mode"] == "flat"
    assert result["restarts"] == 30
    assert 0.15 <= result["restarts_with_kills"] / 30 <= 0.80, result
    assert result["domains_killed"] >= result["restarts_with_kills"]
    assert guest_pids(proc.pid) == []


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_tiered_mode_never_kills_a_guest(backend: str, tmp_path: Path) -> None:
    """Hypervisors in tier 2 reconnect after every pool of tier 1 is active."""
    proc = demo(
        "--mode", "tiered", "--restarts", "15", "--json", "--seed", str(SEED),
        "--backend", backend, "--state-dir", str(tmp_path),
    )  # fmt: skip
    out, err = finish(proc)
    assert proc.returncode == 0, err
    [result] = json_lines(out)
    assert result == {
        "mode": "tiered",
        "restarts": 15,
        "restarts_with_kills": 0,
        "domains_killed": 0,
        "startup_median_s": result["startup_median_s"],
    }
    assert 0 < result["startup_median_s"] < 1.0
    assert guest_pids(proc.pid) == []


def test_json_lines_have_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --mode, --json prints one line per mode and nothing else."""
    assert main(["--restarts", "2", "--json"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["mode"] for line in lines] == ["tiered", "flat"]
    for line in lines:
        assert set(line) == {
            "mode",
            "restarts",
            "restarts_with_kills",
            "domains_killed",
            "startup_median_s",
        }
        assert line["restarts"] == 2
        assert isinstance(line["startup_median_s"], float)


def test_default_run_shows_the_start_the_report_and_both_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --mode: a live tiered start, its report, then both modes side by side."""
    svg = tmp_path / "timeline.svg"
    state = tmp_path / "state"
    assert main(["--restarts", "3", "--svg", str(svg), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    # the live view (plain lines: stdout is not a terminal here)
    assert "tier 0 starts: secrets, network, nwfilter, nodedev, interface" in out
    assert "tier 1 starts: storage" in out
    assert "tier 2 starts: qemu, lxc" in out
    assert "tier 2 is up" in out
    assert "pool 'ceph' (rbd) active" in out
    # the report
    assert "blame:" in out
    assert "critical chain:" in out
    assert "tier 2 up @" in out
    # the table, both modes side by side
    [header] = [line for line in out.splitlines() if line.startswith("mode ")]
    assert header.split() == ["mode", "tiered", "flat"]
    assert "restarts with kills" in out
    assert "median start-up" in out
    text = svg.read_text()
    assert text.startswith("<svg")
    assert "qemu" in text
    assert "storage" in text
    assert guest_pids(os.getpid()) == []
    # --state-dir keeps the state, and no pid file of a dead guest
    assert sorted(p.name for p in (state / "pools").glob("*.json")) == [
        "ceph.json",
        "default.json",
        "images.json",
    ]
    assert list((state / "run").glob("*.pid")) == []
    assert list((state / "pools").glob("*.active")) == []


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_guests_are_real_detached_processes(tmp_path: Path) -> None:
    """Each guest: its own session, the marker and its name in argv, a pid file."""
    guests_module.prepare_state(tmp_path)
    guests = guests_module.Guests(tmp_path)
    try:
        assert guests.ensure_running() == len(guests_module.DOMAINS)
        running = guests.running()
        assert set(running) == {d.name for d in guests_module.DOMAINS}
        for name, pid in running.items():
            argv = _argv(pid)
            assert MARKER in argv, (argv, Path(f"/proc/{pid}/stat").read_text())
            assert argv[argv.index(MARKER) + 1] == name
            assert (tmp_path / "run" / f"{name}.pid").read_text().strip() == str(pid)
            assert _session(pid) == pid  # start_new_session: leads its own
        assert guests.ensure_running() == 0
    finally:
        assert guests.kill_all() == len(guests_module.DOMAINS)
    assert guest_pids(os.getpid()) == []


def _session(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[3])  # state ppid pgrp session


@pytest.mark.parametrize(
    ("backend", "mode"), [("asyncio", "flat"), ("trio", "flat"), ("asyncio", None)]
)
def test_sigint_in_the_middle_leaves_no_guest(
    backend: str, mode: str | None, tmp_path: Path
) -> None:
    """Ctrl-C while the daemon restarts: exit 130, every guest killed."""
    args = ["--restarts", "1000", "--backend", backend, "--state-dir", str(tmp_path)]
    if mode is not None:
        args += ["--mode", mode]
    proc = demo(*args)
    wait_for_guests(proc.pid, len(guests_module.DOMAINS))
    time.sleep(0.7)  # a few restarts in
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc, timeout=15)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert guest_pids(proc.pid) == []


def test_sigterm_leaves_no_guest(tmp_path: Path) -> None:
    """SIGTERM kills the guests, then the demo dies of the signal."""
    proc = demo("--mode", "tiered", "--restarts", "1000", "--state-dir", str(tmp_path))
    wait_for_guests(proc.pid, len(guests_module.DOMAINS))
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    finish(proc, timeout=15)
    assert proc.returncode == -signal.SIGTERM
    assert guest_pids(proc.pid) == []


def test_failed_start_leaves_no_guest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A driver that fails: exit status 1, the error on stderr, the guests killed."""

    async def broken(self: drivers.Hypervisor, ctx: tiered.Context) -> None:
        raise RuntimeError("monitor socket refused")

    monkeypatch.setattr(drivers.Hypervisor, "autostart", broken)
    assert main(["--mode", "tiered", "--restarts", "2"]) == 1
    err = capsys.readouterr().err
    assert "failed to start" in err
    assert "monitor socket refused" in err
    assert guest_pids(os.getpid()) == []


def test_unexpected_error_leaves_no_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other error propagates, after the guests are killed."""

    def broken(columns: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(_main, "format_table", broken)
    with pytest.raises(OSError, match="disk full"):
        main(["--mode", "flat", "--restarts", "1"])
    assert guest_pids(os.getpid()) == []


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--help"], 0),
        (["--restarts", "-1"], 2),
        (["--mode", "ring"], 2),
        (["--backend", "curio"], 2),
    ],
)
def test_usage(
    argv: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """--help and usage errors return a status, they do not raise SystemExit."""
    assert main(argv) == status
    captured = capsys.readouterr()
    assert "--state-dir" in captured.out + captured.err


def test_flat_mode_declares_nothing_and_tiered_declares_everything(
    tmp_path: Path,
) -> None:
    """The plans: eight drivers in one tier, or in the RFC's three tiers."""
    flat = drivers.build_runtime(drivers.Host(tmp_path, SEED, "flat")).check()
    assert len(flat.tiers) == 1
    assert len(flat.tiers[0]) == 8
    plan = drivers.build_runtime(drivers.Host(tmp_path, SEED, "tiered")).check()
    assert plan.tiers == (
        ("secrets", "network", "nwfilter", "nodedev", "interface"),
        ("storage",),
        ("qemu", "lxc"),
    )
    assert plan.drivers["storage"].requires == ("secrets",)
    assert plan.drivers["qemu"].requires == ("storage", "network")


def test_tiered_demo_command_runs_the_demo() -> None:
    """`python -m tiered demo ...` (what `make demo` runs) reaches the demo."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiered",
            "demo",
            "--mode",
            "tiered",
            "--restarts",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["mode"] == "tiered"
    assert data["restarts"] == 2
    assert data["restarts_with_kills"] == 0
