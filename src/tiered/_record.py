"""Read-only records: what a frozen dataclass gives, without importing dataclasses.

A daemon imports the plan, the journal and the exceptions at start-up, and
making a frozen dataclass runs code generated for it: four of them were
about a third of what tiered added to a daemon's imports (docs/benchmarks.md;
``dataclasses`` itself is imported by anyio anyway).  A record declares its fields as ``__slots__``, and
in ``__match_args__`` those its repr shows and its equality compares, in
order (type checkers read ``match`` positions from there); it sets them in
its own ``__init__`` with :func:`init`.  This base gives it equality, a
hash, a repr, pickling and copying, and refuses assignment as a frozen
dataclass does (tests/test_record.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self, dataclass_transform

__all__ = ["Record", "init"]

#: sets a field of a record, under its refusing ``__setattr__``
init = object.__setattr__


@dataclass_transform(frozen_default=True)  # type checkers: fields are read-only
class Record:
    """A frozen record whose fields are its ``__slots__``.

    A field of ``__slots__`` left out of ``__match_args__`` is left out of
    the repr, of equality and of the hash, as ``field(repr=False,
    compare=False)`` does.
    """

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # every slot along the hierarchy, a base's first: a subclass (of
        # Failure, say) may add fields, or none
        fields = tuple(
            name
            for klass in reversed(cls.__mro__)
            for name in vars(klass).get("__slots__", ())
        )
        unknown = set(cls.__match_args__) - set(fields)
        if unknown:  # a bug of ours: every shown field must be a slot
            msg = f"{cls.__name__}.__match_args__ names no slot: {sorted(unknown)}"
            raise TypeError(msg)
        type.__setattr__(cls, "_fields", fields)
        type.__setattr__(cls, "_shown", cls.__match_args__)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._shown)

    def __setattr__(self, name: str, value: object) -> None:
        msg = f"cannot assign to field {name!r}: a {type(self).__name__} is read-only"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> None:
        msg = f"cannot delete field {name!r}: a {type(self).__name__} is read-only"
        raise AttributeError(msg)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def __replace__(self, **changes: Any) -> Self:
        """``copy.replace(record, field=value)`` (Python 3.13), as a dataclass allows."""
        values = {f: getattr(self, f) for f in self._fields}
        values.update(changes)
        return type(self)(**values)

    def __reduce__(self) -> tuple[Any, ...]:
        # every field, hidden ones included, by keyword order = slot order
        return (_rebuild, (type(self), tuple(getattr(self, f) for f in self._fields)))


def _rebuild(cls: type[Record], values: tuple[Any, ...]) -> Record:
    """Unpickle or copy a record: its fields, set as its ``__init__`` would."""
    record = object.__new__(cls)
    for name, value in zip(cls._fields, values, strict=True):
        init(record, name, value)
    return record
