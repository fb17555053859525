"""Signal storms: a real ``tiered run`` hit by SIGTERM, SIGINT and SIGHUP at random.

Each trial starts ``python -m tiered run tests.daemons.storm_daemon:runtime``
(eight drivers in four tiers whose hooks print what they do and take a
seeded random while; see tests/daemons/storm_daemon.py) on one of the three
backends, waits until its first driver begins (in half the trials: until it
is up), then sends one to six real signals, SIGTERM, SIGINT and SIGHUP in
random order, at random moments: while the tiers start, while it runs or
reloads, while it stops.  A trial that sent no SIGTERM or SIGINT ends with a
SIGTERM.  In one trial of four, a driver's ``stop`` hangs until its
``stop_timeout`` ends it.

Whatever the storm, the daemon:

- exits, with status 0 (a clean stop) or 1 (a stop that failed, timed out or
  was cut short by a second SIGINT, which stderr explains), and no traceback;
- stops every driver whose ``initialize`` completed exactly once, no other
  driver, tiers in reverse order; reloads only while it runs;
- exits within its stop timeouts from the first SIGTERM or SIGINT: every
  tier's ``stop_timeout``, plus a reload in flight, plus a fixed slack for
  the interpreter to exit on a loaded machine.

``make test`` runs 10 trials, ``make soak`` 100.  A trial's seed fixes the
daemon's delays and the storm (which signals, when); the timing of a real
process is still the machine's, which is the point.  Set
``TIERED_STORM_SEED`` to shift every trial's seed and explore other storms.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from dataclasses import dataclass

import pytest

from daemons.storm_daemon import DRIVERS, HOOK_SECONDS
from support.daemon import Daemon, tiered_command
from support.sizes import SOAK, size

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX signals and subprocesses"
)

TARGET = "tests.daemons.storm_daemon:runtime"
BACKENDS = ("asyncio", "uvloop", "trio")
TRIALS = size(10, 100)
BASE_SEED = int(os.environ.get("TIERED_STORM_SEED", "0"))
STOP_TIMEOUT = 0.5
TIERS = 1 + max(tier for tier, _ in DRIVERS.values())
#: what the interpreter may take to exit, beyond the stop timeouts, on a
#: loaded two-core machine
SLACK = 8.0
#: the longest a daemon may take, from the first stopping signal to its exit
EXIT_BOUND = TIERS * (STOP_TIMEOUT + HOOK_SECONDS["reload"]) + SLACK
#: signals a storm draws from: SIGHUP as often as the two stopping signals
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGHUP)


@dataclass(frozen=True)
class Storm:
    """One trial: the backend, the daemon's seed, the signals and their moments."""

    seed: int
    backend: str
    hang: str | None
    #: the storm begins once the daemon is up, or as its first driver begins
    when_up: bool
    #: (seconds to wait, then the signal to send)
    signals: tuple[tuple[float, signal.Signals], ...]

    @classmethod
    def draw(cls, trial: int) -> Storm:
        seed = BASE_SEED + trial
        rng = random.Random(f"storm:{seed}")
        backend = BACKENDS[seed % len(BACKENDS)]
        hang = rng.choice(sorted(DRIVERS)) if rng.random() < 0.25 else None
        when_up = rng.random() < 0.5
        count = rng.randint(1, 6)
        signals = tuple(
            (rng.choice((0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.4))), sig)
            for sig in (rng.choice(SIGNALS) for _ in range(count))
        )
        return cls(seed, backend, hang, when_up, signals)

    def __str__(self) -> str:
        shown = ", ".join(f"+{t:.3f}s {s.name}" for t, s in self.signals)
        return (
            f"seed {self.seed} on {self.backend}"
            f"{f', stop of {self.hang} hangs' if self.hang else ''}, from "
            f"{'up' if self.when_up else 'the first init'}: {shown}"
        )


