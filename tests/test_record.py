"""The read-only records (tiered/_record.py): what frozen dataclasses gave, still given.

``PlannedDriver``, ``Plan``, ``Failure`` and ``RunEvent`` were frozen
dataclasses; they are records now, so that a daemon's imports define no
dataclass.  Their behaviour as values must not have changed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _plan() -> tiered.Plan:
    runtime = tiered.Runtime("records")

    @runtime.driver(tier=0)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    @runtime.driver(requires=["storage"], after=(), optional=True)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    return runtime.check()


def test_planned_driver_repr_leaves_out_the_hidden_fields() -> None:
    """The repr is the dataclass's was: every field but ``spec`` and ``needs``."""
    qemu = _plan().drivers["qemu"]
    assert repr(qemu) == (
        "PlannedDriver(name='qemu', tier=1, requires=('storage',), optional=True, "
        "start_timeout=90.0, stop_timeout=90.0, inferred=True, after=(), "
        "restart=None)"
    )


def test_records_compare_by_their_shown_fields() -> None:
    """Two plans of equal declarations are equal, hidden fields aside; other types are not."""
    one, two = _plan(), _plan()
    assert one.drivers["qemu"] == two.drivers["qemu"]  # their specs differ
    assert one.drivers["qemu"].spec is not two.drivers["qemu"].spec
    assert hash(one.drivers["qemu"]) == hash(two.drivers["qemu"])
    assert one.drivers["qemu"] != one.drivers["storage"]
    assert one.drivers["qemu"] != ("qemu",)
    assert one == two


@pytest.mark.parametrize(
    "record",
    [
        tiered.Failure("storage", 1, "initialize", OSError("no disk")),
        tiered.RunEvent("driver", 0.5, "storage", 1, "running", None),
    ],
    ids=["Failure", "RunEvent"],
)
def test_records_are_read_only(record: object) -> None:
    """Assigning or deleting a field raises AttributeError naming it, as a frozen dataclass did."""
    with pytest.raises(AttributeError, match="cannot assign to field 'tier'"):
        record.tier = 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="cannot delete field 'tier'"):
        del record.tier  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        record.other = 1  # type: ignore[attr-defined]
    assert record.tier == 1  # type: ignore[attr-defined]


def test_planned_driver_is_read_only() -> None:
    qemu = _plan().drivers["qemu"]
    with pytest.raises(AttributeError, match="a PlannedDriver is read-only"):
        qemu.tier = 0  # type: ignore[misc]  # type checkers refuse it too
    assert qemu.tier == 1


def test_records_pickle_and_copy_with_every_field() -> None:
    """Pickling and copying keep every field, the hidden ones included."""
    failure = tiered.Failure("storage", 1, "stop", OSError("gone"))
    again = pickle.loads(pickle.dumps(failure))
    assert (again.driver, again.tier, again.phase) == ("storage", 1, "stop")
    assert isinstance(again.error, OSError)
    assert str(again.error) == "gone"
    event = tiered.RunEvent("restart", 2.0, "qemu", 2, 0.1, "restarting: x")
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.copy(event) == event
    assert copy.deepcopy(event) == event
    qemu = _plan().drivers["qemu"]
    copied = copy.copy(qemu)
    assert copied == qemu
    assert copied.spec is qemu.spec
    assert copied.needs == ("storage",)


def test_records_match_by_position() -> None:
    """``match`` takes the shown fields in order, as a dataclass's ``__match_args__``."""
    failure: object = tiered.Failure("storage", 1, "initialize", OSError("x"))
    matched = None
    match failure:
        case tiered.Failure(driver, tier, phase):
            matched = (driver, tier, phase)
    assert matched == ("storage", 1, "initialize")
    assert tiered.PlannedDriver.__match_args__[:2] == ("name", "tier")
    assert "spec" not in tiered.PlannedDriver.__match_args__


def test_run_event_defaults() -> None:
    event = tiered.RunEvent("state", 0.0)
    assert (event.driver, event.tier, event.value, event.detail) == (None,) * 4
    assert repr(event) == (
        "RunEvent(kind='state', time=0.0, driver=None, tier=None, value=None, "
        "detail=None)"
    )


def test_a_timeout_of_none_is_infinite_in_the_plan() -> None:
    runtime = tiered.Runtime("unbounded", start_timeout=None)

    @runtime.driver
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    assert runtime.check().drivers["storage"].start_timeout == math.inf


def test_a_daemon_defines_no_dataclass() -> None:
    """What a daemon imports (a Runtime, a run, serve()) defines no dataclass.

    Making a dataclass runs generated code at import; the records replaced
    them for that (docs/benchmarks.md).  ``Restart`` is a dataclass, as the
    contract says, but only a daemon that uses it imports it.
    """
    code = textwrap.dedent(
        """
        import dataclasses, sys
        import tiered
        tiered.Runtime, tiered.serve, tiered.Run
        found = sorted(
            f"{name}.{attr}"
            for name, module in list(sys.modules.items())
            if name.startswith("tiered")
            for attr, value in vars(module).items()
            if isinstance(value, type) and dataclasses.is_dataclass(value)
        )
        print(found, "tiered._restart" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] False"
    assert dataclasses.is_dataclass(tiered.Restart)


class _TaggedFailure(tiered.Failure):
    """A subclass that adds nothing, as a user might make."""


class _Annotated(tiered.RunEvent):
    """A subclass that adds a field and shows it."""

    __slots__ = ("source",)
    __match_args__ = (*tiered.RunEvent.__match_args__, "source")
    source: str

    def __init__(self, event: tiered.RunEvent, source: str) -> None:
        super().__init__(event.kind, event.time, event.driver, event.tier)
        object.__setattr__(self, "source", source)  # as a frozen dataclass's own init


def test_records_can_be_subclassed() -> None:
    """A subclass keeps its base's fields, may add its own, and pickles with them all."""
    tagged = _TaggedFailure("storage", 1, "stop", OSError("gone"))
    assert repr(tagged).startswith("_TaggedFailure(driver='storage', tier=1")
    assert tagged != tiered.Failure("storage", 1, "stop", tagged.error)
    again = pickle.loads(pickle.dumps(tagged))
    assert type(again) is _TaggedFailure
    assert (again.driver, again.phase) == ("storage", "stop")
    annotated = _Annotated(tiered.RunEvent("state", 1.0), "probe")
    assert repr(annotated).endswith("value=None, detail=None, source='probe')")
    assert copy.copy(annotated) == annotated
    with pytest.raises(AttributeError, match="cannot assign to field 'source'"):
        annotated.source = "other"  # type: ignore[misc]


def test_replace_makes_a_changed_copy() -> None:
    """``__replace__`` (``copy.replace`` from Python 3.13) changes fields, hidden ones kept."""
    event = tiered.RunEvent("restart", 2.0, "qemu", 2, 0.1, "in 0.1s")
    later = event.__replace__(time=3.0)
    assert (later.time, later.detail, event.time) == (3.0, "in 0.1s", 2.0)
    qemu = _plan().drivers["qemu"]
    moved = qemu.__replace__(tier=4)
    assert (moved.tier, moved.spec, moved.needs) == (4, qemu.spec, qemu.needs)
    with pytest.raises(TypeError):
        event.__replace__(nonsense=1)
