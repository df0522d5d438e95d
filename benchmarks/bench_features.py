"""Speed and memory of the feature builders on simulated cohorts. Run by hand, never a test.

    /work/venv/bin/python benchmarks/bench_features.py [--sizes 1000,5000,20000,50000]

For each size: simulate (``cohort.simulate``), load (``cohort.load``), then time
``build_landmark_table`` (default landmarks) and ``counting_process_table``, and measure
their peak traced memory (tracemalloc, a second run so tracing does not skew the timing).
Prints rows/s and µs per output row and per measurement row: flat µs/row across sizes is
linear growth. Then compares ``counting_process_table`` with lifelines'
``add_covariate_to_timeline`` (one marker at a time, as lifelines documents) on the same
patients and markers. Targets: landmark table for 50k patients < 15 s and < 3 GB peak;
counting-process table >= 100x lifelines on 5,000 patients.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cohort.cohort import Cohort
from cohort.load import load_cohort
from cohort.simulate import simulate_cohort
from cohort.vocabulary import DAY, EVENT, MARKER, PATIENT_ID, TIME, VALUE
from features import build_landmark_table, counting_process_table

LIFELINES_MARKERS = ("ctc_total", "afp")


def timed(fn: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, float, float]:
    """Result, wall seconds, and peak traced MiB (from a second, traced run)."""
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def cohort_of(size: int, seed: int, workdir: Path) -> Cohort:
    folder = workdir / f"sim-{size}-{seed}"
    if not (folder / "cohort.toml").is_file():
        simulate_cohort(folder, n_patients=size, seed=seed)
    return load_cohort(folder)


def bench_size(size: int, seed: int, workdir: Path) -> list[dict[str, Any]]:
    started = time.perf_counter()
    cohort = cohort_of(size, seed, workdir)
    print(
        f"\n{size:,} patients: {len(cohort.measurements):,} measurement rows "
        f"(simulated + loaded in {time.perf_counter() - started:.1f} s)"
    )
    rows = []
    builders = {
        "landmark": lambda: build_landmark_table(cohort),
        "counting": lambda: counting_process_table(cohort),
    }
    for name, fn in builders.items():
        table, seconds, peak = timed(fn)
        rows.append(
            {
                "table": name,
                "patients": size,
                "measurements": len(cohort.measurements),
                "rows": len(table),
                "columns": table.shape[1],
                "seconds": seconds,
                "rows_per_s": len(table) / seconds,
                "us_per_row": 1e6 * seconds / max(len(table), 1),
                "us_per_measurement": 1e6 * seconds / max(len(cohort.measurements), 1),
                "peak_MiB": peak,
            }
        )
        print(
            f"  {name:9s} {len(table):>10,} rows x {table.shape[1]:>3} cols in {seconds:7.2f} s "
            f"({len(table) / seconds:>12,.0f} rows/s, {rows[-1]['us_per_row']:.2f} µs/row), "
            f"peak {peak:,.0f} MiB traced"
        )
    return rows


def lifelines_table(cohort: Cohort, markers: tuple[str, ...]) -> pd.DataFrame:
    from lifelines.utils import add_covariate_to_timeline, to_long_format

    ep = cohort.endpoint()
    table = to_long_format(ep[ep[TIME] > 0].reset_index(drop=True), duration_col=TIME)
    m = cohort.measurements
    for marker in markers:
        cv = m.loc[m[MARKER] == marker, [PATIENT_ID, DAY, VALUE]]
        cv = cv.assign(**{DAY: cv[DAY].clip(lower=0)}).drop_duplicates(
            [PATIENT_ID, DAY], keep="last"
        )
        cv = cv.rename(columns={VALUE: f"{marker}_last"})
        table = add_covariate_to_timeline(table, cv, PATIENT_ID, DAY, EVENT)
    return table


def bench_lifelines(size: int, seed: int, workdir: Path) -> None:
    cohort = cohort_of(size, seed, workdir)
    started = time.perf_counter()
    ours = counting_process_table(cohort, markers=list(LIFELINES_MARKERS))
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = lifelines_table(cohort, LIFELINES_MARKERS)
    theirs_s = time.perf_counter() - started
    print(
        f"\ncounting-process table vs lifelines add_covariate_to_timeline, {size:,} patients, "
        f"markers {', '.join(LIFELINES_MARKERS)}:\n"
        f"  ctcmon    {len(ours):>8,} rows in {ours_s:8.3f} s\n"
        f"  lifelines {len(theirs):>8,} rows in {theirs_s:8.3f} s\n"
        f"  ratio     {theirs_s / ours_s:8.0f}x (target >= 100x)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000,50000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lifelines-patients", type=int, default=5000)
    parser.add_argument("--workdir", type=Path, default=None, help="keeps simulated cohorts")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="ctcmon-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        results = [row for size in sizes for row in bench_size(size, args.seed, workdir)]
        if args.lifelines_patients:
            bench_lifelines(args.lifelines_patients, args.seed, workdir)
    frame = pd.DataFrame(results)
    print("\nlinear growth (µs per output row, and per measurement row, should stay flat):")
    print(
        frame.pivot(
            index="patients", columns="table", values=["us_per_row", "us_per_measurement"]
        ).round(3)
    )
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"\nprocess peak RSS (including simulate + load): {max_rss:,.0f} MiB")


if __name__ == "__main__":
    main()
