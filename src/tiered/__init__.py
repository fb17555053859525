"""tiered: start, supervise and stop the drivers of an async daemon.

Drivers of one tier initialize concurrently and a barrier separates tiers
(or, with ``schedule="dependencies"``, each driver starts as soon as what it
requires is up); start is transactional, stop runs in reverse, a driver that
fails after start-up can be restarted with its dependents.  Runs on asyncio,
uvloop and trio through anyio.  The documentation lives in ``docs/`` of the
source tree.
"""

from __future__ import annotations

from ._context import Context as Context
from ._driver import Driver as Driver
from ._driver import DriverHandle as DriverHandle
from ._exceptions import ConfigError as ConfigError
from ._exceptions import DependencyError as DependencyError
from ._exceptions import DriverTimeout as DriverTimeout
from ._exceptions import Failure as Failure
from ._exceptions import ShutdownError as ShutdownError
from ._exceptions import Skip as Skip
from ._exceptions import StartupError as StartupError
from ._exceptions import TieredError as TieredError
from ._exceptions import UsageError as UsageError
from ._journal import RunEvent as RunEvent
from ._plan import Plan as Plan
from ._plan import PlannedDriver as PlannedDriver
from ._report import ChainLink as ChainLink
from ._report import DriverRecord as DriverRecord
from ._report import Report as Report
from ._report import TierRecord as TierRecord
from ._restart import Restart as Restart
from ._run import Run as Run
from ._runtime import Runtime as Runtime
from ._serve import aserve as aserve
from ._serve import serve as serve

__all__ = [
    "ChainLink",
    "ConfigError",
    "Context",
    "DependencyError",
    "Driver",
    "DriverHandle",
    "DriverRecord",
    "DriverTimeout",
    "Failure",
    "Plan",
    "PlannedDriver",
    "Report",
    "Restart",
    "Run",
    "RunEvent",
    "Runtime",
    "ShutdownError",
    "Skip",
    "StartupError",
    "TierRecord",
    "TieredError",
    "UsageError",
    "aserve",
    "serve",
]

__version__ = "0.1.0.dev0"


def _fixup_module_metadata() -> None:
    # Reprs and tracebacks say tiered.StartupError, not
    # tiered._exceptions.StartupError (as trio does; tests/test_public.py).
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("tiered._"):
            obj.__module__ = "tiered"


_fixup_module_metadata()
del _fixup_module_metadata
