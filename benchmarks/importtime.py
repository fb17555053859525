"""Workload 5: import time, fresh interpreters importing tiered, anyio or nothing.

Wall times first, interleaved; then ``-X importtime`` profiles, whose
per-module medians say where ``import tiered`` spends its time and what it
imports that ``import anyio`` does not.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import processes
from harness import ratio, summary
from workloads import say

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: what a daemon imports besides the runtime itself, in both daemon cases
_DAEMON_BASE = "import logging, signal, socket, anyio; "
IMPORTS = {
    "python": "pass",
    "anyio": "import anyio",
    "tiered": "import tiered",
    # What a daemon really imports, not only the package: ``import tiered``
    # resolves its names on first use, so alone it proves nothing.  The
    # anyio daemon by hand (workload 6) uses these of anyio's names; the
    # tiered daemon a Runtime, a run and serve().
    "anyio_daemon": _DAEMON_BASE
    + "anyio.run; anyio.create_task_group; anyio.open_signal_receiver; anyio.Event",
    "tiered_daemon": _DAEMON_BASE
    + "import tiered; tiered.Runtime; tiered.serve; anyio.run; "
    "anyio.create_task_group; anyio.open_signal_receiver; anyio.Event",
}
PROFILED = ("anyio", "tiered", "tiered_daemon")
TOP_MODULES = 15


def importtime(
    runs: int, profiles: int = 1, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Wall time of fresh interpreters importing tiered, anyio, or nothing.

    Interleaved, after one warm-up of each (so byte code is compiled); then
    ``profiles`` interleaved ``-X importtime`` runs of ``import anyio`` and
    ``import tiered``, per-module medians: the modules that cost the most,
    and what ``import tiered`` imports that ``import anyio`` does not.
    """
    # the caller's environment, but byte code is written and nothing profiled
    env = processes.child_environment()
    times = _wall_times(runs, env)
    say(progress, f"{runs} runs each")
    profiled = _profiles(profiles, env)
    say(progress, f"{profiles} -X importtime runs each")
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "runs": runs,
        "wall_s": {k: summary(v) for k, v in times.items()},
        "tiered_minus_python_s": median["tiered"] - median["python"],
        "anyio_minus_python_s": median["anyio"] - median["python"],
        "tiered_minus_anyio_s": median["tiered"] - median["anyio"],
        "tiered_minus_anyio_per_round_s": summary(
            [t - a for t, a in zip(times["tiered"], times["anyio"], strict=True)]
        ),
        "tiered_vs_anyio": ratio(times["tiered"], times["anyio"]),
        "daemon_minus_anyio_daemon_s": median["tiered_daemon"] - median["anyio_daemon"],
        "daemon_minus_anyio_daemon_per_round_s": summary(
            [
                t - a
                for t, a in zip(
                    times["tiered_daemon"], times["anyio_daemon"], strict=True
                )
            ]
        ),
        "importtime_us": _profile_summary(profiled, profiles),
    }


def _wall_times(runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Seconds per fresh interpreter, per command; after one warm-up round."""
    times: dict[str, list[float]] = {k: [] for k in IMPORTS}
    for r in range(runs + 1):
        for key, code in IMPORTS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            if r:  # round 0 warms up
                times[key].append(time.perf_counter() - t0)
    return times


Profile = dict[str, dict[str, int]]
"""One ``-X importtime`` run: {module: {"self", "cumulative": us, "depth"}}."""


def _profiles(profiles: int, env: dict[str, str]) -> dict[str, list[Profile]]:
    """``profiles`` interleaved ``-X importtime`` runs of each profiled import."""
    profiled: dict[str, list[Profile]] = {k: [] for k in PROFILED}
    for _ in range(profiles):
        for key in PROFILED:
            stderr = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", IMPORTS[key]],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stderr
            profiled[key].append(_parse_importtime(stderr))
    return profiled


def _profile_summary(
    profiled: dict[str, list[Profile]], profiles: int
) -> dict[str, Any]:
    """Per-module medians: where ``import tiered`` goes, and beyond anyio."""
    modules = _median_profile(profiled["tiered"])
    alone = _median_profile(profiled["anyio"])
    tiered_own = {k: v for k, v in modules.items() if k.split(".")[0] == "tiered"}
    # by name: a module both import is anyio's cost, whoever imports it first
    beyond = {k: v for k, v in modules.items() if k not in alone}
    return {
        "profiles": profiles,
        "tiered_cumulative": modules.get("tiered", {}).get("cumulative"),
        # anyio as `import tiered` imports it, after tiered's first imports
        "anyio_cumulative": modules.get("anyio", {}).get("cumulative"),
        "anyio_alone_cumulative": alone.get("anyio", {}).get("cumulative"),
        "tiered_modules_self": {
            k: v["self"]
            for k, v in sorted(tiered_own.items(), key=lambda kv: -kv[1]["self"])
        },
        "slowest_cumulative": dict(
            sorted(
                ((k, v["cumulative"]) for k, v in modules.items()),
                key=lambda kv: -kv[1],
            )[:10]
        ),
        "top_cumulative": [
            {"module": k, **v}
            for k, v in sorted(modules.items(), key=lambda kv: -kv[1]["cumulative"])[
                :TOP_MODULES
            ]
        ],
        "beyond_anyio_self_total": sum(v["self"] for v in beyond.values()),
        "beyond_anyio_modules": len(beyond),
        "beyond_anyio": [
            {"module": k, **v}
            for k, v in sorted(beyond.items(), key=lambda kv: -kv[1]["self"])[
                :TOP_MODULES
            ]
        ],
    }


def _parse_importtime(stderr: str) -> dict[str, dict[str, int]]:
    """``-X importtime`` lines as {module: {"self", "cumulative": us, "depth"}}.

    ``depth`` is the nesting: 0 for what the command (or start-up) imported
    itself, 1 for what those imported, and so on.
    """
    modules: dict[str, dict[str, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line.removeprefix("import time:").split("|")
        # one space after the bar, then two per level of nesting
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        modules[name.strip()] = {
            "self": int(self_us),
            "cumulative": int(cumulative),
            "depth": depth,
        }
    return modules


def _median_profile(
    profiles: Sequence[dict[str, dict[str, int]]],
) -> dict[str, dict[str, int]]:
    """Per module imported in every profile, the median self and cumulative us."""
    if not profiles:
        return {}
    names = [k for k in profiles[0] if all(k in p for p in profiles[1:])]
    return {
        k: {
            "self": statistics.median_low(p[k]["self"] for p in profiles),
            "cumulative": statistics.median_low(p[k]["cumulative"] for p in profiles),
            "depth": profiles[0][k]["depth"],
        }
        for k in names
    }
