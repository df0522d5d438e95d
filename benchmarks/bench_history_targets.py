"""Issue #18's targets measured side by side in one run, on one commit (by hand, ~30 min).

    nice python benchmarks/bench_history_targets.py [--workdir DIR] [--train-patients 3000]
        [--holdout-patients 1000] [--holdout-seed 2] [--k 1000] [--min-ess 50]
        [--requests 1000] [--workers 2] [--concurrency 12] [--bootstrap N]

1. **Training**: ``ctcmon simulate`` 3,000 training patients (seed 1) and ``ctcmon train
   --folds 5 --register --features mixed`` with the default model list (every model, the
   mixed-model stage, the stack), timed (wall, CPU, peak resident memory of the run);
   target < 3 min.
2. **Held-out cohorts against the Bayes bound** (``bench_bayes_bound.evaluate``): 1,000
   held-out patients of the same process (seed 2) and 1,000 of the shifted process (seed
   102), each scored by the registered champion's packaged pipeline at the landmarks 90-540
   days and at every draw, beside the Bayes-optimal risk of its own process; mean AUC ratio,
   targets >= 0.975x (same process) and >= 0.96x (shifted).
3. **The served alarm** (``bench_alarm_replay.replay``): ``ctcmon serve`` on a free port, and
   every draw of every held-out patient of the same process through ``POST /v1/risk`` with
   the history dated up to that day; the issued alarms scored per patient over the
   monitoring course (``alarms.operating_point.figures``); the bound's rule chosen on the
   same draws for the specificity the issued alarm reached there; targets: sensitivity >=
   0.90x the bound's, median lead >= 125 days. The served 365-day risks are compared with the
   packaged pipeline's batch scores of step 2 at the same draws (the AUC's path).
4. **Latency**: ``POST /v1/risk`` in process (``bench_serving.in_process``: auth,
   validation, the assessment with its BLUPs, the stored row) on the champion, for a
   held-out patient with 20 draws; target p99 <= 15 ms.
5. **pbcseq** on the shipped folds, R's pre-specified variables, ``--features blup``
   (``training.train`` in process, the same configuration as the README's command): AUC and
   Brier at s + 3 y at every landmark beside R's two-stage rows; targets mean AUC >= 0.880,
   mean Brier <= 0.0926.

Prints every figure and a table of targets; everything to ``<workdir>/targets.json``.
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
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _replay_report import load
from _service import ctcmon_env
from bench_alarm_replay import (
    _clean,
    alarm_figures,
    courses,
    prepare,
    replay,
    serving,
    tracking_uri,
)
from bench_bayes_bound import HORIZON, evaluate, shifted_params
from bench_serving import CHAMPION, in_process, twenty_draws

from alarms.operating_point import Target, choose
from alarms.series import SCORE
from alarms.surveillance import surveillance_table
from cohort.load import load_cohort
from cohort.simulate import SimulationParams, simulate_cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, PATIENT_ID, TRUTH_FILE
from evaluation.bayes_bound import BOUND_RISK

ROOT = Path(__file__).resolve().parents[1]
# R's two-stage landmarking with LME BLUPs on the same folds (../shared/datasets/README.md,
# cohort/datasets/PROVENANCE.md): AUC and Brier at s + 3 y, s = 1..5 y
R_TWO_STAGE_AUC = [0.907, 0.916, 0.861, 0.870, 0.799]
R_BEST_BRIER = 0.0926
RISK = f"risk_{HORIZON:.0f}"


def served_alarm(
    frame: pd.DataFrame, holdout: Any, bound: pd.DataFrame, stated: dict[str, Any], a: Any
) -> dict[str, Any]:
    """The issued alarms per patient, and the bound's rule at the specificity they reached."""
    surv = surveillance_table(holdout)
    surv = surv[surv[PATIENT_ID].isin(set(frame[PATIENT_ID]))].reset_index(drop=True)
    issued = alarm_figures(frame, surv, stated, a)
    measured = issued["measured"]
    spec = measured["patient_specificity"]
    key = [PATIENT_ID, LANDMARK_DAY]
    at = frame[[PATIENT_ID, DAY]].rename(columns={DAY: LANDMARK_DAY})
    b = at.merge(bound[[*key, BOUND_RISK]], on=key, how="left")
    missing = int(b[BOUND_RISK].isna().sum())
    if missing:
        raise SystemExit(f"{missing} served draws have no bound risk: not the same draws")
    bound_frame = pd.DataFrame(
        {PATIENT_ID: b[PATIENT_ID], DAY: b[LANDMARK_DAY], SCORE: b[BOUND_RISK]}
    )
    lookback = float(stated["lookback_days"])
    at_spec = choose(
        bound_frame,
        surv,
        Target(patient_specificity=spec),
        lookback_days=lookback,
        n_boot=a.boot,
        seed=0,
    ).to_dict()
    out = {
        "issued": measured,
        "bound_at_issued_specificity": at_spec,
        "issued_vs_stated_rule_disagreements": issued["issued_vs_stated_rule_disagreements"],
        "disagreements_within_rounding_of_threshold": issued[
            "disagreements_within_rounding_of_threshold"
        ],
        "sensitivity_ratio": (measured["sensitivity"] or 0.0) / at_spec["sensitivity"],
    }
    print(
        f"\nthe served alarm over the monitoring course (look-back {lookback:g} d), "
        f"{len(surv)} held-out patients"
    )
    rows = {"served (issued)": measured, "bound at that specificity": at_spec}
    cols = ["patient_specificity", "sensitivity", "sensitivity_low", "sensitivity_high"]
    cols += ["median_lead_days", "false_alarms_per_patient_year", "threshold", "confirm"]
    print(pd.DataFrame(rows).T[cols].to_string(float_format=lambda v: f"{v:.4g}"))
    return out


