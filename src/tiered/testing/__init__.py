"""Helpers for testing a daemon built on tiered: faulty drivers, a recorder, a run.

- :class:`FaultyDriver`: a driver that is slow, fails, hangs or skips itself
  in the phase a test names, to exercise timeouts, rollback and shutdown;
  or whose background task crashes after start-up (``crash_after=``,
  ``crash_times=``), to exercise restarts.
- :class:`Recorder`: an ordered log of driver phases, with assertions that
  read like the contract (``assert_started_before``,
  ``assert_stopped_in_reverse``, ``assert_stopped_exactly_once``, and for
  restarts ``assert_restarted``, ``assert_stopped_once_per_life``,
  ``assert_never_running_without``).
- :func:`running`: run a runtime for the duration of a block, safely across
  the ``yield`` of an async fixture.

This module imports only anyio and tiered, so it works with any test runner.
The pytest fixtures (``tiered_run``, ``tiered_runtime``, ``tiered_recorder``)
live in :mod:`tiered.testing.pytest_plugin`, which pytest loads by itself
once tiered is installed.  ``docs/testing.md`` is the guide.

Example::

    from tiered.testing import FaultyDriver, Recorder

    async def test_a_hang_rolls_back(autojump_clock) -> None:
        recorder = Recorder()
        runtime = tiered.Runtime("t")  # 90 s timeouts: virtual with autojump_clock
        runtime.add(FaultyDriver("secrets", tier=0, recorder=recorder))
        runtime.add(FaultyDriver("storage", tier=1, hang_in="autostart", recorder=recorder))
        with pytest.raises(tiered.StartupError):
            async with runtime.run():
                pass
        recorder.assert_stopped_in_reverse()
        recorder.assert_stopped_exactly_once()
"""

from __future__ import annotations

from ._faults import FaultyDriver as FaultyDriver
from ._faults import InjectedFault as InjectedFault
from ._faults import SkipPhase as SkipPhase
from ._recorder import Event as Event
from ._recorder import Kind as Kind
from ._recorder import Phase as Phase
from ._recorder import Recorder as Recorder
from ._running import running as running

__all__ = [
    "Event",
    "FaultyDriver",
    "InjectedFault",
    "Kind",
    "Phase",
    "Recorder",
    "SkipPhase",
    "running",
]


def _fixup_module_metadata() -> None:
    # Reprs and tracebacks say tiered.testing.Recorder, not
    # tiered.testing._recorder.Recorder (as tiered/__init__.py does).
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("tiered.testing._"):
            obj.__module__ = "tiered.testing"


_fixup_module_metadata()
del _fixup_module_metadata
