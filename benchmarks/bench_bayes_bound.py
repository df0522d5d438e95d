"""The trained model against what the markers can tell: the Bayes-optimal risk of the process.
Run by hand (several minutes), never a test.

    nice python benchmarks/bench_bayes_bound.py [--workdir DIR] [--reuse [--retrain]]
        [--features summary|mixed] [--train-patients 1500] [--holdout-patients 1000] [--models xgb_aft,cox] [--k 1000]
        [--min-ess 50] [--shifted | --shifted-only]

1. ``ctcmon simulate`` a training cohort (seed 1) and a held-out one (seed 2), ``ctcmon train
   --folds 5 --register`` into a new MLflow SQLite store (``bench_alarm_replay.prepare``;
   ``--models`` default: ``ctcmon train``'s default list, the stack included);
2. the registered champion's packaged pipeline (``RiskPipeline.score``, the batch path of the
   served assessment) scores the held-out cohort at every post-index draw up to the end of
   surveillance, and at the landmarks 90, 180, ..., 540 days;
3. the Bayes-optimal risk (``evaluation.bayes_bound``: the posterior under the simulator's own
   process given the covariates, every marker value and scan up to the day) at the same
   points;
4. printed, model beside bound: time-dependent AUC at each landmark (event within 365 days,
   IPCW from the held-out rows) and the mean over the landmarks with the ratio; the alarm per
   patient over the monitoring course (``alarms.operating_point``: the rule chosen for
   patient-level specificity 0.90 on the held-out draws, for both; and the model's stated rule
   beside the bound at the specificity that rule reaches), sensitivity and median lead with
   ratios; calibration of both per band of days since index (Kaplan-Meier observed risk);
   the importance sampler's effective sample sizes. Everything to ``bound_figures.json``.
"""

from __future__ import annotations

import argparse
import json
import os
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
from bench_alarm_replay import prepare, tracking_uri
from bench_serving import CHAMPION

from alarms.operating_point import Target, choose, figures
from alarms.series import SCORE
from alarms.surveillance import END_DAY, surveillance_table
from cohort.load import load_cohort
from cohort.simulate import SimulationParams, simulate_cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, PATIENT_ID, TRUTH_FILE
from evaluation.bayes_bound import BOUND_ESS, BOUND_RISK, bayes_risks
from features.landmark import build_landmark_table, draw_points
from training.day_bands import served_calibration
from training.evaluate import OOF_RISK
from training.metrics import landmark_metrics

HORIZON = 365.0
LANDMARKS = [90.0, 180.0, 270.0, 360.0, 450.0, 540.0]
RISK = f"risk_{HORIZON:.0f}"


