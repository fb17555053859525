"""``Restart``: when a driver that failed after start-up is started again.

The arithmetic is here, apart from the machinery that stops and starts
drivers (``_supervisor``), so it can be tested on its own: the k-th failure
within ``window`` seconds waits ``min(delay * 2**(k-1), max_delay)`` before
the restart; failures older than ``window`` are forgotten, so a driver that
ran well for a while starts from a short delay again (the trap of counters
that never reset, systemd#43813); more than ``max_restarts`` failures within
``window`` give up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ._checks import check_seconds
from ._exceptions import ConfigError, public

__all__ = ["Backoff", "Restart"]


@public
@dataclass(frozen=True, slots=True)
class Restart:
    """How a driver is restarted when it fails after start-up.

    A driver fails after start-up when one of its background tasks
    (``ctx.start_soon``) raises.  With a ``Restart``, the driver and every
    driver that requires it (transitively) are stopped, dependents first;
    after a delay the driver starts again, then its dependents.  A failure
    during start-up is never retried: start-up stays transactional.

    Like systemd's ``Restart=on-failure`` with ``RestartSteps``, or an
    Erlang/OTP supervisor's intensity and period.  ``restart="on-failure"``
    on a driver means ``Restart()``, these defaults.

    Example::

        @runtime.driver(tier=1, restart=tiered.Restart(max_restarts=5, window=300))
        async def storage(ctx: tiered.Context) -> AsyncIterator[Pools]:
            pools = await Pools.open()
            ctx.start_soon(pools.monitor)  # raises when the backend is lost
            yield pools
            await pools.close()

    Attributes:
        max_restarts: restarts allowed within ``window``; one failure more
            gives up, and the run stops as for a driver without ``restart``.
        window: seconds over which failures are counted; older ones are
            forgotten.  ``math.inf`` never forgets.
        delay: seconds before the first restart within ``window``; each
            further one waits twice as long as the one before.
        max_delay: the longest wait between a failure and its restart; at
            least ``delay`` (so ``Restart(delay=60)`` needs ``max_delay=60``
            or more).
    """

    max_restarts: int = 3
    window: float = 60.0
    delay: float = 0.1
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        n = self.max_restarts
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            msg = (
                f"Restart(max_restarts={n!r}): the number of restarts allowed "
                "within window is an integer >= 0"
            )
            raise ConfigError(msg)
        window = check_seconds(self.window, f"Restart(window={self.window!r})")
        delay = check_seconds(self.delay, f"Restart(delay={self.delay!r})", zero=True)
        top = check_seconds(
            self.max_delay, f"Restart(max_delay={self.max_delay!r})", zero=True
        )
        assert window is not None
        assert delay is not None
        assert top is not None
        if math.isinf(delay):
            msg = f"Restart(delay={self.delay!r}): the first delay must be finite"
            raise ConfigError(msg)
        if top < delay:
            msg = (
                f"Restart(delay={self.delay!r}, max_delay={self.max_delay!r}): "
                "max_delay caps the delay, so it must be at least delay"
            )
            raise ConfigError(msg)
        # floats from here on, so the arithmetic never meets a huge int
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "delay", delay)
        object.__setattr__(self, "max_delay", top)

    def delay_for(self, k: int) -> float:
        """Seconds before the ``k``-th restart within the window (k >= 1)."""
        try:
            # delay * 2**(k-1), exactly; ``2.0 ** (k - 1)`` raises OverflowError
            # from k = 1025 on, with any delay (tests/test_supervision.py::
            # test_the_delay_never_overflows)
            grown = math.ldexp(self.delay, k - 1)
        except OverflowError:  # past any finite max_delay: capped
            return self.max_delay
        return min(grown, self.max_delay)


def check_restart(value: object, name: str) -> Restart | None:
    """``restart=`` of a declaration: None, ``"on-failure"`` or a Restart."""
    if value is None or isinstance(value, Restart):
        return value
    if value == "on-failure":
        return Restart()
    msg = (
        f"driver {name!r} has restart={value!r}; use restart='on-failure' for "
        "the defaults, tiered.Restart(max_restarts=..., window=..., delay=..., "
        "max_delay=...) to choose, or None for no restart"
    )
    raise ConfigError(msg)


class Backoff:
    """One driver's failures within its window, across one run."""

    __slots__ = ("failures", "policy", "restarts")

    def __init__(self, policy: Restart) -> None:
        self.policy = policy
        self.failures: deque[float] = deque()
        self.restarts = 0

    def failed(self, now: float) -> float | None:
        """Record a failure at ``now``; the delay before the restart, or None to give up."""
        window = self.policy.window
        while self.failures and now - self.failures[0] > window:
            self.failures.popleft()
        self.failures.append(now)
        k = len(self.failures)
        if k > self.policy.max_restarts:
            return None
        return self.policy.delay_for(k)
