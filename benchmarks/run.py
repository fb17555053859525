"""The benchmark suite of tiered (issue 5); ``make bench`` runs it.

Workloads: 1. overhead of 10,000 no-op drivers against hand-written floors
and peers; 2. start-up latency of drivers that sleep, against the bound and
the same sleeps by hand; 3. scaling from 100 to 100k drivers, time and memory;
4. the peers (facet, aiomisc, dependency-injector, AsyncExitStack) take part
in 1 and 2; 5. import time; 6. exec to READY: daemons as processes, from the
spawn to READY=1 on a notify socket; 7. a seeded DAG of drivers that sleep,
under tiered's two schedules and by hand (workload 1 runs tiered's
dependency schedule too).  Writes ``latest.json`` and ``latest.md`` to
``--out`` (default ``benchmarks/results``) and prints the Markdown.

    python benchmarks/run.py [--quick] [--rounds N] [--only WORKLOAD ...]
                             [--backends BACKEND ...] [--out DIR]
                             [--daemons-from REV]

See benchmarks/README.md for how to read the results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import exec_ready
import goals
import importtime
import latency
import overhead
import processes
import render
import scaling
import workloads
from harness import BACKENDS
from sources import source_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from harness import Backend

WORKLOADS = ("overhead", "latency", "scaling", "importtime", "exec", "dag")
# the workloads whose subjects are processes, which --daemons-from redirects
PROCESS_WORKLOADS = ("importtime", "exec")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one round: checks that everything runs, proves nothing",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds of interleaved runs (default {workloads.FULL.rounds}, "
        f"{workloads.FULL.big_rounds} for {workloads.FULL.big_size:,} drivers, "
        f"{workloads.FULL.exec_rounds} for exec; 1 with --quick, "
        f"{workloads.QUICK.exec_rounds} for exec)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=WORKLOADS,
        metavar="WORKLOAD",
        help=f"run only these workloads ({', '.join(WORKLOADS)}); "
        "the peers are part of overhead and latency, and overhead runs the "
        "dependency schedule too",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=list(BACKENDS),
        default=list(BACKENDS),
        metavar="BACKEND",
        help=f"event loops to run on ({', '.join(BACKENDS)}; default all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for latest.json and latest.md (default benchmarks/results)",
    )
    parser.add_argument(
        "--daemons-from",
        metavar="REV",
        help="the daemons of workloads 5 and 6 import tiered from the src/ of "
        "git revision REV (the benchmark itself runs the working tree's): "
        "before and after on one machine; needs --only importtime/exec and --out",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.daemons_from is not None:
        if not args.only or not set(args.only) <= set(PROCESS_WORKLOADS):
            parser.error(
                "--daemons-from measures processes only: "
                "add --only importtime, --only exec or both"
            )
        if args.out.resolve() == DEFAULT_OUT:
            parser.error(
                "--daemons-from measures another version: give --out DIR, "
                "so that benchmarks/results keeps this version's figures"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen workloads, write the results, print the Markdown."""
    args = parse(argv)
    if args.daemons_from is None:
        return _main(args, None)
    with tempfile.TemporaryDirectory(prefix="tiered-bench-src-") as tmp:
        try:
            src = source_of(args.daemons_from, Path(tmp))
        except subprocess.CalledProcessError as error:
            why = error.stderr.decode(errors="replace").strip()
            print(
                f"benchmarks/run.py: --daemons-from {args.daemons_from}: "
                f"git archive failed: {why}",
                file=sys.stderr,
            )
            return 2
        # every child interpreter copies this environment (processes.py)
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(src), before)))
        try:
            imported = subprocess.run(
                [sys.executable, "-c", "import tiered; print(tiered.__file__)"],
                env=processes.child_environment(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            # what the results record: the revision, and where tiered came from
            where = {"rev": args.daemons_from, "tiered": imported, "src": str(src)}
            return _main(args, where)
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before


def _main(args: argparse.Namespace, daemons_from: dict[str, str] | None) -> int:
    """:func:`main`, once the daemons' source is chosen."""
    settings = workloads.QUICK if args.quick else workloads.FULL
    if args.rounds is not None:
        settings = settings.with_rounds(args.rounds)
    chosen = args.only or list(WORKLOADS)
    backends, missing = workloads.available_backends(args.backends)
    began = time.perf_counter()

    def progress(text: str) -> None:
        print(
            f"[{time.perf_counter() - began:6.1f}s] {text}", file=sys.stderr, flush=True
        )

    data: dict[str, Any] = {
        "schema": 1,
        "quick": args.quick,
        "machine": render.machine(),
        "settings": {
            "rounds": settings.rounds,
            "workloads": chosen,
            "backends": [b.name for b in backends],
            "backends_not_run": missing,
            "daemons_from": daemons_from,
        },
        "subjects": {
            s.key: {
                "label": s.label,
                "backends": sorted(s.backends),
                "tiers": s.tiers,
            }
            for s in (*workloads.ALL_SUBJECTS, *workloads.DAG_SUBJECTS)
        },
    }
    progress("verifying how each subject keeps the tiers")
    data["verification"] = workloads.verification(settings, backends)
    progress("verifying how each subject keeps the requirements of a DAG")
    data["dag_verification"] = workloads.dag_verification(settings, backends)
    data["workloads"] = run_workloads(settings, chosen, backends, progress)
    data["goals"] = goals.goals(data["workloads"])
    data["machine"]["load_average_at_end"] = list(os.getloadavg())
    data["machine"]["duration_s"] = time.perf_counter() - began

    args.out.mkdir(parents=True, exist_ok=True)
    text = render.markdown(data)
    (args.out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "latest.md").write_text(text)
    progress(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    if args.out == DEFAULT_OUT and not args.quick and set(chosen) == set(WORKLOADS):
        readme = render.ROOT / "README.md"
        summary = render.readme_summary(data)
        readme.write_text(render.replace_readme_summary(readme.read_text(), summary))
        progress(f"updated the benchmarks excerpt in {readme}")
    print(text)
    return 0


def run_workloads(
    settings: workloads.Settings,
    chosen: list[str],
    backends: list[Backend],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Run the chosen workloads in their order; their results by name."""
    results: dict[str, Any] = {}
    if "overhead" in chosen:
        progress(
            f"overhead: {settings.overhead_drivers:,} drivers, tiered also at INFO"
        )
        results["overhead"] = overhead.overhead(
            settings.overhead_drivers,
            settings.overhead_tiers,
            settings.rounds,
            backends,
            progress,
            info_log_rounds=settings.info_log_rounds,
        )
        progress(f"overhead: {settings.small_drivers:,} drivers, every peer")
        results["overhead_small"] = overhead.overhead(
            settings.small_drivers,
            settings.small_tiers,
            settings.rounds,
            backends,
            progress,
        )
    if "latency" in chosen:
        progress("latency")
        results["latency"] = latency.latency(settings, backends, progress)
    if "scaling" in chosen:
        progress("scaling")
        results["scaling"] = scaling.scaling(settings, backends, progress)
    if "importtime" in chosen:
        progress("import time")
        results["importtime"] = importtime.importtime(
            settings.import_runs, settings.import_profiles, progress
        )
    if "exec" in chosen:
        progress(
            f"exec to READY: {settings.exec_drivers} drivers in "
            f"{settings.exec_tiers} tiers, one process a run"
        )
        results["exec"] = exec_ready.exec_ready(settings, backends, progress)
    if "dag" in chosen:
        progress(
            f"dag: {settings.latency_drivers} drivers in {settings.latency_tiers} "
            "tiers with requirements, two schedules and by hand"
        )
        results["dag"] = latency.dag_startup(settings, backends, progress)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
