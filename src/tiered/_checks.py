"""The checks a declaration goes through, each written once.

Every check raises :class:`ConfigError` with a message that names what was
wrong (with ``!r``) and how to write it instead.  Declarations, the runtime's
defaults, ``ctx.extend_timeout()`` and :class:`Restart` all use the same
number check, so the same mistake gets the same answer everywhere
(tests/test_bad_inputs.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._exceptions import ConfigError

__all__ = [
    "MAX_TIER",
    "check_bool",
    "check_name",
    "check_seconds",
    "check_sequence",
    "check_tier",
]

#: the highest explicit tier: a typo like tier=1_000_000 would otherwise make
#: a plan of a million empty tiers (tests/test_bad_inputs.py)
MAX_TIER = 10_000


def check_name(name: object, what: str) -> str:
    """A driver name: a non-empty str without surrounding spaces."""
    if not isinstance(name, str) or not name or name != name.strip():
        msg = (
            f"{what}: driver name {name!r} is not valid; "
            "use a non-empty string without surrounding spaces, like name='storage'"
        )
        raise ConfigError(msg)
    return name


def check_tier(tier: object, name: str) -> int | None:
    """A tier: None (inferred) or an int from 0 to MAX_TIER."""
    if tier is None:
        return None
    if isinstance(tier, bool) or not isinstance(tier, int) or tier < 0:
        msg = (
            f"driver {name!r} has tier={tier!r}; a tier is an integer >= 0 "
            "(0 starts first), or None to infer it from requires"
        )
        raise ConfigError(msg)
    if tier > MAX_TIER:
        msg = (
            f"driver {name!r} has tier={tier!r}; tiers are small integers, at most "
            f"{MAX_TIER}: the plan holds every tier from 0 up to the highest, "
            "so number them 0, 1, 2, ... (or leave tier=None to infer it)"
        )
        raise ConfigError(msg)
    return tier


def check_seconds(
    value: object,
    shown: str,
    *,
    zero: bool = False,
    none: str | None = None,
    takes: bool = False,
) -> float | None:
    """A number of seconds > 0 (>= 0 with ``zero``), ``math.inf`` allowed.

    Args:
        value: what the user gave.
        shown: how the mistake reads in the message, e.g. ``"driver 'db'
            has start_timeout=0"`` or ``"db: ctx.extend_timeout(0)"``.
        zero: whether 0 is allowed.
        none: when None is allowed, what it means (for the message);
            otherwise None is refused.
        takes: phrase it as a call that ``takes`` a number of seconds.
    """
    if value is None and none is not None:
        return None
    seconds = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            msg = f"{shown}: more seconds than a float holds; use math.inf for no limit"
            raise ConfigError(msg) from None
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        if none == "no limit":
            tail = ", or None for no limit"
        elif none is not None:
            tail = f", math.inf for no limit, or None for {none}"
        else:
            tail = " (math.inf for no limit)"
        verb = " takes" if takes else "; it is"
        msg = f"{shown}{verb} a number of seconds {bound}{tail}"
        raise ConfigError(msg)
    return seconds


def check_bool(value: object, what: str) -> bool:
    """True or False, nothing truthy."""
    if not isinstance(value, bool):
        msg = f"{what}={value!r}; use True or False"
        raise ConfigError(msg)
    return value


def check_sequence(value: object, name: str, what: str) -> Sequence[object]:
    """``requires`` or ``after``: a sequence of drivers, not a lone string."""
    if isinstance(value, str):
        msg = (
            f"driver {name!r} has {what}={value!r}, a string; {what} is a "
            f"sequence of drivers: {what}=({value!r},)"
        )
        raise ConfigError(msg)
    if not isinstance(value, Sequence | set | frozenset):
        msg = (
            f"driver {name!r} has {what}={value!r}; {what} is a tuple of "
            "driver names, handles from @runtime.driver or Driver classes"
        )
        raise ConfigError(msg)
    return tuple(value)
