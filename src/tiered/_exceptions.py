"""Every exception tiered raises, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DependencyError",
    "DriverTimeout",
    "ShutdownError",
    "Skip",
    "StartupError",
    "TieredError",
    "UsageError",
]


class TieredError(Exception):
    """Base class of every error tiered raises."""


class ConfigError(TieredError, ValueError):
    """Raised when the declared drivers do not form a valid plan.

    It is raised before any driver starts: by the declaration itself when the
    mistake is visible there (a sync hook, a negative tier), otherwise by
    :meth:`Runtime.check` and :meth:`Runtime.run`.
    """


class DependencyError(TieredError, LookupError):
    """Raised when a driver value is looked up that may not or cannot be had.

    ``ctx.get()`` raises it for a driver that is not in ``requires``;
    ``run.get()`` for a name that is not a driver of the run, or a driver
    that is not running.  It is also the error of a required driver whose
    requirement failed or was skipped.
    """


class UsageError(TieredError, RuntimeError):
    """Raised when tiered's API is used in the wrong state or order.

    Entering a run twice, running a runtime while it already runs, declaring
    a driver on a runtime that has run, or calling ``ctx.start_soon()`` from
    ``stop``.
    """


class DriverTimeout(TieredError, TimeoutError):
    """Raised when a driver hook did not finish within its timeout."""


class StartupError(ExceptionGroup[Exception], TieredError):
    """Raised when a required driver failed, so the run did not start.

    Every driver whose ``initialize`` had completed was stopped before this is
    raised.  It holds one exception per failed driver, each with a PEP 678
    note naming the driver, its tier and the phase.

    Example::

        try:
            async with runtime.run() as run:
                ...
        except* tiered.DriverTimeout as group:  # only the timeouts
            for exc in group.exceptions:
                print(exc, exc.__notes__)  # ["driver 'pool' (tier 1), phase autostart"]
    """

    def derive(self, excs: Sequence[Exception]) -> Self:  # type: ignore[override]
        # keep the class when the group is split or filtered (``except*``)
        return type(self)(self.message, excs)


class ShutdownError(ExceptionGroup[Exception], TieredError):
    """Raised after every driver was stopped, when some of them failed.

    A failing ``stop`` never keeps another driver from stopping.  The group
    holds one exception per failure, each noted with driver, tier and phase
    (``stop``, or ``background`` for a background task that crashed and so
    stopped the run).
    """

    def derive(self, excs: Sequence[Exception]) -> Self:  # type: ignore[override]
        return type(self)(self.message, excs)


class Skip(Exception):
    """Raised by a driver hook to skip the driver instead of failing.

    The counterpart of libvirt's ``VIR_DRV_STATE_INIT_SKIPPED``: the driver
    does not apply here (no hardware, feature disabled).  The run goes on;
    drivers that require a skipped driver are skipped if optional and fail
    the start-up otherwise.

    Example::

        @runtime.driver(tier=2, optional=True)
        async def kvm(ctx: tiered.Context) -> AsyncIterator[str]:
            if not await anyio.Path("/dev/kvm").exists():
                raise tiered.Skip("/dev/kvm is missing")
            yield "kvm"

    Args:
        reason: why the driver skipped itself; shown in logs and the report.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        # a str in the report even if a caller passed something else
        self.reason = reason if isinstance(reason, str) else str(reason)
