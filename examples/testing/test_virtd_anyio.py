"""The same fixtures under anyio's pytest plugin instead of pytest-trio.

anyio runs a test marked ``anyio`` on the backend its ``anyio_backend``
fixture names; trio's options go with it, so trio's ``MockClock`` gives the
same virtual time as pytest-trio's ``autojump_clock``.  asyncio has no
virtual clock: a test that must also run there keeps its timeouts short.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import virtd
from trio.testing import MockClock

import tiered
from tiered.testing import FaultyDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio, on a clock that jumps ahead whenever every task is asleep."""
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@pytest.fixture
def tiered_runtime() -> tiered.Runtime:
    """virtd as it ships: what the ``tiered_run`` fixture runs for each test."""
    return virtd.build_runtime()


async def test_startup_takes_six_and_a_half_seconds(tiered_run: tiered.Run) -> None:
    """The report's times are virtual and exact, as under pytest-trio."""
    assert tiered_run.report.ready_at == pytest.approx(6.5)


async def test_a_hung_driver_fails_startup_after_90_seconds() -> None:
    """anyio.current_time() reads the virtual clock too."""
    hung = FaultyDriver("exporter", tier=3, hang_in="initialize")
    run = virtd.build_runtime(hung).run()
    start = anyio.current_time()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")
    assert info.group_contains(tiered.DriverTimeout)
    assert anyio.current_time() - start == pytest.approx(6.5 + 90 + 1)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_on_a_real_clock_keep_timeouts_short(anyio_backend: str) -> None:
    """On every backend, in real time: a hang with a 50 ms timeout."""
    runtime = tiered.Runtime("short", start_timeout=0.05)
    runtime.add(FaultyDriver("stuck", hang_in="initialize"))
    with pytest.raises(tiered.StartupError) as info:
        async with runtime.run():
            pytest.fail("start-up should have failed")
    assert info.group_contains(tiered.DriverTimeout)
