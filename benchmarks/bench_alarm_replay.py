"""The alarm a clinician meets: a held-out cohort replayed through the running service at every
draw, the issued alarms scored per patient, side by side with what the service states.
Run by hand (it takes several minutes), never a test.

    nice python benchmarks/bench_alarm_replay.py [--workdir DIR] [--reuse]
        [--train-patients 3000] [--holdout-patients 2000] [--reference-patients 9000]
        [--models a,b] [--workers 2] [--concurrency 12] [--time-limit 1800]

1. ``ctcmon simulate`` a training cohort (seed 1) and a held-out one (seed 2); ``ctcmon train
   --folds 5 --register`` into a new MLflow SQLite store in the work dir, timed (``--reuse``
   keeps an existing store and cohorts);
2. ``ctcmon keys create`` (a clinician key per site) and ``ctcmon serve --workers 2`` on a free
   loopback port; ``GET /v1/model`` is what the service states;
3. every held-out patient, draw by draw (each post-index draw day up to the end of
   surveillance): ``POST /v1/risk`` with the history dated up to that day and ``as_of`` = that
   day, ``--concurrency`` requests in flight;
4. the issued alarms scored per patient by the function that stated the operating point
   (``alarms.operating_point.figures``, the lead-time analysis's definitions, the stated
   look-back), with patient-bootstrap CIs, beside ``/v1/model``'s ``alarm.operating_point``;
5. calibration of the served 365-day risk per band of days since index
   (``training.day_bands.served_calibration``: observed Kaplan-Meier risk within 365 days of
   each draw), beside the out-of-fold figures of the training run (MLflow);
6. the intervals: how many assessments carry one, and what they cover (see ``intervals``);
7. latency: over HTTP from the replay (under its concurrency), and ``RiskPipeline.assess``
   in process for one patient with 20 draws;
8. a table of stated vs measured against the issue's targets; every figure to
   ``<workdir>/replay_figures.json``, every assessment to ``replay_assessments.csv``;
9. with ``--training-patients N``: N patients of the TRAINING cohort replayed the same way.
   The service serves them cross-fitted (the fold model fitted without them); their alarms
   are scored per patient as above, beside the same draws scored in process by the packaged
   model without cross-fitting (the in-sample risks a training patient got before).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _replay_report import load, report
from _service import (
    create_key_cli,
    ctcmon_env,
    ctcmon_serve,
    free_port,
    stop,
    wait_http,
)
from bench_serving import CHAMPION, timed, twenty_draws

from alarms.operating_point import Target, choose, figures
from alarms.series import ALARM, SCORE, score_alarms
from alarms.surveillance import END_DAY, surveillance_table
from cohort.load import load_cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, PATIENT_ID, TRUTH_FILE
from features.landmark import draw_points
from training.day_bands import DAY_BANDS, served_calibration
from training.evaluate import OOF_RISK

HORIZON = 365.0


# --------------------------------------------------------------------------- 1. train
def run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, float, float]:
    """``ctcmon ARGS`` as a user runs it: its stdout, wall time and CPU time (its own and its
    worker processes'; on a shared machine the wall time also holds the waits for a core)."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-m", "ctcmon", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ctcmon {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout, time.perf_counter() - start, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(a: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Cohorts simulated and models trained (or reused); what was done and how long it took."""
    done: dict[str, Any] = {"reused": False}
    store = work / "mlflow.db"
    have = all((work / n / TRUTH_FILE).is_file() for n in ("train", "holdout"))
    if a.reuse and have and store.is_file() and not getattr(a, "retrain", False):
        done["reused"] = True
        return done
    for name, n, seed in (
        ("train", a.train_patients, a.train_seed),
        ("holdout", a.holdout_patients, a.holdout_seed),
    ):
        if a.reuse and have:
            continue
        _, done[f"simulate_{name}_seconds"], _ = run_cli(
            ["simulate", str(work / name), "--patients", str(n), "--seed", str(seed)], work, env
        )
    store.unlink(missing_ok=True)
    train = ["train", str(work / "train"), "--folds", str(a.folds), "--register", "--json"]
    train += ["--models", a.models] if a.models else []
    train += ["--features", a.features] if getattr(a, "features", None) else []
    train += ["--bootstrap", str(a.bootstrap)] if getattr(a, "bootstrap", None) is not None else []
    train += ["--tracking-uri", tracking_uri(work), "--experiment", "replay"]
    print(f"training: ctcmon {' '.join(train)}", flush=True)
    out, done["train_seconds"], done["train_cpu_seconds"] = run_cli(train, work, env)
    done["train"] = json.loads(out)
    # the largest resident set of any child so far: the training run's (simulating is smaller)
    done["train_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    done["train_load_average"] = os.getloadavg()
    print(
        f"  trained in {done['train_seconds']:.0f} s wall, {done['train_cpu_seconds']:.0f} s CPU "
        f"(at least {done['train_cpu_seconds'] / (os.cpu_count() or 1):.0f} s wall on idle cores; "
        f"{load(done['train_load_average'])})",
        flush=True,
    )
    return done


def tracking_uri(work: Path) -> str:
    return f"sqlite:///{(work / 'mlflow.db').as_posix()}"


# --------------------------------------------------------------------------- 3. replay
def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value


def courses(cohort: Any) -> list[dict[str, Any]]:
    """Per patient: the record, dated measurements and scans (sorted), and the draw days to
    replay (post-index, up to the end of surveillance)."""
    surv = surveillance_table(cohort).set_index(PATIENT_ID)[END_DAY]
    points = draw_points(cohort)
    points = points[points[LANDMARK_DAY] <= points[PATIENT_ID].astype(str).map(surv)]
    days = points.groupby(PATIENT_ID)[LANDMARK_DAY].apply(list)
    m = cohort.measurements.sort_values([PATIENT_ID, DAY], kind="stable")
    i = cohort.imaging.sort_values([PATIENT_ID, DAY], kind="stable")
    m_cols = ["date", "marker", "value", "unit", "qualifier", "draw_id"]
    i_cols = ["date", "modality", "finding", "response", "criteria"]
    by_m = {pid: g for pid, g in m.groupby(PATIENT_ID, sort=False)}
    by_i = {pid: g for pid, g in i.groupby(PATIENT_ID, sort=False)}
    out = []
    for row in cohort.patients.to_dict(orient="records"):
        pid = row[PATIENT_ID]
        if pid not in days.index:
            continue
        mm = by_m.get(pid, m.iloc[:0])
        ii = by_i.get(pid, i.iloc[:0])
        out.append(
            {
                "patient": {k: _json(v) for k, v in row.items()},
                "m_day": mm[DAY].tolist(),
                "m": [{c: _json(r[c]) for c in m_cols} for r in mm.to_dict(orient="records")],
                "i_day": ii[DAY].tolist(),
                "i": [{c: _json(r[c]) for c in i_cols} for r in ii.to_dict(orient="records")],
                "draws": [float(d) for d in days[pid]],
            }
        )
    return out


@contextmanager
def serving(
    a: argparse.Namespace, work: Path, env: dict[str, str], course_list: list[dict[str, Any]]
) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """``ctcmon serve --workers a.workers`` on a free loopback port, with a clinician key per
    site of ``course_list``: (base URL, site -> key, what ``GET /v1/model`` states); stopped
    on leaving. Add keys for other sites to the dict while it runs."""
    sites = sorted({str(c["patient"].get("site_id") or "") for c in course_list})
    tokens = {s: create_key_cli("clinician", s or "replay", env) for s in sites}
    port = free_port()
    server = ctcmon_serve(port, a.workers, env, log=work / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", server)
        auth = {"Authorization": f"Bearer {tokens[sites[0]]}"}
        yield base, tokens, httpx.get(f"{base}/v1/model", headers=auth, timeout=30).json()
    finally:
        stop(server)


def replay(
    base: str,
    tokens: dict[str, str],
    course_list: list[dict[str, Any]],
    a: argparse.Namespace,
    prefix: str = "",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every draw of every patient through ``POST /v1/risk``; one row per assessment.

    ``prefix`` goes before each patient id sent: the simulator numbers every cohort's
    patients alike, and the service knows the training patients by site and id."""
    deadline = time.monotonic() + a.time_limit
    lock = threading.Lock()
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    incomplete: set[str] = set()
    limits = httpx.Limits(max_connections=a.concurrency, max_keepalive_connections=a.concurrency)
    client = httpx.Client(base_url=base, timeout=60, limits=limits)

    def one_patient(c: dict[str, Any]) -> None:
        pid = c["patient"][PATIENT_ID]
        headers = {"Authorization": f"Bearer {tokens[c['patient'].get('site_id') or '']}"}
        mine = []
        for day in c["draws"]:
            if time.monotonic() > deadline or len(errors) > a.max_errors:
                with lock:
                    incomplete.add(pid)
                return
            nm = bisect.bisect_right(c["m_day"], day)
            ni = bisect.bisect_right(c["i_day"], day)
            as_of = next(m["date"] for m, d in zip(c["m"], c["m_day"], strict=True) if d == day)
            patient = {**c["patient"], PATIENT_ID: f"{prefix}{pid}"}
            body = {"patient": patient, "measurements": c["m"][:nm], "imaging": c["i"][:ni]}
            body["as_of"] = as_of
            started = time.perf_counter()
            try:
                r = client.post("/v1/risk", json=body, headers=headers)
            except httpx.HTTPError as exc:
                r, text = None, f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
            if r is None or r.status_code != 200:
                with lock:
                    errors.append(
                        f"{pid} day {day:g}: {r.status_code if r else text} "
                        f"{r.text[:300] if r else ''}"
                    )
                    incomplete.add(pid)
                return
            mine.append(assessment_row(pid, day, r.json(), seconds))
        with lock:
            rows.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(a.concurrency) as pool:
        list(pool.map(one_patient, course_list))
    wall = time.perf_counter() - start
    client.close()
    frame = pd.DataFrame(rows)
    frame = frame[~frame[PATIENT_ID].isin(incomplete)].reset_index(drop=True)
    meta = {
        "wall_seconds": wall,
        "requests": len(rows),
        "requests_per_second": len(rows) / wall if wall else None,
        "patients_complete": int(frame[PATIENT_ID].nunique()),
        "patients_incomplete": len(incomplete),
        "errors": len(errors),
        "first_errors": errors[:5],
        "load_average": os.getloadavg(),
    }
    return frame, meta


def assessment_row(pid: str, day: float, doc: dict[str, Any], seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {PATIENT_ID: pid, DAY: day, "alarm": bool(doc["alarm"])}
    row["latency_ms"] = seconds * 1000
    for h, v in doc["risk"].items():
        row[f"risk_{h}"] = v
    intervals = doc.get("risk_interval") or {}
    row["has_interval"] = bool(intervals) and all(h in intervals for h in doc["risk"])
    for h, iv in intervals.items():
        row[f"low_{h}"], row[f"high_{h}"] = iv["low"], iv["high"]
    rule = doc.get("alarm_rule") or {}
    row["rule_threshold"], row["rule_confirm"] = rule.get("threshold"), rule.get("confirm")
    row["rule_stated"] = bool(rule.get("operating_point"))
    row["cross_fitted"] = bool(doc.get("cross_fitted"))
    return row


# --------------------------------------------------------------------------- 9. training patients
def training_figures(
    work: Path,
    frame: pd.DataFrame,
    cohort: Any,
    course_list: list[dict[str, Any]],
    stated: dict[str, Any],
    a: argparse.Namespace,
) -> dict[str, Any]:
    """Training patients as served (cross-fitted) and as the packaged model alone scores the
    same draws in process (in-sample), each scored per patient like the held-out cohort."""
    from dataclasses import replace

    from cohort.records import PatientHistory
    from serving.model import ModelHolder

    holder = ModelHolder(CHAMPION, tracking_uri(work))
    holder.refresh()
    assert holder.current is not None, "the champion did not load"
    in_sample = replace(holder.current.pipeline, held_out={})
    rows = []
    for c in course_list:
        pid = c["patient"][PATIENT_ID]
        if pid not in set(frame[PATIENT_ID]):
            continue
        for day in c["draws"]:
            nm = bisect.bisect_right(c["m_day"], day)
            ni = bisect.bisect_right(c["i_day"], day)
            as_of = next(m["date"] for m, d in zip(c["m"], c["m_day"], strict=True) if d == day)
            body = {"patient": c["patient"], "measurements": c["m"][:nm], "imaging": c["i"][:ni]}
            doc = in_sample.assess(PatientHistory.model_validate({**body, "as_of": as_of}))
            rows.append(assessment_row(pid, day, doc, 0.0))
    packaged = pd.DataFrame(rows)
    surv = surveillance_table(cohort)
    surv = surv[surv[PATIENT_ID].isin(set(frame[PATIENT_ID]))].reset_index(drop=True)
    out = {
        "patients": int(frame[PATIENT_ID].nunique()),
        "draws": len(frame),
        "cross_fitted_share": float(frame["cross_fitted"].mean()) if len(frame) else None,
        "mean_risk_365_served": float(frame[f"risk_{HORIZON:.0f}"].mean()),
        "mean_risk_365_in_sample": float(packaged[f"risk_{HORIZON:.0f}"].mean()),
    }
    for name, f in (("served", frame), ("in_sample", packaged)):
        out[name] = alarm_figures(f, surv, stated, a)["measured"]
    return out


# --------------------------------------------------------------------------- 4. alarms
def alarm_figures(
    frame: pd.DataFrame, surv: pd.DataFrame, stated: dict[str, Any], a: argparse.Namespace
) -> dict[str, Any]:
    """The issued alarms, scored per patient exactly as the stated operating point was."""
    lookback = float(stated["lookback_days"])
    issued = pd.DataFrame(
        {PATIENT_ID: frame[PATIENT_ID], DAY: frame[DAY], SCORE: frame["alarm"].astype(float)}
    )
    # score 1 = alarm issued, 0 = not: "score >= 0.5 at one draw" is the alarm as issued
    measured = figures(issued, surv, 0.5, 1, lookback_days=lookback, n_boot=a.boot, seed=0)
    risks = pd.DataFrame(
        {PATIENT_ID: frame[PATIENT_ID], DAY: frame[DAY], SCORE: frame[f"risk_{HORIZON:.0f}"]}
    )
    # the stated rule recomputed from the served risks: does the service issue what it states?
    rule = score_alarms(
        risks,
        name="rule",
        kind="model",
        threshold=float(stated["threshold"]),
        confirm=int(stated["confirm"]),
        score_name="risk",
        description="the stated rule on the served risks",
    ).frame
    both = rule.merge(issued, on=[PATIENT_ID, DAY], suffixes=("", "_issued"))
    differ = (both[ALARM] != (both[f"{SCORE}_issued"] > 0.5)).to_numpy()
    # risks are served rounded to 4 decimals: at the threshold itself the rounding decides
    at_threshold = (both[SCORE] - float(stated["threshold"])).abs().to_numpy() <= 5e-5
    target = Target(patient_specificity=a.specificity)
    retuned = choose(risks, surv, target, lookback_days=lookback, n_boot=200, seed=0)
    return {
        "measured": measured.to_dict(),
        "issued_vs_stated_rule_disagreements": int(differ.sum()),
        "disagreements_within_rounding_of_threshold": int((differ & at_threshold).sum()),
        "draws_compared": len(both),
        "rechosen_on_holdout": retuned.to_dict(),
    }


# --------------------------------------------------------------------------- 5. calibration
def calibration(frame: pd.DataFrame, cohort: Any, stated_metrics: dict[str, float]) -> pd.DataFrame:
    draws = pd.DataFrame(
        {
            PATIENT_ID: frame[PATIENT_ID],
            LANDMARK_DAY: frame[DAY],
            OOF_RISK: frame[f"risk_{HORIZON:.0f}"],
        }
    )
    table = served_calibration(draws, cohort.endpoint(horizon_days=None), HORIZON)
    for what in ("predicted", "observed", "difference"):
        table[f"stated_{what}"] = [
            stated_metrics.get(f"calib_{b}_{what}", np.nan) for b in table["band"]
        ]
    return table


def stated_run_metrics(uri: str, run_id: str | None) -> dict[str, float]:
    """The training run's metrics (out-of-fold calibration per band is logged there)."""
    if not run_id:
        return {}
    from mlflow.tracking import MlflowClient

    return dict(MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics)


# --------------------------------------------------------------------------- 6. intervals
def reference_risks(
    a: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    algorithm: str,
    holdout: Any,
    frame: pd.DataFrame,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The 365-day risk at each replayed draw from a model of the same kind (same rows, same
    hyperparameters) fitted on an independent, larger simulated cohort."""
    from sksurv.util import Surv

    from cohort.vocabulary import EVENT, RESIDUAL_TIME
    from models.pipeline import RiskPipeline
    from training.evaluate import build_model, feature_columns
    from training.train import TrainConfig, training_rows

    ref_dir = work / "reference"
    info: dict[str, Any] = {"patients": a.reference_patients, "seed": a.reference_seed}
    if not (a.reuse and (ref_dir / TRUTH_FILE).is_file()):
        _, info["simulate_seconds"], _ = run_cli(
            [
                "simulate",
                str(ref_dir),
                "--patients",
                str(a.reference_patients),
                "--seed",
                str(a.reference_seed),
            ],
            work,
            env,
        )
    started = time.perf_counter()
    ref = load_cohort(ref_dir)
    rows = training_rows(ref, TrainConfig(models=[algorithm]))
    fitted = rows.table[rows.fit]
    cols = feature_columns(rows.featurizer)
    model = build_model(algorithm, rows.featurizer, 0)
    y = Surv.from_arrays(fitted[EVENT].to_numpy(bool), fitted[RESIDUAL_TIME].to_numpy(float))
    model.fit(fitted[cols], y)
    pipe = RiskPipeline(
        manifest=ref.manifest, featurizer=rows.featurizer, model=model, model_name=algorithm
    )
    points = pd.DataFrame({PATIENT_ID: frame[PATIENT_ID], LANDMARK_DAY: frame[DAY]})
    scored = pipe.score(holdout, points, [HORIZON])
    merged = points.merge(scored, on=[PATIENT_ID, LANDMARK_DAY], how="left")
    info["fit_rows"] = len(fitted)
    info["seconds"] = time.perf_counter() - started
    return merged[f"risk_{HORIZON:.0f}"].to_numpy(float), info


def latent_frequency(frame: pd.DataFrame, holdout_dir: Path) -> np.ndarray:
    """Per draw: the share of draws in its cell (band of days since index x decile of served
    risk) whose patient's latent endpoint came within 365 days of the draw. The latent
    endpoint is the simulator's truth, whatever the follow-up: the lesion reaching the imaging
    threshold (``visible_day``) or death. Imaging confirms a visible lesion at a later scan,
    so this runs a little above the imaging-confirmed rate."""
    truth = pd.read_csv(holdout_dir / TRUTH_FILE, dtype={PATIENT_ID: str}).set_index(PATIENT_ID)
    latent = np.fmin(truth["visible_day"].to_numpy(float), truth["death_day"].to_numpy(float))
    latent_day = frame[PATIENT_ID].map(pd.Series(latent, index=truth.index)).to_numpy(float)
    event = (latent_day <= frame[DAY].to_numpy(float) + HORIZON).astype(float)
    band = pd.cut(frame[DAY], [lo for _, lo, _ in DAY_BANDS] + [np.inf], labels=False)
    risk = frame[f"risk_{HORIZON:.0f}"]
    decile = risk.groupby(band).transform(
        lambda r: pd.qcut(r.rank(method="first"), 10, labels=False)
    )
    cell = band.astype(str) + "/" + decile.astype(str)
    return pd.Series(event).groupby(cell.to_numpy()).transform("mean").to_numpy(float)


def intervals(
    frame: pd.DataFrame,
    reference: np.ndarray | None,
    latent: np.ndarray | None,
    folds: int,
    ratio: float | None,
) -> dict[str, Any]:
    """What the 365-day intervals cover, each figure a share of the replayed draws.

    - ``share_with_interval``: assessments carrying an interval at every quoted horizon;
    - ``reference_covered``: the interval holds the risk of the same kind of model fitted on
      an independent cohort ``1/ratio`` times larger. The grouped jackknife estimates how the
      model's risk for this history varies over training cohorts of the training size, so
      this is what it claims to cover (the larger cohort stands in for the expected model);
      ``reference_expected_if_exact`` is what an exact interval would reach, the reference
      having its own variance (``ratio`` times the served model's) and the jackknife
      ``folds - 1`` degrees of freedom;
    - ``latent_covered``: the interval holds the latent outcome frequency of the draw's cell
      (``latent_frequency``). Not what it claims: it holds neither the model's bias nor the
      patient's own uncertain tumour state.
    """
    from scipy.stats import t as student_t

    if f"low_{HORIZON:.0f}" not in frame:  # a champion without fold models (stack, rsf)
        return {"share_with_interval": 0.0}
    low, high = (
        frame[f"low_{HORIZON:.0f}"].to_numpy(float),
        frame[f"high_{HORIZON:.0f}"].to_numpy(float),
    )
    risk = frame[f"risk_{HORIZON:.0f}"].to_numpy(float)
    out: dict[str, Any] = {
        "share_with_interval": float(frame["has_interval"].mean()),
        "share_risk_inside_own_interval": float(np.mean((low <= risk) & (risk <= high))),
        "median_width_365": float(np.nanmedian(high - low)),
        "width_365_q90": float(np.nanquantile(high - low, 0.9)),
    }
    if reference is not None:
        ok = np.isfinite(reference)
        out["reference_covered"] = float(
            np.mean((low[ok] <= reference[ok]) & (reference[ok] <= high[ok]))
        )
        out["reference_mean_abs_difference"] = float(np.mean(np.abs(reference[ok] - risk[ok])))
        # if the interval were exact for the expected risk of a model trained on n patients,
        # it would cover a model trained on N = n / ratio with this probability
        crit = student_t.ppf(0.975, folds - 1)
        out["reference_expected_if_exact"] = float(
            2 * student_t.cdf(crit / math.sqrt(1 + (ratio or 0.0)), folds - 1) - 1
        )
    if latent is not None:
        out["latent_covered"] = float(np.mean((low <= latent) & (latent <= high)))
        out["latent_mean_abs_difference"] = float(np.mean(np.abs(latent - risk)))
    return out


# --------------------------------------------------------------------------- 7. latency
def in_process_latency(work: Path, n: int) -> dict[str, Any]:
    """``RiskPipeline.assess`` for one patient with 20 draws: wall and CPU time per call, with
    the intervals and without them (the same pipeline without its fold models). CPU time is
    this process's (all its threads): on a shared machine it is what the call costs when the
    wall time also holds the waits for a core."""
    from dataclasses import replace

    from cohort.records import PatientHistory
    from serving.model import ModelHolder

    holder = ModelHolder(CHAMPION, tracking_uri(work))
    holder.refresh()
    pipeline = holder.current.pipeline
    body = twenty_draws(work / "holdout", pipeline.manifest)
    body["patient"] = {**body["patient"], PATIENT_ID: f"holdout-{body['patient'][PATIENT_ID]}"}
    history = PatientHistory.model_validate(body)
    out: dict[str, Any] = {"n": n, "load_average": os.getloadavg()[0]}
    for name, pipe in (("", pipeline), ("no_interval_", replace(pipeline, interval_models=[]))):
        timed(lambda pipe=pipe: pipe.assess(history), 20)  # warm caches
        wall, cpu = [], []
        for _ in range(n):
            w, c = time.perf_counter(), time.process_time()
            pipe.assess(history)
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
        for kind, values in (("", wall), ("cpu_", cpu)):
            ms = np.asarray(values) * 1000
            out[f"{name}{kind}p50_ms"] = float(np.percentile(ms, 50))
            out[f"{name}{kind}p99_ms"] = float(np.percentile(ms, 99))
    return out


# --------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path)
    p.add_argument("--reuse", action="store_true", help="keep the cohorts and MLflow store")
    p.add_argument("--train-patients", type=int, default=3000)
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--holdout-patients", type=int, default=2000)
    p.add_argument("--holdout-seed", type=int, default=2)
    p.add_argument("--reference-patients", type=int, default=9000, help="0: skip")
    p.add_argument("--reference-seed", type=int, default=3)
    p.add_argument("--models", help="comma-separated (default: ctcmon train's default)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--specificity", type=float, default=0.9, help="the trained target")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=12)
    p.add_argument("--time-limit", type=float, default=1800, help="seconds for the replay")
    p.add_argument("--max-errors", type=int, default=50)
    p.add_argument("--boot", type=int, default=1000, help="patient-bootstrap resamples")
    p.add_argument("--assess-requests", type=int, default=500)
    p.add_argument(
        "--training-patients", type=int, default=0, help="also replay this many training patients"
    )
    a = p.parse_args()
    work = (a.workdir or Path(tempfile.mkdtemp(prefix="bench-replay-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}; {os.cpu_count()} CPUs", flush=True)
    db = work / "service.db"
    for leftover in work.glob("service.db*"):
        leftover.unlink()
    env = ctcmon_env(
        MLFLOW_TRACKING_URI=tracking_uri(work),
        CTCMON_DATABASE_URL=f"sqlite:///{db.as_posix()}",
        CTCMON_MODEL_POLL_SECONDS="0",
    )
    fig: dict[str, Any] = {"args": {k: str(v) for k, v in vars(a).items()}, "work": str(work)}
    fig["prepare"] = prepare(a, work, env)

    holdout = load_cohort(work / "holdout")
    course_list = courses(holdout)
    with serving(a, work, env, course_list) as (base, tokens, fig["model"]):
        n_draws = sum(len(c["draws"]) for c in course_list)
        print(
            f"serving {fig['model']['algorithm']} v{fig['model']['version']}; replaying "
            f"{n_draws:,} draws of {len(course_list):,} held-out patients "
            f"({a.concurrency} in flight) ...",
            flush=True,
        )
        frame, fig["replay"] = replay(base, tokens, course_list, a, prefix="holdout-")
        if a.training_patients > 0:
            trained = load_cohort(work / "train")
            train_courses = courses(trained)[: a.training_patients]
            for s in {str(c["patient"].get("site_id") or "") for c in train_courses} - set(tokens):
                tokens[s] = create_key_cli("clinician", s or "replay", env)
            print(f"replaying {len(train_courses):,} training patients ...", flush=True)
            train_frame, fig["training_replay"] = replay(base, tokens, train_courses, a)
    print(
        f"  {fig['replay']['requests']:,} assessments in {fig['replay']['wall_seconds']:.0f} s "
        f"({fig['replay']['requests_per_second']:.0f}/s), errors {fig['replay']['errors']}, "
        f"cross-fitted {frame['cross_fitted'].mean():.1%} (new patients: 0%); "
        f"{load(fig['replay']['load_average'])}",
        flush=True,
    )
    for e in fig["replay"]["first_errors"]:
        print(f"  error: {e}")
    frame.to_csv(work / "replay_assessments.csv", index=False)

    stated = fig["model"]["alarm"]["operating_point"]
    if not stated:
        raise SystemExit("the live model states no operating point: trained before issue 17?")
    surv = surveillance_table(holdout)
    surv = surv[surv[PATIENT_ID].isin(set(frame[PATIENT_ID]))].reset_index(drop=True)
    fig["stated"] = stated
    fig["alarm"] = alarm_figures(frame, surv, stated, a)
    run_metrics = stated_run_metrics(tracking_uri(work), fig["model"].get("run_id"))
    fig["calibration"] = calibration(frame, holdout, run_metrics).to_dict(orient="records")

    reference = None
    if a.reference_patients > 0:
        print(
            f"fitting a {fig['model']['algorithm']} on {a.reference_patients:,} other "
            "simulated patients (the intervals' reference) ...",
            flush=True,
        )
        reference, fig["reference"] = reference_risks(
            a, work, env, fig["model"]["algorithm"], holdout, frame
        )
        frame["reference_risk_365"] = reference
        print(
            f"  {fig['reference']['fit_rows']:,} draw rows fitted and the held-out draws scored "
            f"in {fig['reference']['seconds']:.0f} s",
            flush=True,
        )
    latent = latent_frequency(frame, work / "holdout")
    frame["latent_frequency_365"] = latent
    ratio = a.train_patients / a.reference_patients if a.reference_patients else None
    fig["intervals"] = intervals(frame, reference, latent, a.folds, ratio)
    lat = frame["latency_ms"].to_numpy(float)
    fig["latency"] = {
        "http_p50_ms": float(np.percentile(lat, 50)),
        "http_p99_ms": float(np.percentile(lat, 99)),
        "in_process": in_process_latency(work, a.assess_requests),
    }
    prep = fig["prepare"]
    if not prep["reused"]:
        print(
            f"\nsimulate train/held-out {prep['simulate_train_seconds']:.0f}/"
            f"{prep['simulate_holdout_seconds']:.0f} s; ctcmon train "
            f"{prep['train_seconds']:.0f} s; champion {prep['train']['champion']['model']}"
        )
    if a.training_patients > 0:
        fig["training_patients"] = training_figures(
            work, train_frame, trained, train_courses, fig["stated"], a
        )
    rows = report(fig, a)
    fig["targets"] = [
        dict(zip(("what", "target", "measured", "met"), r, strict=True)) for r in rows
    ]
    frame.to_csv(work / "replay_assessments.csv", index=False)
    out = work / "replay_figures.json"
    out.write_text(json.dumps(_clean(fig), indent=2))
    print(f"\nfigures: {out}; assessments: {work / 'replay_assessments.csv'}")


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars as Python, NaN/inf as null (json.dumps would write NaN)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


if __name__ == "__main__":
    main()
