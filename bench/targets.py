"""Issue 14's four performance targets, each measured and printed beside its limit (`make bench`).

  1. task completion over HTTP <= 6x the raw SpiffWorkflow step (bench_http.py), SQLite and PostgreSQL, and
     beside it the floor no completion can go under (bench_floor.py: bare HTTP, isolated step, its SQL
     on the bare driver with the step between the reads under the lock and the writes), where the time
     goes inside the service, phase by phase (phases.py), and what the step's isolation costs (the same
     phases with the step run in the benchmark's own process, which the service never does);
  2. flat history: one step at loop pass 50 <= 1.2x pass 1 (bench_scale.py, part 3);
  3. throughput on PostgreSQL, 8 clients, 2 web processes >= 250 completions/s (bench_scale.py, part 1), the
     median of three runs;
  4. bulk start of the annual assessment for 100,000 cadres on PostgreSQL < 5 minutes, and the inbox
     at that size < 20 ms (bench_bulk.py). `--cadres` runs a smaller county; the time for 100,000 is
     then an extrapolation at the measured rate and printed as such.

Machines are shared and noisy: the figures are what this run measured, nothing is asserted.

    python bench/targets.py [--cadres 100000] [--cases 100] [--per-client 160] [--skip 1,2,3,4]
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_bulk, bench_floor, bench_http, bench_scale, phases  # noqa: E402 - after the path is set

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1"
# What issue 14 quoted when it set the targets (same machine kind; not measured by this script), printed
# beside this run's figures.
QUOTED = {
    1: "issue 14 measured 6.3 ms = 15x on SQLite; the peer Flask + SpiffWorkflow service 41-48 ms",
    2: "issue 14 measured 2.2x (10.0 -> 21.4 ms from pass 1 to pass 50)",
    3: "the limit is Camunda 7's published rate of about 125 per core, on 2 cores",
}


THROUGHPUT_RUNS = 3


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def isolation_cost(isolated: dict[str, float], in_process: dict[str, float], http: float, raw: float) -> str:
    """What running the engine step in its isolated executor costs a completion, and the ratio target 1 would read
    without it (the service never runs it in process: designer code runs only in the sandbox)."""
    cost = isolated["in all"] - in_process["in all"]
    return (f"the step's isolation: {cost:.2f} ms of the completion ({isolated['in all']:.2f} ms in process with the "
            f"step in its executor, {in_process['in all']:.2f} ms with it run in the benchmark's process); "
            f"without it the completion would read about {(http - cost) / raw:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cadres", type=int, default=bench_bulk.FULL)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=bench_scale.PER_CLIENT)
    parser.add_argument("--skip", default="", help="comma-separated target numbers to leave out")
    args = parser.parse_args()
    skip = {int(n) for n in args.skip.split(",") if n}
    lines = []
    if 1 not in skip:
        isolated = bench_http.bench_executor_step(args.cases)[1]
        for backend in ("sqlite", "postgres"):
            (http, cpu, floor), (raw, raw_cpu), readings = bench_http.beside_raw(
                partial(bench_http.bench_http, backend, args.cases))
            isolated_phases = phases.phases(backend, 3 * args.cases)
            in_process_phases = phases.phases(backend, 3 * args.cases, step_in_process=True)
            lines.append(f"1. completion over HTTP, {backend:8}: {http:6.2f} ms = {http / raw:5.1f}x the raw step "
                         f"({raw:.2f} ms, the faster of {readings}; CPU {cpu:.2f} vs {raw_cpu:.2f} ms = "
                         f"{cpu / raw_cpu:.1f}x)   limit <= 6x: {verdict(http / raw <= 6)}\n"
                         f"   {bench_http.split(raw, http, floor, isolated)}\n"
                         f"   {bench_floor.floor(backend, args.cases, isolated).words(raw)}\n"
                         f"   in process, phase by phase: {phases.words(isolated_phases)}\n"
                         f"   {isolation_cost(isolated_phases, in_process_phases, http, raw)}")
            print(lines[-1], flush=True)
        lines.append(f"   quoted: {QUOTED[1]}")
    if 2 not in skip:
        costs = bench_scale.step_cost_by_history()
        ratio = costs[50] / costs[1]
        lines.append(f"2. flat history: step at pass 50 {costs[50] * 1000:.2f} ms vs pass 1 {costs[1] * 1000:.2f} ms "
                     f"= {ratio:.2f}x   limit <= 1.2x: {verdict(ratio <= 1.2)}\n   quoted: {QUOTED[2]}")
        print(lines[-1], flush=True)
    if 3 not in skip:
        # The rate moves with the minute on a shared host (212-283/s for one build within an hour): the median
        # of three runs, each on a fresh cluster, decides, and all three are printed.
        runs = sorted((bench_scale.throughput("postgres", args.per_client, (2,), (8,))[2, 8]
                       for _ in range(THROUGHPUT_RUNS)), key=lambda run: run.rate)
        run, rates = runs[len(runs) // 2], ", ".join(f"{each.rate:.1f}" for each in runs)
        lines.append(f"3. throughput, PostgreSQL, 2 web processes, 8 clients: {run.rate:.1f} completions/s, the median "
                     f"of {rates}   limit >= 250/s: {verdict(run.rate >= 250)}\n"
                     f"   why: {run.cpu_per_completion:.2f} ms CPU per completion ({', '.join(run.cpu_ms)}) caps "
                     f"{bench_scale.CORES} cores at {run.ceiling(bench_scale.CORES):.0f}/s\n   quoted: {QUOTED[3]}")
        print(lines[-1], flush=True)
    if 4 not in skip:
        figures = bench_bulk.bulk_figures(POSTGRES, args.cadres)
        opened, seconds, inbox = int(figures["opened"]), figures["seconds"], figures["inbox_ms"]
        rate = opened / seconds
        cpu = f"CPU {figures['cpu'] / opened * 1000:.2f} ms/case in the service and executors"
        if args.cadres == bench_bulk.FULL:
            bulk = f"{opened:,} cases in {seconds:.0f} s ({cpu})   limit < 300 s: {verdict(seconds < 300)}"
        else:
            projected = bench_bulk.FULL / rate
            bulk = (f"{opened:,} cases in {seconds:.1f} s ({rate:.0f}/s, {cpu}); EXTRAPOLATED to 100,000: "
                    f"{projected:.0f} s   limit < 300 s: {verdict(projected < 300)} (extrapolated, not measured)")
        lines.append(f"4. bulk start, PostgreSQL: {bulk}")
        lines.append(f"   inbox at {opened:,} open tasks: {inbox:.1f} ms (CPU {figures['inbox_cpu_ms']:.1f} ms)   "
                     f"limit < 20 ms: {verdict(inbox < 20)}")
        print("\n".join(lines[-2:]), flush=True)
    print("\nIssue 14 targets (this run):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
