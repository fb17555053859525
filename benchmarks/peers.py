"""The peer libraries as benchmark subjects: facet, aiomisc, dependency-injector.

Each expresses the plan's tiers as closely as its public API allows (see the
``tiers`` text of each subject, which the results repeat).  All three are
asyncio libraries, so they run on asyncio and uvloop only.  As in
``subjects.py``, objects are built before the clock starts.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any

import aiomisc
import facet
from dependency_injector import containers, providers
from harness import BEGIN, READY, STOP, Plan, Subject, Timing, driver_name

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from harness import Trace

ASYNCIO = frozenset({"asyncio", "uvloop"})


# -- facet: services with dependencies -------------------------------------------


class FacetService(facet.AsyncioServiceMixin):  # type: ignore[misc]  # facet ships no types
    """A facet service: a driver, or the root whose dependencies are the tiers.

    facet starts a service's ``dependencies`` group by group, the services of
    one group concurrently, and stops them in reverse: a group is a tier.
    """

    def __init__(
        self,
        tier: int = 0,
        index: int = 0,
        delay: float = 0.0,
        trace: Trace | None = None,
        groups: list[list[FacetService]] | None = None,
    ) -> None:
        self.tier = tier
        self.index = index
        self.delay = delay
        self.trace = trace
        self.groups = groups or []

    @property
    def dependencies(self) -> list[list[FacetService]]:
        """The tiers, for the root; nothing for a driver."""
        return self.groups

    async def start(self) -> None:
        """The driver's start: sleep the plan's seconds."""
        if self.trace is not None:
            self.trace.append((self.tier, self.index, BEGIN))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.trace is not None:
            self.trace.append((self.tier, self.index, READY))

    async def stop(self) -> None:
        """The driver's stop: nothing."""
        if self.trace is not None and not self.groups:
            self.trace.append((self.tier, self.index, STOP))


async def run_facet(plan: Plan) -> Timing:
    """``async with root``: root depends on one group of services per tier."""
    groups = [
        [FacetService(t, i, delay, plan.trace) for i, delay in enumerate(delays)]
        for t, delays in enumerate(plan.tiers)
    ]
    root = FacetService(groups=groups)
    t0 = perf_counter()
    async with root:
        t1 = perf_counter()
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


# -- aiomisc: an entrypoint with services ----------------------------------------


class AiomiscDriver(aiomisc.Service):
    """An aiomisc service standing for one driver."""

    tier: int
    index: int
    delay: float
    trace: Trace | None

    async def start(self) -> None:
        """The driver's start: sleep the plan's seconds."""
        if self.trace is not None:
            self.trace.append((self.tier, self.index, BEGIN))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.trace is not None:
            self.trace.append((self.tier, self.index, READY))

    async def stop(self, exception: Exception | None = None) -> None:
        """The driver's stop: nothing."""
        if self.trace is not None:
            self.trace.append((self.tier, self.index, STOP))


async def run_aiomisc(plan: Plan) -> Timing:
    """An entrypoint; ``start_services`` tier by tier, ``stop_services`` in reverse.

    ``entrypoint(*services)`` alone would start every service at once, so the
    tiers are handed to the entrypoint's public ``start_services`` one after
    another (each starts its services concurrently and returns when all have).
    """
    tiers = [
        [
            AiomiscDriver(tier=t, index=i, delay=delay, trace=plan.trace)
            for i, delay in enumerate(delays)
        ]
        for t, delays in enumerate(plan.tiers)
    ]
    t0 = perf_counter()
    # no logging set-up and no signal handlers: a benchmark, not a daemon
    async with aiomisc.entrypoint(log_config=False, catch_signals=()) as ep:
        for services in tiers:
            await ep.start_services(*services)
        t1 = perf_counter()
        for services in reversed(tiers):
            await ep.stop_services(*services)
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


# -- dependency-injector: async Resource providers -------------------------------


async def _di_driver(
    tier: int, index: int, delay: float, trace: Trace | None
) -> AsyncIterator[None]:
    if trace is not None:
        trace.append((tier, index, BEGIN))
    if delay:
        await asyncio.sleep(delay)
    if trace is not None:
        trace.append((tier, index, READY))
    yield None
    if trace is not None:
        trace.append((tier, index, STOP))


def di_containers(plan: Plan) -> list[containers.DynamicContainer]:
    """One container per tier, a ``Resource`` per driver."""
    result = []
    for t, delays in enumerate(plan.tiers):
        container = containers.DynamicContainer()
        container.set_providers(
            **{
                driver_name(t, i): providers.Resource(
                    _di_driver, t, i, delay, plan.trace
                )
                for i, delay in enumerate(delays)
            }
        )
        result.append(container)
    return result


async def _await(awaitable: Any) -> None:
    # init_resources() and shutdown_resources() return None when a container
    # holds no async resource
    if awaitable is not None:
        await awaitable


async def run_dependency_injector(plan: Plan) -> Timing:
    """``init_resources()`` per tier's container in order, ``shutdown_resources()`` in reverse."""
    tiers = di_containers(plan)
    t0 = perf_counter()
    for container in tiers:
        await _await(container.init_resources())
    t1 = perf_counter()
    for container in reversed(tiers):
        await _await(container.shutdown_resources())
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


FACET = Subject(
    "facet",
    "facet",
    run_facet,
    ASYNCIO,
    "A root service whose `dependencies` is one list of services per tier: "
    "facet starts the lists in order, the services of a list concurrently, and "
    "stops in reverse. Exact tiers. Stop runs under facet's "
    "`graceful_shutdown_timeout`; start has no timeout.",
)
AIOMISC = Subject(
    "aiomisc",
    "aiomisc",
    run_aiomisc,
    ASYNCIO,
    "`async with entrypoint()`, then `start_services(*tier)` for each tier in "
    "order and `stop_services(*tier)` in reverse. `entrypoint(*services)` has "
    "no notion of order (it starts every service at once), so the tiers are "
    "driven by hand through these public methods; within a tier services "
    "start concurrently. No start timeout.",
)
DEPENDENCY_INJECTOR = Subject(
    "dependency_injector",
    "dependency-injector",
    run_dependency_injector,
    ASYNCIO,
    "One `DynamicContainer` per tier holding an async `Resource` per driver; "
    "`init_resources()` on each container in order (concurrent within it), "
    "`shutdown_resources()` in reverse. Declaring the order as resource "
    "arguments instead (a barrier resource per tier) works too, but "
    "`shutdown_resources()` then compares every resource with every other in "
    "rounds, which takes seconds from a few hundred drivers on. No timeouts.",
    max_drivers=2_000,
    too_big="`shutdown_resources()` is quadratic in the resources of a "
    "container (each is checked against every other), so 1,000 drivers per "
    "tier take tens of seconds a run; measured at 1,000 drivers instead.",
)
