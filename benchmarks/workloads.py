"""What the workloads share: their sizes, their subjects, and the order checks.

The workloads themselves live one family a module, each returning plain
data for JSON:

1. ``overhead.py``: no-op drivers, one full start and stop, against the
   anyio floor, the native floor and the peers (``overhead_small`` repeats
   it at a size every peer can do), and tiered's dependency schedule on the
   same drivers with one requirement each.
2. ``latency.py``: drivers that sleep 1-20 ms while starting; start-up
   against the bound, against the same sleeps by hand, one by one and in
   one tier; and (workload 7) the same drivers as a seeded DAG, under
   both of tiered's schedules and by hand with one event per driver.
3. ``scaling.py``: time per driver from 100 to 100k drivers, then memory
   per running driver under tracemalloc, in a separate pass.
4. the peers take part in 1 and 2.
5. ``importtime.py``: ``import tiered`` in a fresh interpreter against
   ``import anyio``, and where the time goes (``-X importtime``).
6. ``exec_ready.py``: daemons as real processes, from the spawn to
   ``READY=1`` on a notify socket, then SIGTERM to their exit: the tiered
   CLI, ``tiered.serve()``, the same daemon by hand on anyio and on
   asyncio, and the interpreter's floor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dag
import peers
import subjects
from harness import BACKENDS, Backend, Subject, sleep_plan, verify

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from harness import Plan

ALL_SUBJECTS: tuple[Subject, ...] = (
    subjects.TIERED,
    subjects.TIERED_CLASSES,
    subjects.ANYIO_FLOOR,
    subjects.NATIVE_FLOOR,
    subjects.EXITSTACK,
    peers.FACET,
    peers.AIOMISC,
    peers.DEPENDENCY_INJECTOR,
)
"""The subjects that keep tiers: checked by :func:`verification`."""

DAG_SUBJECTS: tuple[Subject, ...] = (
    subjects.TIERED,
    subjects.TIERED_DEPENDENCIES,
    subjects.DAG_BY_HAND,
)
"""The subjects of a DAG plan: checked by :func:`dag_verification`."""


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of one benchmark run."""

    rounds: int = 7
    overhead_drivers: int = 10_000
    overhead_tiers: int = 10
    small_drivers: int = 1_000
    small_tiers: int = 10
    latency_drivers: int = 200
    latency_tiers: int = 8
    latency_sleep: tuple[float, float] = (0.001, 0.020)
    latency_seed: int = 5
    dag_seed: int = 12  # the DAG's requirements; its sleeps are latency's
    dag_requires: int = 3  # each driver requires 0 to this many others
    sequential_rounds: int = 3  # the one-by-one start takes ~15x the others
    scaling_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    scaling_tiers: int = 10
    scaling_reference: int = 1_000  # the goal compares the largest size to this
    big_size: int = 100_000  # sizes from here on run in big_rounds only
    big_rounds: int = 3
    memory_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    info_log_rounds: int = 3  # workload 1 at INFO takes about twice as long
    import_runs: int = 25
    import_profiles: int = 5  # `-X importtime` runs, per-module medians
    exec_rounds: int = 21  # one process per subject a round: short and noisy
    exec_drivers: int = 20
    exec_tiers: int = 4
    exec_timeout: float = 10.0  # for READY=1, and again for the exit
    verify_tiers: int = 3
    verify_per_tier: int = 4

    def with_rounds(self, rounds: int) -> Settings:
        """The same settings with another number of rounds (big sizes capped).

        The exec workload takes exactly ``rounds`` too.
        """
        return replace(
            self,
            rounds=rounds,
            big_rounds=min(self.big_rounds, rounds),
            info_log_rounds=min(self.info_log_rounds, rounds),
            exec_rounds=rounds,
        )


FULL = Settings()
QUICK = Settings(
    rounds=1,
    overhead_drivers=20,
    overhead_tiers=4,
    small_drivers=12,
    small_tiers=3,
    latency_drivers=12,
    latency_tiers=3,
    latency_sleep=(0.001, 0.004),
    sequential_rounds=1,
    scaling_sizes=(10, 20, 40),
    scaling_tiers=4,
    scaling_reference=20,
    big_size=40,
    big_rounds=1,
    memory_sizes=(10, 40),
    info_log_rounds=1,
    import_runs=2,
    import_profiles=1,
    exec_rounds=2,
    verify_tiers=3,
    verify_per_tier=3,
)


def say(progress: Callable[[str], None] | None, text: str) -> None:
    """Tell the progress callback, if there is one."""
    if progress is not None:
        progress(text)


# -- verification ----------------------------------------------------------------


def verification(
    settings: Settings, backends: Sequence[Backend]
) -> dict[str, dict[str, Any]]:
    """Check, with a traced run, that each subject keeps the tiers it claims.

    Drivers sleep 0-2 ms so the order within a tier is shuffled: a subject
    that ran tiers together or started a tier's drivers one by one shows it.
    """
    plan = sleep_plan(
        settings.verify_tiers * settings.verify_per_tier,
        settings.verify_tiers,
        0.0,
        0.002,
        seed=settings.latency_seed,
    )
    return {
        s.key: {b.name: verify(s, b, plan) for b in backends if b.name in s.backends}
        for s in ALL_SUBJECTS
        if any(b.name in s.backends for b in backends)
    }


def dag_verification(settings: Settings, backends: Sequence[Backend]) -> dict[str, Any]:
    """Check, with a traced run, the order each DAG subject keeps.

    A DAG drawn as workload 7's is, at the verification size, with sleeps of
    0-2 ms: every subject must start a driver only once what it requires is
    up and stop it only once what requires it has stopped; tiered on its
    tiers schedule must also keep the barrier, the others must not need it.
    """
    plan = verification_dag(settings)
    return {
        "drivers": plan.drivers,
        "tiers": len(plan.tiers),
        "requirements": dag.edges(plan),
        "subjects": {
            s.key: {
                b.name: verify(s, b, plan, dag.check_order)
                for b in backends
                if b.name in s.backends
            }
            for s in DAG_SUBJECTS
        },
    }


def verification_dag(settings: Settings) -> Plan:
    """The DAG the order checks run: small, its sleeps 0-2 ms.

    The last driver of the top tier requires nothing, whatever the draw:
    without a barrier it begins at once, before tier 0 is up, so the check
    sees which subjects keep a barrier rather than leaving it to the sleeps.
    """
    plan = dag.dag_plan(
        settings.verify_tiers * settings.verify_per_tier,
        settings.verify_tiers,
        (0.0, 0.002),
        settings.latency_seed,
        settings.dag_seed,
        settings.dag_requires,
    )
    top = len(plan.tiers) - 1
    return dag.freed(plan, (top, len(plan.tiers[top]) - 1))


def available_backends(names: Sequence[str]) -> tuple[list[Backend], dict[str, str]]:
    """The requested backends that are installed, and why others are not run."""
    chosen, missing = [], {}
    for name in names:
        backend = BACKENDS[name]
        if backend.available():
            chosen.append(backend)
        else:
            missing[name] = f"{backend.module} is not installed"
    return chosen, missing