def events(lines: list[str]) -> list[tuple[str, str, str]]:
    """The daemon's ``HOOK NAME [done|interrupted]`` lines as (hook, name, end)."""
    found = []
    for line in lines:
        parts = line.split()
        if 2 <= len(parts) <= 3 and parts[1] in DRIVERS:
            found.append((parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    return found


@dataclass
class Trial:
    """What the daemon printed and did in one storm."""

    status: int
    stop_asked_at: float
    exited_at: float
    stdout: list[str]
    stderr: list[str]
    sent: list[str]


def run_storm(storm: Storm) -> Trial:
    env = {"STORM_SEED": str(storm.seed), "STORM_STOP_TIMEOUT": str(STOP_TIMEOUT)}
    if storm.hang:
        env["STORM_HANG"] = storm.hang
    command = tiered_command("run", TARGET, "--backend", storm.backend)
    sent: list[str] = []
    with Daemon(command, env=env) as d:
        # the signal handlers are in place before the first driver begins
        d.wait_for("stdout", lambda line: line.startswith("init "))
        if storm.when_up:
            d.wait_for("stderr", "runtime 'storm' is up")
        stop_asked_at = 0.0
        for wait, sig in storm.signals:
            time.sleep(wait)
            if d.proc.poll() is not None:
                break
            d.signal(sig)
            sent.append(sig.name)
            if sig != signal.SIGHUP and not stop_asked_at:
                stop_asked_at = time.monotonic()
        if not stop_asked_at and d.proc.poll() is None:
            d.signal(signal.SIGTERM)
            sent.append("SIGTERM (to end it)")
            stop_asked_at = time.monotonic()
        status = d.wait(timeout=EXIT_BOUND + 30)
        exited_at = time.monotonic()
    return Trial(status, stop_asked_at, exited_at, d.stdout, d.stderr, sent)


def killed_late(status: int) -> str | None:
    """The signal that ended the process by its default action, if one did."""
    if status == 130:  # the command caught the KeyboardInterrupt
        return "SIGINT"
    if status < 0:
        return signal.Signals(-status).name
    return None


@pytest.mark.parametrize("trial", range(TRIALS))
def test_signal_storm(trial: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Random SIGTERM/SIGINT/SIGHUP: it exits in time, every started driver stopped once."""
    storm = Storm.draw(trial)
    t = run_storm(storm)
    if SOAK:  # one line per trial, to see what the storms did
        stopped = sum(
            1 for hook, _, end in events(t.stdout) if hook == "stop" and not end
        )
        with capsys.disabled():
            print(
                f"\nstorm {storm.seed} on {storm.backend}: sent {', '.join(t.sent)}; "
                f"exit {t.status} {t.exited_at - t.stop_asked_at:.2f}s after the "
                f"stop; {stopped} driver(s) stopped"
            )
    what = (
        f"storm {storm}\nsent: {', '.join(t.sent)}\nexit status {t.status}\n"
        "--- stdout\n" + "\n".join(t.stdout) + "\n--- stderr\n" + "\n".join(t.stderr)
    )
    took = t.exited_at - t.stop_asked_at
    assert took <= EXIT_BOUND, (
        f"exited {took:.2f}s after the stop, over {EXIT_BOUND}s\n{what}"
    )
    seen = events(t.stdout)
    initialized = {name for hook, name, end in seen if hook == "init" and end == "done"}
    stops = [name for hook, name, end in seen if hook == "stop" and not end]
    # every driver that completed initialize stopped exactly once, no other did
    assert sorted(stops) == sorted(initialized), what
    # each stop finished, one way or the other
    ended = [name for hook, name, end in seen if hook == "stop" and end]
    assert sorted(ended) == sorted(stops), what
    # tiers stop in reverse order: a tier's stops end before a lower tier's begin
    order = [
        (i, hook, name, end)
        for i, (hook, name, end) in enumerate(seen)
        if hook == "stop"
    ]
    for i, _, name, end in order:
        if not end:
            continue
        lower_began_before = [
            other
            for j, _, other, other_end in order
            if not other_end and j < i and DRIVERS[other][0] < DRIVERS[name][0]
        ]
        assert not lower_began_before, (
            f"{lower_began_before} began stopping before {name} of a higher tier "
            f"ended\n{what}"
        )
    # reloads happen only while running: none begins once stopping began
    first_stop = next((i for i, hook, _, end in order if not end), len(seen))
    late_reloads = [
        name
        for i, (hook, name, end) in enumerate(seen)
        if hook == "reload" and not end and i > first_stop
    ]
    assert not late_reloads, f"reload began while stopping: {late_reloads}\n{what}"
    # exit status: 0 for a clean stop, 1 when a stop failed, timed out or was
    # cut short, and then stderr says which driver
    interrupted_stops = [
        name for hook, name, end in seen if hook == "stop" and end == "interrupted"
    ]
    late = killed_late(t.status)
    if late is not None:
        # The command ignores SIGHUP outside serve(), so a late SIGHUP never
        # kills it.  SIGTERM and SIGINT it ignores once serve() returns; one
        # that lands in the short span before (the report being written, the
        # event loop closing) still ends the process by its default action,
        # a known weakness: the checks above show every driver had stopped.
        assert late in ("SIGTERM", "SIGINT"), what
        assert late in [name.split()[0] for name in t.sent], what
    else:
        assert t.status == (1 if interrupted_stops else 0), what
    if t.status == 1:
        failures = [line for line in t.stderr if line.startswith("tiered: ")]
        assert failures, what
        for name in interrupted_stops:
            assert any(f"driver '{name}'" in line for line in failures), what
    text = "\n".join(t.stderr)
    assert "Traceback" not in text, what
    assert "Exception ignored" not in text, what
