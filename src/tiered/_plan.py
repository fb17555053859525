"""Validation: declarations in, a ``Plan`` (or one ``ConfigError``) out.

Pure and synchronous.  Every problem found is reported at once, one per line,
each naming the drivers and tiers involved and how to fix it.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._driver import Driver, DriverHandle, Requirement, Spec
from ._exceptions import ConfigError, public
from ._record import Record, init

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ._restart import Restart

__all__ = ["Plan", "PlannedDriver", "did_you_mean"]


@public
class PlannedDriver(Record):
    """One driver of a :class:`Plan`: its tier and requirements resolved.

    Attributes:
        name: the driver's name.
        tier: its tier, inferred ones resolved.
        requires: the names of the drivers it requires.
        after: the names of the drivers it starts after (without needing
            them).
        optional: whether its failure is tolerated.
        start_timeout: seconds for ``initialize`` plus ``autostart``, the
            runtime's default applied; ``math.inf`` when unbounded.
        stop_timeout: seconds for ``stop``, the same way.
        restart: its :class:`Restart` policy, or None.
        inferred: true when the tier was inferred from ``requires`` and
            ``after``.
    """

    __slots__ = (
        "after",
        "inferred",
        "name",
        "needs",
        "optional",
        "requires",
        "restart",
        "spec",
        "start_timeout",
        "stop_timeout",
        "tier",
    )
    __match_args__ = (
        "name",
        "tier",
        "requires",
        "optional",
        "start_timeout",
        "stop_timeout",
        "inferred",
        "after",
        "restart",
    )
    name: str
    tier: int
    requires: tuple[str, ...]
    optional: bool
    #: seconds; ``math.inf`` when unbounded
    start_timeout: float
    stop_timeout: float
    #: true when the tier was inferred from ``requires``
    inferred: bool
    spec: Spec
    after: tuple[str, ...]
    restart: Restart | None
    #: ``requires`` then ``after``: what it waits for under the dependency
    #: schedule (the same tuple as ``requires`` when there is no ``after``)
    needs: tuple[str, ...]

    def __init__(
        self,
        name: str,
        tier: int,
        requires: tuple[str, ...],
        optional: bool,
        start_timeout: float,
        stop_timeout: float,
        inferred: bool,
        spec: Spec,
        after: tuple[str, ...] = (),
        restart: Restart | None = None,
        needs: tuple[str, ...] = (),
    ) -> None:
        init(self, "name", name)
        init(self, "tier", tier)
        init(self, "requires", requires)
        init(self, "optional", optional)
        init(self, "start_timeout", start_timeout)
        init(self, "stop_timeout", stop_timeout)
        init(self, "inferred", inferred)
        init(self, "spec", spec)
        init(self, "after", after)
        init(self, "restart", restart)
        init(self, "needs", needs)


@public
class Plan(Record):
    """A validated runtime: what :meth:`Runtime.check` returns.

    Making a plan is pure and synchronous: nothing starts.  ``tiered check``
    prints :meth:`to_text`, ``tiered graph`` :meth:`to_mermaid` or
    :meth:`to_dot`.

    Example::

        plan = runtime.check()  # raises ConfigError for an invalid runtime
        plan.tiers  # (('secrets', 'network'), ('storage',), ('qemu',))
        plan.drivers["storage"].requires  # ('secrets',)
        print(plan)  # the same text as `tiered check`

    Attributes:
        name: the runtime's name.
        tiers: driver names per tier, in start order; ``tiers[k]`` is tier
            ``k`` (empty where no driver has that tier).
        drivers: every driver by name, in declaration order.
    """

    __slots__ = ("drivers", "name", "tiers")
    __match_args__ = ("name", "tiers", "drivers")
    name: str
    tiers: tuple[tuple[str, ...], ...]
    drivers: Mapping[str, PlannedDriver]

    def __init__(
        self,
        name: str,
        tiers: tuple[tuple[str, ...], ...],
        drivers: Mapping[str, PlannedDriver],
    ) -> None:
        init(self, "name", name)
        init(self, "tiers", tiers)
        init(self, "drivers", drivers)

    def to_text(self) -> str:
        """Render the plan as ``tiered check`` prints it."""
        from ._plantext import plan_text  # only the command line renders plans

        return plan_text(self)

    def __str__(self) -> str:
        return self.to_text()

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: a box per tier, an arrow to each requirement.

        An ``after`` ordering is a dashed arrow.
        """
        from ._plantext import plan_mermaid

        return plan_mermaid(self)

    def to_dot(self) -> str:
        """A Graphviz digraph: a cluster per tier, an edge to each requirement.

        An ``after`` ordering is a dashed edge.
        """
        from ._plantext import plan_dot

        return plan_dot(self)


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names``, or nothing."""
    import difflib  # only on the error path: it costs an import of its own

    match = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def build_plan(
    runtime_name: str,
    owner: Any,
    specs: Sequence[Spec],
    start_timeout: float | None,
    stop_timeout: float | None,
) -> Plan:
    """Resolve requirements, infer tiers, check every rule; raise ConfigError."""
    problems: list[str] = []
    # Runtime refuses a second driver of the same name, so names are unique
    by_name = {spec.name: spec for spec in specs}
    requires: dict[str, tuple[str, ...]] = {}
    after: dict[str, tuple[str, ...]] = {}
    needs: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        name = spec.name
        required = requires[name] = (
            _edges(spec, "requires", by_name, owner, problems) if spec.requires else ()
        )
        if not spec.after:  # the common case, and ten thousand drivers feel it
            after[name] = ()
            needs[name] = required
            continue
        ordered = after[name] = _edges(spec, "after", by_name, owner, problems)
        needs[name] = required + ordered
        for both in set(ordered) & set(required):
            problems.append(
                f"{name} both requires and is after {both!r}; requires already "
                f"orders it, so remove {both!r} from after"
            )
    tiers = _assign_tiers(by_name, needs, problems)
    for spec in specs:
        name = spec.name
        if needs[name]:
            _check_lower(name, requires[name], "requires", tiers, problems)
            _check_lower(name, after[name], "is after", tiers, problems)

    if problems:
        if len(problems) == 1:
            msg = f"runtime {runtime_name!r}: {problems[0]}"
        else:
            msg = (
                f"runtime {runtime_name!r} has {len(problems)} problems:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        raise ConfigError(msg)

    default_start = math.inf if start_timeout is None else start_timeout
    default_stop = math.inf if stop_timeout is None else stop_timeout
    planned = {
        spec.name: PlannedDriver(
            name=spec.name,
            tier=tiers[spec.name],
            requires=requires[spec.name],
            after=after[spec.name],
            optional=spec.optional,
            start_timeout=default_start
            if spec.start_timeout is None
            else spec.start_timeout,
            stop_timeout=default_stop
            if spec.stop_timeout is None
            else spec.stop_timeout,
            restart=spec.restart,
            inferred=spec.tier is None,
            spec=spec,
            needs=needs[spec.name],
        )
        for spec in specs
    }
    top = max(tiers.values(), default=-1)
    grouped: list[list[str]] = [[] for _ in range(top + 1)]
    for name in planned:
        grouped[tiers[name]].append(name)
    return Plan(
        name=runtime_name,
        tiers=tuple(tuple(g) for g in grouped),
        drivers=MappingProxyType(planned),
    )


def _who(spec: Spec) -> str:
    return spec.name if spec.tier is None else f"{spec.name} (tier {spec.tier})"


def _edges(
    spec: Spec,
    what: str,
    by_name: Mapping[str, Spec],
    owner: Any,
    problems: list[str],
) -> tuple[str, ...]:
    """The names ``spec.requires`` (or ``spec.after``) refers to, each once."""
    verb = "requires" if what == "requires" else "is after"
    resolved: list[str] = []
    for req in spec.requires if what == "requires" else spec.after:
        name = _resolve(req, spec, verb, by_name, owner, problems)
        if name == spec.name:
            problems.append(
                f"{_who(spec)} {verb} itself; remove {name!r} from its {what}"
            )
        elif name is not None and name not in resolved:
            resolved.append(name)
    return tuple(resolved)


def _check_lower(
    name: str,
    targets: tuple[str, ...],
    verb: str,
    tiers: Mapping[str, int],
    problems: list[str],
) -> None:
    tier = tiers.get(name)
    if tier is None:
        return
    for req in targets:
        req_tier = tiers.get(req)
        if req_tier is not None and req_tier >= tier:
            # only reachable with an explicit tier: an inferred one is
            # always above everything it requires
            how = "require" if verb == "requires" else "be after"
            problems.append(
                f"{name} (tier {tier}) {verb} {req} (tier {req_tier}): a "
                f"driver may only {how} drivers of lower tiers; put {req!r} "
                f"in a tier below {tier}, or raise {name!r} above tier "
                f"{req_tier} (or drop its tier= to infer it)"
            )


def _resolve(
    req: Requirement,
    spec: Spec,
    verb: str,
    by_name: Mapping[str, Spec],
    owner: Any,
    problems: list[str],
) -> str | None:
    who = _who(spec)
    runtime_name = getattr(owner, "name", "?")
    if isinstance(req, DriverHandle):
        if not req.belongs_to(owner):
            problems.append(
                f"{who} {verb} {req!r}, a driver of another runtime; "
                f"{'require' if verb == 'requires' else 'name'} drivers of "
                f"runtime {runtime_name!r} only"
            )
            return None
        return req.name
    if isinstance(req, type):
        matches = instances_of(req, by_name.values())
        if len(matches) == 1:
            return matches[0]
        if not matches:
            problems.append(
                f"{who} {verb} the class {req.__qualname__}, but no instance of it "
                f"was added; call runtime.add({req.__qualname__}()) or fix the name"
            )
        else:
            problems.append(
                f"{who} {verb} the class {req.__qualname__}, which has "
                f"{len(matches)} instances ({', '.join(matches)}); "
                f"{'require' if verb == 'requires' else 'name'} one by name"
            )
        return None
    name = req.name if isinstance(req, Driver) else req
    if name not in by_name:
        problems.append(
            f"{who} {verb} {name!r}, which is not a driver of runtime "
            f"{runtime_name!r}{_did_you_mean_driver(name, by_name)}; declare it "
            "or fix the name"
        )
        return None
    return name


def instances_of(cls: type, specs: Iterable[Spec]) -> list[str]:
    """The names of the declared drivers that are instances of exactly ``cls``."""
    return [s.name for s in specs if s.instance is not None and type(s.instance) is cls]


def _did_you_mean_driver(name: str, by_name: Mapping[str, Spec]) -> str:
    """A close driver name, or the driver whose class is called ``name``."""
    close = did_you_mean(name, by_name)
    if close:
        return close
    for spec in by_name.values():
        if spec.instance is not None and type(spec.instance).__name__ == name:
            return (
                f" (did you mean {spec.name!r}? {name} is the class of driver "
                f"{spec.name!r}: name drivers by their name, or pass the class itself)"
            )
    return ""


_VISITING, _DONE = 1, 2


def _assign_tiers(
    by_name: Mapping[str, Spec],
    needs: Mapping[str, tuple[str, ...]],
    problems: list[str],
) -> dict[str, int]:
    """Explicit tiers as given; inferred ones one above their highest need.

    ``needs`` is what a driver requires or is after.  Iterative depth-first
    search, so a long chain of inferred tiers cannot hit the recursion limit.
    A cycle among inferred tiers is reported with its whole path; its
    drivers (and what needs them) get no tier.
    """
    tiers: dict[str, int] = {
        s.name: s.tier for s in by_name.values() if s.tier is not None
    }
    state: dict[str, int] = {}
    for root in by_name:
        if root in tiers or root in state:
            continue
        state[root] = _VISITING
        path = [root]
        stack = [iter(needs[root])]
        while stack:
            node = path[-1]
            for req in stack[-1]:
                if req in tiers:
                    continue
                seen = state.get(req)
                if seen is None:
                    state[req] = _VISITING
                    path.append(req)
                    stack.append(iter(needs[req]))
                    break
                if seen == _VISITING:
                    cycle = [*path[path.index(req) :], req]
                    problems.append(
                        "requirements form a cycle: "
                        + " -> ".join(cycle)
                        + "; a driver may only require drivers of lower tiers, so "
                        "drop one of these requirements or give the shared part a "
                        "driver of its own in a lower tier"
                    )
            else:
                stack.pop()
                path.pop()
                state[node] = _DONE
                mine = needs[node]
                if all(r in tiers for r in mine):
                    tiers[node] = 1 + max((tiers[r] for r in mine), default=-1)
    return tiers
