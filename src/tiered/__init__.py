"""tiered: start, supervise and stop the drivers of an async daemon.

Drivers of one tier initialize concurrently and a barrier separates tiers
(or, with ``schedule="dependencies"``, each driver starts as soon as what it
requires is up); start is transactional, stop runs in reverse, a driver that
fails after start-up can be restarted with its dependents.  Runs on asyncio,
uvloop and trio through anyio.  The documentation lives in ``docs/`` of the
source tree.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own would cost an import; type checkers know
if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
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
del TYPE_CHECKING

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

#: where each public name lives: ``import tiered`` itself imports none of them,
#: so a command that needs only one corner (``tiered probe``, ``tiered check``)
#: does not pay for the rest (tests/test_imports.py, docs/benchmarks.md)
_WHERE = {
    "ChainLink": "._report",
    "ConfigError": "._exceptions",
    "Context": "._context",
    "DependencyError": "._exceptions",
    "Driver": "._driver",
    "DriverHandle": "._driver",
    "DriverRecord": "._report",
    "DriverTimeout": "._exceptions",
    "Failure": "._exceptions",
    "Plan": "._plan",
    "PlannedDriver": "._plan",
    "Report": "._report",
    "Restart": "._restart",
    "Run": "._run",
    "RunEvent": "._journal",
    "Runtime": "._runtime",
    "ShutdownError": "._exceptions",
    "Skip": "._exceptions",
    "StartupError": "._exceptions",
    "TierRecord": "._report",
    "TieredError": "._exceptions",
    "UsageError": "._exceptions",
    "aserve": "._serve",
    "serve": "._serve",
}


def __getattr__(name: str) -> object:
    # PEP 562: the first use of tiered.X imports the module that defines it
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'tiered' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    # reprs and tracebacks say tiered.StartupError, not
    # tiered._exceptions.StartupError (as trio does; tests/test_public.py)
    if getattr(value, "__module__", "").startswith("tiered._"):
        value.__module__ = "tiered"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
