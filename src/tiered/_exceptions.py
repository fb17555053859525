"""Every exception tiered raises, in one place, and the record of one failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, TypeVar

from ._record import Record, init

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DependencyError",
    "DriverTimeout",
    "Failure",
    "ShutdownError",
    "Skip",
    "StartupError",
    "TieredError",
    "UsageError",
    "describe",
    "public",
]

T = TypeVar("T")


def public(obj: T) -> T:
    """Mark a public name: reprs and tracebacks say ``tiered.X``, as trio's do.

    Set where the name is defined, so it holds before anybody touched
    ``tiered.X`` (whose lookup is lazy: tiered/__init__.py).
    """
    obj.__module__ = "tiered"
    return obj


@public
class TieredError(Exception):
    """Base class of every error tiered raises."""


@public
class ConfigError(TieredError, ValueError):
    """Raised when the declared drivers do not form a valid plan.

    It is raised before any driver starts: by the declaration itself when the
    mistake is visible there (a sync hook, a negative tier), otherwise by
    :meth:`Runtime.check` and :meth:`Runtime.run`.
    """


@public
class DependencyError(TieredError, LookupError):
    """Raised when a driver value is looked up that may not or cannot be had.

    ``ctx.get()`` raises it for a driver that is not in ``requires``;
    ``run.get()`` for a name that is not a driver of the run, or a driver
    that is not running (restarting, failed, skipped).  It is also the error
    of a required driver whose requirement failed or was skipped.
    """


@public
class UsageError(TieredError, RuntimeError):
    """Raised when tiered's API is used in the wrong state or order.

    Entering a run twice, running a runtime while it already runs, declaring
    a driver on a runtime that has run, or calling ``ctx.start_soon()`` from
    ``stop``.
    """


@public
class DriverTimeout(TieredError, TimeoutError):
    """Raised when a driver hook did not finish within its timeout."""


@public
class Failure(Record):
    """One driver's failure, as :class:`StartupError` and :class:`ShutdownError` hold it.

    Read these rather than the notes' text: ``serve()``, the command line
    and :mod:`tiered.asgi` do.

    Attributes:
        driver: the driver's name.
        tier: its tier.
        phase: ``"initialize"``, ``"autostart"``, ``"stop"``, ``"reload"`` or
            ``"background"`` (a background task that raised).
        error: the exception, as the hook raised it (a
            :class:`DriverTimeout` for a timeout).
    """

    __slots__ = ("driver", "error", "phase", "tier")
    __match_args__ = ("driver", "tier", "phase", "error")
    driver: str
    tier: int
    phase: str
    error: BaseException

    def __init__(
        self, driver: str, tier: int, phase: str, error: BaseException
    ) -> None:
        init(self, "driver", driver)
        init(self, "tier", tier)
        init(self, "phase", phase)
        init(self, "error", error)

    def describe(self) -> str:
        """``driver 'storage' (tier 1), phase initialize: OSError: ...``."""
        return (
            f"driver {self.driver!r} (tier {self.tier}), phase {self.phase}: "
            f"{describe(self.error)}"
        )


def describe(exc: BaseException) -> str:
    """``"Type: message"`` of ``exc``, even when its ``__str__`` raises."""
    try:
        text = str(exc)
    except Exception:  # a user's exception whose __str__ is broken
        text = "<str() of this exception raised>"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class _FailureGroup(ExceptionGroup[Exception], TieredError):
    """What StartupError and ShutdownError share: the failures as data."""

    failures: tuple[Failure, ...]

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[Exception],
        failures: Sequence[Failure] = (),
    ) -> Self:
        self = super().__new__(cls, message, exceptions)
        self.failures = tuple(failures)
        return self

    def __init__(
        self,
        message: str,
        exceptions: Sequence[Exception],
        failures: Sequence[Failure] = (),
    ) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> Self:  # type: ignore[override]
        # keep the class, and the failures of the exceptions kept, when the
        # group is split or filtered (``except*``)
        kept = {id(e) for e in excs}
        failures = [f for f in self.failures if id(f.error) in kept]
        return type(self)(self.message, excs, failures)


@public
class StartupError(_FailureGroup):
    """Raised when a required driver failed, so the run did not start.

    Every driver whose ``initialize`` had completed was stopped before this is
    raised.  It holds one exception per failed driver, each with a PEP 678
    note naming the driver, its tier and the phase (when the exception can
    take notes), and ``failures``, the same as :class:`Failure` records.

    Example::

        try:
            async with runtime.run() as run:
                ...
        except* tiered.DriverTimeout as group:  # only the timeouts
            for failure in group.failures:
                print(failure.driver, failure.phase)  # pool autostart
    """


@public
class ShutdownError(_FailureGroup):
    """Raised after every driver was stopped, when some of them failed.

    A failing ``stop`` never keeps another driver from stopping.  The group
    holds one exception per failure, each noted with driver, tier and phase
    (``stop``, or ``background`` for a background task that crashed and so
    stopped the run), and ``failures``, the same as :class:`Failure` records.
    """


@public
class Skip(Exception):
    """Raised by a driver hook to skip the driver instead of failing.

    The counterpart of libvirt's ``VIR_DRV_STATE_INIT_SKIPPED``: the driver
    does not apply here (no hardware, feature disabled).  The run goes on;
    drivers that require a skipped driver are skipped if optional and fail
    the start-up otherwise.  It is for start-up (``initialize`` and
    ``autostart``): raised from ``stop`` or ``reload`` it is an error.

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