def scored_points(holdout: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every post-index draw up to the end of surveillance, and the landmark rows at risk."""
    surv = surveillance_table(holdout).set_index(PATIENT_ID)[END_DAY]
    draws = draw_points(holdout)
    draws = draws[draws[LANDMARK_DAY] <= draws[PATIENT_ID].astype(str).map(surv)]
    table = build_landmark_table(holdout, LANDMARKS, horizon_days=HORIZON)
    return draws.reset_index(drop=True), table


def ratio_interval(
    table: pd.DataFrame, model: np.ndarray, bound: np.ndarray, n_boot: int, seed: int = 0
) -> tuple[float, float]:
    """95% patient-bootstrap interval of the mean-AUC ratio: held-out patients resampled
    with replacement (all of a patient's landmark rows together), model and bound on the
    same resample, the ratio's 2.5% and 97.5% percentiles."""
    codes, uniques = pd.factorize(table[PATIENT_ID])
    rows_of = pd.Series(np.arange(len(table))).groupby(codes).apply(np.asarray).tolist()
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        idx = np.concatenate([rows_of[i] for i in rng.integers(0, len(uniques), len(uniques))])
        t = table.iloc[idx].reset_index(drop=True)
        m = landmark_metrics(t, model[idx], None, HORIZON, scores=("auc",))["auc"]
        b = landmark_metrics(t, bound[idx], None, HORIZON, scores=("auc",))["auc"]
        ratios.append(m / b)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def auc_figures(
    table: pd.DataFrame, model: np.ndarray, bound: np.ndarray, n_boot: int = 0
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = []
    for name, risk in (("model", model), ("bound", bound)):
        m = landmark_metrics(table, risk, None, HORIZON, scores=("auc",))
        out[f"{name}_auc"], out[f"{name}_auc_unweighted"] = m["auc"], m["auc_unweighted"]
        rows.append(m["by_landmark"].set_index(LANDMARK_DAY)["auc"].rename(name))
    by = pd.concat(rows, axis=1).join(
        landmark_metrics(table, bound, None, HORIZON, scores=("auc",))["by_landmark"].set_index(
            LANDMARK_DAY
        )[["n_at_risk", "n_events"]]
    )
    by["ratio"] = by["model"] / by["bound"]
    out["by_landmark"] = by.reset_index().to_dict(orient="list")
    out["ratio"] = out["model_auc"] / out["bound_auc"]
    out["ratio_unweighted"] = out["model_auc_unweighted"] / out["bound_auc_unweighted"]
    if n_boot > 1:
        out["ratio_low"], out["ratio_high"] = ratio_interval(table, model, bound, n_boot)
    print("\ntime-dependent AUC, event within 365 days of the landmark (held-out cohort)")
    print(by.to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        f"mean over landmarks 90-540 d (weighted by n at risk): model {out['model_auc']:.4f}, "
        f"bound {out['bound_auc']:.4f}, ratio {out['ratio']:.4f}  "
        f"(unweighted: {out['model_auc_unweighted']:.4f} / {out['bound_auc_unweighted']:.4f}"
        f" = {out['ratio_unweighted']:.4f}; target >= 0.975)"
    )
    if n_boot > 1:
        print(
            f"ratio 95% CI {out['ratio_low']:.4f}-{out['ratio_high']:.4f} "
            f"({n_boot} patient-bootstrap resamples)"
        )
    return out


def _point(op: Any) -> dict[str, Any]:
    d = op.to_dict()
    keys = ("threshold", "confirm", "patient_specificity", "sensitivity", "sensitivity_low")
    keys += ("sensitivity_high", "median_lead_days", "false_alarms_per_patient_year")
    return {k: d.get(k) for k in keys}


def alarm_figures(
    draws: pd.DataFrame, model: np.ndarray, bound: np.ndarray, holdout: Any, pipe: Any
) -> dict[str, Any]:
    surv = surveillance_table(holdout)
    frames = {
        name: pd.DataFrame({PATIENT_ID: draws[PATIENT_ID], DAY: draws[LANDMARK_DAY], SCORE: risk})
        for name, risk in (("model", model), ("bound", bound))
    }
    lookback = float((pipe.alarm.operating_point or {}).get("lookback_days", 365.0))
    out: dict[str, Any] = {"lookback_days": lookback}
    target = Target(patient_specificity=0.9)
    for name, frame in frames.items():
        out[f"{name}_chosen_on_holdout"] = _point(
            choose(frame, surv, target, lookback_days=lookback, n_boot=200, seed=0)
        )
    stated = figures(
        frames["model"],
        surv,
        float(pipe.alarm.threshold),
        int(pipe.alarm.confirm),
        lookback_days=lookback,
        n_boot=200,
        seed=0,
    )
    out["model_stated_rule"] = _point(stated)
    spec = stated.patient_specificity
    if spec is not None and 0 < spec < 1:
        out["bound_at_stated_rule_specificity"] = _point(
            choose(
                frames["bound"],
                surv,
                Target(patient_specificity=spec),
                lookback_days=lookback,
                n_boot=200,
                seed=0,
            )
        )
    print(f"\nalarm per patient over the monitoring course (look-back {lookback:g} d)")
    rows = {k: v for k, v in out.items() if isinstance(v, dict)}
    print(pd.DataFrame(rows).T.to_string(float_format=lambda v: f"{v:.4g}"))
    for a, b in (
        ("model_chosen_on_holdout", "bound_chosen_on_holdout"),
        ("model_stated_rule", "bound_at_stated_rule_specificity"),
    ):
        if a in out and b in out and out[b]["sensitivity"]:
            ratio = (out[a]["sensitivity"] or 0.0) / out[b]["sensitivity"]
            out[f"sensitivity_ratio_{a}"] = ratio
            print(
                f"{a} / {b}: sensitivity {out[a]['sensitivity']:.3f} / "
                f"{out[b]['sensitivity']:.3f} = {ratio:.3f} (target >= 0.90); median lead "
                f"{out[a]['median_lead_days']} / {out[b]['median_lead_days']} d (target >= 125)"
            )
    return out


def calibration_figures(
    draws: pd.DataFrame, model: np.ndarray, bound: np.ndarray, holdout: Any
) -> dict[str, Any]:
    ep = holdout.endpoint(horizon_days=None)
    out = {}
    for name, risk in (("model", model), ("bound", bound)):
        frame = pd.DataFrame(
            {PATIENT_ID: draws[PATIENT_ID], LANDMARK_DAY: draws[LANDMARK_DAY], OOF_RISK: risk}
        )
        table = served_calibration(frame, ep, HORIZON)
        cols = [c for c in ("band", "n_rows", "predicted", "observed", "difference") if c in table]
        print(f"\ncalibration in the large of the {name} at every draw, per band of days")
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        out[name] = table[cols].to_dict(orient="list")
    return out


def shifted_params() -> SimulationParams:
    """The shifted process: shorter doubling times (median 60 d, not 86), CTC shedding per
    unit burden halved (more low shedders), draws every 60 days for the first two years."""
    return SimulationParams(
        doubling_time_median_days=60.0,
        ctc_at_visible=3.0,
        draw_schedule_days=tuple(float(d) for d in (30, *range(60, 721, 60))),
    )


def _cached_bound(cache: Path | None, points: pd.DataFrame) -> pd.DataFrame | None:
    """The bound risks of an earlier run on the same held-out cohort and points, if kept."""
    if cache is None or not cache.is_file():
        return None
    bound = pd.read_csv(cache, dtype={PATIENT_ID: str})
    key = [PATIENT_ID, LANDMARK_DAY]
    mine = points[key].astype({PATIENT_ID: str})
    if len(bound) != len(mine) or len(mine.merge(bound[key], on=key)) != len(mine):
        return None
    print(f"bound risks reused from {cache}", flush=True)
    return bound


def evaluate(
    holdout: Any,
    params: SimulationParams,
    pipe: Any,
    k: int,
    min_ess: float,
    cache: Path | None = None,
    n_boot: int = 0,
) -> dict[str, Any]:
    """Model and bound on one held-out cohort: AUC per landmark (with ``n_boot``, the mean
    AUC ratio's patient-bootstrap CI), alarm, calibration."""
    out: dict[str, Any] = {}
    draws, table = scored_points(holdout)
    started = time.perf_counter()
    model_draws = pipe.score(holdout, draws, [HORIZON])
    model_draws = draws.merge(model_draws, on=[PATIENT_ID, LANDMARK_DAY], how="left")[RISK]
    model_lm = pipe.score(holdout, table[[PATIENT_ID, LANDMARK_DAY]], [HORIZON])
    model_lm = table[[PATIENT_ID, LANDMARK_DAY]].merge(
        model_lm, on=[PATIENT_ID, LANDMARK_DAY], how="left"
    )[RISK]
    out["model_score_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    points = pd.concat([draws, table[[PATIENT_ID, LANDMARK_DAY]]]).drop_duplicates()
    key = [PATIENT_ID, LANDMARK_DAY]
    bound = _cached_bound(cache, points)
    if bound is None:
        bound = bayes_risks(
            holdout, points, horizon=HORIZON, params=params, k=k, seed=0, min_ess=min_ess
        )
        if cache is not None:
            bound[[*key, BOUND_RISK, BOUND_ESS]].to_csv(cache, index=False)
    seconds = time.perf_counter() - started
    out["bound"] = {
        "k": k,
        "min_ess": min_ess,
        "seconds": seconds,
        "points": len(points),
        "load_average": os.getloadavg(),
        "ess_median": float(bound[BOUND_ESS].median()),
        "ess_q05": float(bound[BOUND_ESS].quantile(0.05)),
        "share_ess_below_50": float((bound[BOUND_ESS] < 50).mean()),
    }
    print(
        f"bound at {len(points)} points, k = {k} courses each, in {seconds:.0f} s "
        f"({load(os.getloadavg())}); effective sample size median "
        f"{out['bound']['ess_median']:.0f}, 5% quantile {out['bound']['ess_q05']:.1f}",
        flush=True,
    )
    bound_draws = draws.merge(bound, on=key, how="left")[BOUND_RISK].to_numpy(float)
    bound_lm = table[key].merge(bound, on=key, how="left")[BOUND_RISK].to_numpy(float)
    out["auc"] = auc_figures(table, model_lm.to_numpy(float), bound_lm, n_boot)
    out["alarm"] = alarm_figures(draws, model_draws.to_numpy(float), bound_draws, holdout, pipe)
    out["calibration"] = calibration_figures(
        draws, model_draws.to_numpy(float), bound_draws, holdout
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path)
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the cohorts, the MLflow store and the bound's risks (kept in the work dir)",
    )
    p.add_argument("--retrain", action="store_true", help="with --reuse: train again")
    p.add_argument("--features", help="ctcmon train --features (default: its default)")
    p.add_argument("--train-patients", type=int, default=1500)
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--holdout-patients", type=int, default=1000)
    p.add_argument("--holdout-seed", type=int, default=2)
    p.add_argument("--models", help="comma-separated (default: ctcmon train's default)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--k", type=int, default=1000, help="latent courses per patient")
    p.add_argument("--min-ess", type=float, default=50.0, help="more courses below this ESS")
    p.add_argument("--shifted-only", action="store_true", help="the shifted process alone")
    p.add_argument("--shifted", action="store_true", help="also a held-out shifted process")
    a = p.parse_args()
    work = (a.workdir or Path(tempfile.mkdtemp(prefix="bench-bound-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}; {os.cpu_count()} CPUs; {load(os.getloadavg())}", flush=True)
    env = ctcmon_env(MLFLOW_TRACKING_URI=tracking_uri(work))
    done = prepare(a, work, env)
    figures_: dict[str, Any] = {"prepare": {k: v for k, v in done.items() if k != "train"}}
    if "train" in done:
        figures_["champion"] = done["train"].get("champion")
        figures_["comparison"] = done["train"].get("comparison")  # out of fold, training cohort

    from serving.model import ModelHolder

    holder = ModelHolder(CHAMPION, tracking_uri(work))
    holder.refresh()
    pipe = holder.current.pipeline
    print(f"champion: {pipe.model_name}", flush=True)
    cohorts = [] if a.shifted_only else [("reference", work / "holdout", SimulationParams())]
    if a.shifted or a.shifted_only:
        shifted = shifted_params()
        folder = work / "holdout-shifted"
        if not (a.reuse and (folder / TRUTH_FILE).is_file()):
            simulate_cohort(folder, a.holdout_patients, a.holdout_seed + 100, shifted)
        cohorts.append(("shifted", folder, shifted))
    for name, folder, params in cohorts:
        print(f"\n===== {name} process: held-out cohort {folder}", flush=True)
        cache = work / f"bound-{name}-k{a.k}-ess{a.min_ess:g}.csv" if a.reuse else None
        figures_[name] = evaluate(load_cohort(folder), params, pipe, a.k, a.min_ess, cache)
    (work / "bound_figures.json").write_text(json.dumps(figures_, indent=2, default=str))
    print(f"\nfigures in {work / 'bound_figures.json'}")


if __name__ == "__main__":
    main()