def served_vs_batch(frame: pd.DataFrame, holdout: Any, pipe: Any) -> dict[str, Any]:
    """The served 365-day risks against the packaged pipeline's batch scores at those draws."""
    at = frame[[PATIENT_ID, DAY]].rename(columns={DAY: LANDMARK_DAY})
    batch = pipe.score(holdout, at, [HORIZON])
    both = at.assign(served=frame[RISK].to_numpy(float)).merge(
        batch, on=[PATIENT_ID, LANDMARK_DAY], how="left"
    )
    diff = (both["served"] - both[RISK]).abs()
    return {"draws": len(both), "max_abs_difference": float(diff.max())}


def pbcseq_figures() -> dict[str, Any]:
    """pbcseq as the README's command trains it (``bench_mixed.run``), beside R's rows."""
    from bench_mixed import PBC_FOLDS, PBC_LANDMARKS, PBCSEQ, run

    from training.train import TrainConfig

    config = TrainConfig(
        models=["cox", "gbsa", "baseline"],
        landmarks=PBC_LANDMARKS,
        horizon_days=1095.0,
        folds_file=PBC_FOLDS,
        fit_on="landmarks",
        features="blup",
        markers=["bili", "albumin", "protime", "chol"],
        covariates=["age", "edema"],
        n_boot=0,
    )
    table = run("pbcseq", PBCSEQ, config, Path(tempfile.mkdtemp(prefix="bench-targets-pbc-")))
    out: dict[str, Any] = {"seconds": float(table["seconds"].iloc[0]), "models": {}}
    print("\npbcseq, shipped folds, R's variables, --features blup: at s + 3 y")
    for row in table.to_dict(orient="records"):
        auc = [row[f"auc@{d:g}"] for d in PBC_LANDMARKS]
        brier = [row[f"brier@{d:g}"] for d in PBC_LANDMARKS]
        out["models"][row["model"]] = {
            "landmarks": PBC_LANDMARKS,
            "auc": auc,
            "brier": brier,
            "mean_auc": row["auc_mean"],
            "mean_brier": row["brier_mean"],
        }
        print(
            f"  {row['model']:<9} AUC {' / '.join(f'{v:.3f}' for v in auc)} mean "
            f"{row['auc_mean']:.4f}; Brier {' / '.join(f'{v:.3f}' for v in brier)} mean "
            f"{row['brier_mean']:.4f}"
        )
    print(
        f"  R two-stage AUC {' / '.join(f'{v:.3f}' for v in R_TWO_STAGE_AUC)} mean "
        f"{np.mean(R_TWO_STAGE_AUC):.4f}; mean Brier {R_BEST_BRIER}"
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path)
    p.add_argument("--train-patients", type=int, default=3000)
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--holdout-patients", type=int, default=1000)
    p.add_argument("--holdout-seed", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--k", type=int, default=1000, help="latent courses per patient")
    p.add_argument("--min-ess", type=float, default=50.0, help="more courses below this ESS")
    p.add_argument("--requests", type=int, default=1000, help="in-process latency requests")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=12)
    p.add_argument("--boot", type=int, default=1000, help="patient-bootstrap resamples")
    p.add_argument("--ratio-boot", type=int, default=200, help="resamples for the AUC ratio")
    p.add_argument(
        "--bootstrap", type=int, help="ctcmon train --bootstrap (default: ctcmon train's own)"
    )
    p.add_argument("--latency-of", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.latency_of:
        latency_of(a.latency_of, a.requests)
        return
    # what prepare() and the replay read besides the above
    a.features, a.models, a.reuse = "mixed", None, False
    a.time_limit, a.max_errors, a.specificity = 3600.0, 50, 0.9
    work = (a.workdir or Path(tempfile.mkdtemp(prefix="bench-targets-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for leftover in [*work.glob("service.db*"), work / "mlflow.db"]:
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip()
    print(f"work dir {work}; commit {commit}; {os.cpu_count()} CPUs; {load(os.getloadavg())}")
    db = work / "service.db"
    env = ctcmon_env(
        MLFLOW_TRACKING_URI=tracking_uri(work),
        CTCMON_DATABASE_URL=f"sqlite:///{db.as_posix()}",
        CTCMON_MODEL_POLL_SECONDS="0",
    )
    fig: dict[str, Any] = {"args": {k: str(v) for k, v in vars(a).items()}, "commit": commit}

    # 1. training, timed
    fig["prepare"] = prepare(a, work, env)
    prep = fig["prepare"]
    print(f"  peak resident memory of a child so far: {prep['train_peak_rss_mb']:.0f} MB")

    from serving.model import ModelHolder

    holder = ModelHolder(CHAMPION, tracking_uri(work))
    holder.refresh()
    pipe = holder.current.pipeline
    print(f"champion: {pipe.model_name}", flush=True)

    # 2. both held-out cohorts against their bound
    shifted_dir = work / "holdout-shifted"
    if not (shifted_dir / TRUTH_FILE).is_file():
        simulate_cohort(shifted_dir, a.holdout_patients, a.holdout_seed + 100, shifted_params())
    holdout = load_cohort(work / "holdout")
    caches = {}
    for name, cohort, params in (
        ("reference", holdout, SimulationParams()),
        ("shifted", load_cohort(shifted_dir), shifted_params()),
    ):
        print(f"\n===== {name} process, held out", flush=True)
        caches[name] = work / f"bound-{name}.csv"
        caches[name].unlink(missing_ok=True)
        fig[name] = evaluate(cohort, params, pipe, a.k, a.min_ess, caches[name], a.ratio_boot)
    bound = pd.read_csv(caches["reference"], dtype={PATIENT_ID: str})

    # 3. the served alarm, every held-out draw through the running service
    course_list = courses(holdout)
    with serving(a, work, env, course_list) as (base, tokens, fig["model"]):
        n = sum(len(c["draws"]) for c in course_list)
        print(f"\nreplaying {n:,} draws of {len(course_list):,} held-out patients ...", flush=True)
        # the simulator numbers every cohort's patients alike; the service knows the training
        # patients by site and id and would serve them cross-fitted: held-out ids prefixed
        frame, fig["replay"] = replay(base, tokens, course_list, a, prefix="holdout-")
    if fig["replay"]["patients_incomplete"]:
        raise SystemExit(f"the replay did not complete: {fig['replay']['first_errors']}")
    print(
        f"  {fig['replay']['requests']:,} assessments in {fig['replay']['wall_seconds']:.0f} s, "
        f"{fig['replay']['errors']} errors; {load(fig['replay']['load_average'])}"
    )
    frame.to_csv(work / "replay_assessments.csv", index=False)
    stated = fig["model"]["alarm"]["operating_point"]
    fig["stated"] = stated
    fig["served_alarm"] = served_alarm(frame, holdout, bound, stated, a)
    fig["served_vs_batch"] = served_vs_batch(frame, holdout, pipe)
    print(
        f"served vs batch 365-day risk at {fig['served_vs_batch']['draws']:,} draws: largest "
        f"difference {fig['served_vs_batch']['max_abs_difference']:.2g} (served to 4 decimals)"
    )

    # 4. in-process latency on the champion, in a fresh process: a service worker holds the
    # model, not this run's cohorts and bound (a large heap slows every garbage collection)
    child = [sys.executable, __file__, "--latency-of", str(work), "--requests", str(a.requests)]
    done = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
    fig["latency"] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nin process (a fresh process), {pipe.model_name}, 20 draws:")
    for line in fig["latency"]["lines"]:
        print("  " + line)

    # 5. pbcseq against R
    fig["pbcseq"] = pbcseq_figures()
    fig["wall_seconds"] = time.perf_counter() - started

    targets = target_rows(fig)
    fig["targets"] = targets
    print(f"\n===== issue #18's targets, one run (commit {commit}, {fig['wall_seconds']:.0f} s)")
    print(pd.DataFrame(targets).to_string(index=False))
    (work / "targets.json").write_text(json.dumps(_clean(fig), indent=2, default=str))
    print(f"\nfigures in {work / 'targets.json'}")


def latency_of(work: Path, requests: int) -> None:
    """Step 4 in a child process: one JSON line with the summary lines and percentiles."""
    from serving.auth import create_key
    from serving.model import ModelHolder
    from serving.store import Store

    holder = ModelHolder(CHAMPION, tracking_uri(work))
    holder.refresh()
    pipe = holder.current.pipeline
    body = twenty_draws(work / "holdout", pipe.manifest)
    # not a training patient's id: those are served cross-fitted
    body["patient"] = {**body["patient"], PATIENT_ID: f"latency-{body['patient'][PATIENT_ID]}"}
    db = f"sqlite:///{(work / 'service.db').as_posix()}"
    store = Store(db)
    store.migrate()
    _, token = create_key(store, "clinician", body["patient"].get("site_id") or "site-a")
    store.dispose()
    lines, assess_p50, app_p99, client_p99 = in_process(holder, db, token, body, requests)
    out = {"lines": lines, "assess_p50_ms": assess_p50, "app_p99_ms": app_p99}
    print(json.dumps({**out, "client_p99_ms": client_p99, "requests": requests}))


def target_rows(fig: dict[str, Any]) -> list[dict[str, Any]]:
    prep, served = fig["prepare"], fig["served_alarm"]
    ref, shifted = fig["reference"]["auc"], fig["shifted"]["auc"]
    issued, bound = served["issued"], served["bound_at_issued_specificity"]
    cox = fig["pbcseq"]["models"]["cox"]

    def row(what: str, target: str, measured: str, met: bool) -> dict[str, Any]:
        return {"target": what, "wanted": target, "measured": measured, "met": met}

    return [
        row(
            "same process: mean AUC 90-540 d / bound",
            ">= 0.975",
            f"{ref['ratio']:.4f} ({ref['model_auc']:.4f} / {ref['bound_auc']:.4f}; "
            f"CI {ref.get('ratio_low', np.nan):.3f}-{ref.get('ratio_high', np.nan):.3f})",
            ref["ratio"] >= 0.975,
        ),
        row(
            "shifted process: mean AUC / bound",
            ">= 0.96",
            f"{shifted['ratio']:.4f} ({shifted['model_auc']:.4f} / {shifted['bound_auc']:.4f}; "
            f"CI {shifted.get('ratio_low', np.nan):.3f}-{shifted.get('ratio_high', np.nan):.3f})",
            shifted["ratio"] >= 0.96,
        ),
        row(
            "served alarm: sensitivity / bound's at its specificity",
            ">= 0.90",
            f"{served['sensitivity_ratio']:.3f} ({issued['sensitivity']:.3f} "
            f"[{issued['sensitivity_low']:.3f}-{issued['sensitivity_high']:.3f}] / "
            f"{bound['sensitivity']:.3f} at specificity {issued['patient_specificity']:.3f})",
            served["sensitivity_ratio"] >= 0.90,
        ),
        row(
            "served alarm: median lead, days",
            ">= 125",
            f"{issued['median_lead_days']:g} [{issued['median_lead_days_low']:g}-"
            f"{issued['median_lead_days_high']:g}] (bound {bound['median_lead_days']:g})",
            (issued["median_lead_days"] or 0) >= 125,
        ),
        row(
            "served alarm: patient specificity, stated -> met",
            "(as stated)",
            f"{fig['stated']['patient_specificity']:.3f} -> {issued['patient_specificity']:.3f} "
            f"[{issued['patient_specificity_low']:.3f}-{issued['patient_specificity_high']:.3f}]",
            issued["patient_specificity_low"]
            <= fig["stated"]["patient_specificity"]
            <= issued["patient_specificity_high"],
        ),
        row(
            "pbcseq: mean AUC at s+3y, cox blup",
            ">= 0.880",
            f"{cox['mean_auc']:.4f} (R {np.mean(R_TWO_STAGE_AUC):.3f})",
            cox["mean_auc"] >= 0.880,
        ),
        row(
            "pbcseq: mean Brier at s+3y",
            "<= 0.0926",
            f"{cox['mean_brier']:.4f}",
            cox["mean_brier"] <= R_BEST_BRIER,
        ),
        row(
            f"train {int(fig['args']['train_patients']):,} patients, default list, mixed",
            "< 180 s",
            f"{prep['train_seconds']:.0f} s wall, {prep['train_cpu_seconds']:.0f} s CPU, "
            f"{prep['train_peak_rss_mb'] / 1024:.2f} GB",
            prep["train_seconds"] < 180,
        ),
        row(
            "POST /v1/risk p99 in process, BLUPs",
            "<= 15 ms",
            f"{fig['latency']['client_p99_ms']:.1f} ms with store "
            f"(app alone {fig['latency']['app_p99_ms']:.1f})",
            fig["latency"]["client_p99_ms"] <= 15,
        ),
    ]


if __name__ == "__main__":
    main()
