"""Validation: declarations in, a ``Plan`` (or one ``ConfigError``) out.

Pure and synchronous.  Every problem found is reported at once, one per line,
each naming the drivers and tiers involved and how to fix it.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._driver import Driver, DriverHandle, Requirement, Spec
from ._exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Plan", "PlannedDriver"]


@dataclass(frozen=True, slots=True)
class PlannedDriver:
    """One driver of a :class:`Plan`: its tier and requirements resolved.

    Attributes:
        name: the driver's name.
        tier: its tier, inferred ones resolved.
        requires: the names of the drivers it requires.
        optional: whether its failure is tolerated.
        start_timeout: seconds for ``initialize`` plus ``autostart``, the
            runtime's default applied; ``math.inf`` when unbounded.
        stop_timeout: seconds for ``stop``, the same way.
        inferred: true when the tier was inferred from ``requires``.
    """

    name: str
    tier: int
    requires: tuple[str, ...]
    optional: bool
    #: seconds; ``math.inf`` when unbounded
    start_timeout: float
    stop_timeout: float
    #: true when the tier was inferred from ``requires``
    inferred: bool
    spec: Spec = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Plan:
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

    name: str
    tiers: tuple[tuple[str, ...], ...]
    drivers: Mapping[str, PlannedDriver]

    def to_text(self) -> str:
        """Render the plan as ``tiered check`` prints it."""
        count = len(self.drivers)
        lines = [
            f"runtime {self.name!r}: {count} driver{'s' * (count != 1)} "
            f"in {len(self.tiers)} tier{'s' * (len(self.tiers) != 1)}"
        ]
        for k, names in enumerate(self.tiers):
            lines.append(f"tier {k}:" + ("" if names else " (empty)"))
            for name in names:
                d = self.drivers[name]
                extra = []
                if d.requires:
                    extra.append("requires " + ", ".join(d.requires))
                if d.optional:
                    extra.append("optional")
                if d.inferred:
                    extra.append("tier inferred")
                extra.append(
                    f"start {_seconds(d.start_timeout)}, stop {_seconds(d.stop_timeout)}"
                )
                lines.append(f"  {name}: " + "; ".join(extra))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: a box per tier, an arrow from a driver to what it requires."""
        ids = {name: f"d{i}" for i, name in enumerate(self.drivers)}
        lines = ["flowchart BT"]
        for k, names in enumerate(self.tiers):
            if not names:
                continue
            lines.append(f'  subgraph tier{k}["tier {k}"]')
            lines += [f'    {ids[n]}["{_mermaid_label(n)}"]' for n in names]
            lines.append("  end")
        for name, d in self.drivers.items():
            lines += [f"  {ids[name]} --> {ids[r]}" for r in d.requires]
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """A Graphviz digraph: a cluster per tier, an edge to each requirement."""
        lines = [
            f"digraph {_dot_id(self.name)} {{",
            "  rankdir=BT;",
            "  node [shape=box];",
        ]
        for k, names in enumerate(self.tiers):
            if not names:
                continue
            lines.append(f'  subgraph cluster_tier{k} {{ label="tier {k}";')
            lines += [f"    {_dot_id(n)};" for n in names]
            lines.append("  }")
        for name, d in self.drivers.items():
            lines += [f"  {_dot_id(name)} -> {_dot_id(r)};" for r in d.requires]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _mermaid_label(name: str) -> str:
    return name.replace('"', "#quot;")


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _seconds(value: float) -> str:
    return "no limit" if math.isinf(value) else f"{value:g}s"


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names``, or nothing."""
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
    by_name: dict[str, Spec] = {}
    for spec in specs:
        if spec.name in by_name:
            problems.append(
                f"two drivers are named {spec.name!r}; give one of them another name"
            )
        else:
            by_name[spec.name] = spec

    requires: dict[str, tuple[str, ...]] = {}
    for spec in by_name.values():
        resolved: list[str] = []
        for req in spec.requires:
            name = _resolve(req, spec, by_name, owner, runtime_name, problems)
            if name == spec.name:
                who = (
                    spec.name
                    if spec.tier is None
                    else f"{spec.name} (tier {spec.tier})"
                )
                problems.append(
                    f"{who} requires itself; remove {name!r} from its requires"
                )
                continue
            if name is not None and name not in resolved:
                resolved.append(name)
        requires[spec.name] = tuple(resolved)

    tiers = _assign_tiers(by_name, requires, problems)

    for spec in by_name.values():
        tier = tiers.get(spec.name)
        if tier is None:
            continue
        for req in requires[spec.name]:
            req_tier = tiers.get(req)
            if req_tier is not None and req_tier >= tier:
                # only reachable with an explicit tier: an inferred one is
                # always above everything it requires
                problems.append(
                    f"{spec.name} (tier {tier}) requires {req} (tier {req_tier}): a "
                    f"driver may only require drivers of lower tiers; put {req!r} "
                    f"in a tier below {tier}, or raise {spec.name!r} above tier "
                    f"{req_tier} (or drop its tier= to infer it)"
                )

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
            optional=spec.optional,
            start_timeout=default_start
            if spec.start_timeout is None
            else spec.start_timeout,
            stop_timeout=default_stop
            if spec.stop_timeout is None
            else spec.stop_timeout,
            inferred=spec.tier is None,
            spec=spec,
        )
        for spec in by_name.values()
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


def _resolve(
    req: Requirement,
    spec: Spec,
    by_name: Mapping[str, Spec],
    owner: Any,
    runtime_name: str,
    problems: list[str],
) -> str | None:
    who = spec.name if spec.tier is None else f"{spec.name} (tier {spec.tier})"
    if isinstance(req, DriverHandle):
        if req._owner is not owner:
            problems.append(
                f"{who} requires {req!r}, a driver of another runtime; require "
                f"drivers of runtime {runtime_name!r} only"
            )
            return None
        return req.name
    if isinstance(req, type):
        matches = [
            s.name
            for s in by_name.values()
            if s.instance is not None and type(s.instance) is req
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            problems.append(
                f"{who} requires the class {req.__qualname__}, but no instance of it "
                f"was added; call runtime.add({req.__qualname__}()) or fix requires"
            )
        else:
            problems.append(
                f"{who} requires the class {req.__qualname__}, which has "
                f"{len(matches)} instances ({', '.join(matches)}); require one by name"
            )
        return None
    name = req.name if isinstance(req, Driver) else req
    if name not in by_name:
        problems.append(
            f"{who} requires {name!r}, which is not a driver of runtime "
            f"{runtime_name!r}{did_you_mean(name, by_name)}; declare it or fix the name"
        )
        return None
    return name


_VISITING, _DONE = 1, 2


def _assign_tiers(
    by_name: Mapping[str, Spec],
    requires: Mapping[str, tuple[str, ...]],
    problems: list[str],
) -> dict[str, int]:
    """Explicit tiers as given; inferred ones one above their highest need.

    Iterative depth-first search, so a long chain of inferred tiers cannot hit
    the recursion limit.  A cycle among inferred tiers is reported with its
    whole path; its drivers (and what requires them) get no tier.
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
        stack = [iter(requires[root])]
        while stack:
            node = path[-1]
            for req in stack[-1]:
                if req in tiers:
                    continue
                seen = state.get(req)
                if seen is None:
                    state[req] = _VISITING
                    path.append(req)
                    stack.append(iter(requires[req]))
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
                needs = requires[node]
                if all(r in tiers for r in needs):
                    tiers[node] = 1 + max((tiers[r] for r in needs), default=-1)
    return tiers
