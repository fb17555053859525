"""The pytest plugin of tiered: fixtures that run a runtime for a test.

pytest loads it by itself once tiered is installed (entry point ``pytest11``,
name ``tiered``).  With plugin autoloading off, enable it with
``-p tiered.testing.pytest_plugin`` or, in the root ``conftest.py``,
``pytest_plugins = ["tiered.testing.pytest_plugin"]``.

Fixtures:

- ``tiered_runtime``: the :class:`tiered.Runtime` that ``tiered_run`` runs.
  Override it (in a ``conftest.py`` or a test module) to return yours.
- ``tiered_run``: the :class:`tiered.Run` of ``tiered_runtime``, up for the
  whole test and stopped at teardown.  An async fixture: use it from tests
  marked ``@pytest.mark.trio`` (pytest-trio) or ``@pytest.mark.anyio``
  (anyio's plugin).
- ``tiered_recorder``: a fresh :class:`tiered.testing.Recorder` per test.

Example::

    @pytest.fixture
    def tiered_runtime(tiered_recorder: Recorder) -> tiered.Runtime:
        return build_runtime(recorder=tiered_recorder)

    @pytest.mark.trio
    async def test_up(tiered_run: tiered.Run, autojump_clock: MockClock) -> None:
        assert tiered_run.get("storage").pools
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import Recorder, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._run import Run
    from .._runtime import Runtime

__all__ = ["tiered_recorder", "tiered_run", "tiered_runtime"]

_OVERRIDE = """\
the tiered_run fixture runs the runtime that the tiered_runtime fixture returns; \
define tiered_runtime in your conftest.py or test module, for example:

    @pytest.fixture
    def tiered_runtime() -> tiered.Runtime:
        return build_runtime()
"""


@pytest.fixture
def tiered_runtime() -> Runtime:
    """The runtime ``tiered_run`` runs: override this fixture to return yours.

    It is a fixture, so it can be parametrized (``@pytest.mark.parametrize(
    "tiered_runtime", [...])``) and can depend on others, like
    ``tiered_recorder``.
    """
    pytest.fail(_OVERRIDE, pytrace=False)


@pytest.fixture
async def tiered_run(tiered_runtime: Runtime) -> AsyncIterator[Run]:
    """A :class:`tiered.Run` of ``tiered_runtime``, up for the whole test.

    Setup returns once every tier is up; a failed start-up is an error of
    the test, with the :class:`tiered.StartupError`.  Teardown stops every
    driver; a failed stop, or a background task that failed during the test,
    is an error of the test at teardown (:class:`tiered.ShutdownError`).
    Built on :func:`tiered.testing.running`, so it works under pytest-trio
    (with ``autojump_clock``) and under anyio's plugin on every backend.
    """
    async with running(tiered_runtime) as run:
        yield run


@pytest.fixture
def tiered_recorder() -> Recorder:
    """A fresh :class:`tiered.testing.Recorder` for this test."""
    return Recorder()
