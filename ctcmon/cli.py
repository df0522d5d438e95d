"""The ``ctcmon`` command line. Thin: parse options, call the packages, print a summary."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon import __version__, cmd_leadtime, cmd_report, cmd_serve
from ctcmon.console import (
    CohortArg,
    ExperimentOpt,
    JsonOpt,
    TrackingOpt,
    emit_json,
    fail,
    guarded,
    out,
    progress,
    report_bug,
    table_console,
)

app = typer.Typer(
    name="ctcmon",
    help="Recurrence monitoring after curative treatment of liver cancer from serial blood markers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def parse_days(text: str | None, what: str) -> list[float] | None:
    """``"90,180,365"`` → [90.0, 180.0, 365.0]; a clear error naming the bad item otherwise."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: expected comma-separated days, got {text!r}")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not a number of days (in {text!r})") from None
        if value < 0:
            raise ValueError(f"{what}: days must be >= 0, got {item!r}")
        values.append(value)
    return values


@app.callback()
def main_callback(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # MLflow narrates its own steps at INFO (creating tables, inferring the signature); a
    # newcomer's output is ctcmon's progress and summary, MLflow's warnings still show. MLflow
    # sets its logger's level when first imported (and in training's worker processes), from
    # this variable; an explicit setting by the user wins.
    mlflow_level = "INFO" if verbose else "WARNING"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", mlflow_level)
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


@app.command()
def version() -> None:
    """Print the ctcmon version."""
    out.print(__version__)


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort to.")],
    patients: Annotated[
        int, typer.Option("--patients", "-n", min=1, help="Number of patients.")
    ] = 500,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same bytes).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic post-resection HCC cohort in the data contract, plus truth.csv."""
    from cohort.simulate import simulate_cohort

    def work() -> Any:
        with progress(f"simulating {patients} patients"):
            return simulate_cohort(out_dir, n_patients=patients, seed=seed)

    summary = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **_as_dict(summary)})
        return
    first, *rest = summary.lines()
    out.print(first)
    for line in rest:
        out.print(f"  {line}")


@app.command()
def validate(cohort_dir: CohortArg, as_json: JsonOpt = False) -> None:
    """Check a cohort against the data contract: exit 0 with a summary, or 2 listing every problem."""
    from cohort.load import load_cohort
    from cohort.summary import summarize

    def work() -> dict[str, Any]:
        with progress(f"validating {cohort_dir}"):
            return summarize(load_cohort(cohort_dir))

    summary = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **summary})
        return
    _print_cohort_summary(summary, cohort_dir)


def _print_cohort_summary(s: dict[str, Any], cohort_dir: Path) -> None:
    out.print(f"cohort {s['name']!r} at {cohort_dir} is valid")
    out.print(
        f"  patients: {s['patients']} in {len(s['sites'])} site(s) "
        f"({', '.join(f'{k}: {v}' for k, v in s['sites'].items())})"
    )
    out.print(
        f"  draws: {s['draws']} (median {s['draws_per_patient_median']:g} per patient, "
        f"{s['pre_index_draws']} before index); measurement rows: {s['measurement_rows']}"
    )
    out.print("  markers: " + ", ".join(f"{k} ({v})" for k, v in s["markers"].items()))
    out.print(f"  imaging exams: {s['imaging_exams']}")
    ev = s["events"]
    out.print(
        f"  events: RFS {ev['rfs']}, PFS {ev['pfs']}, OS {ev['os']} "
        f"(primary endpoint: {s['endpoint'].upper()})"
    )
    fu = s["median_followup_days"]
    out.print(
        f"  median follow-up (reverse Kaplan–Meier): "
        f"{'not reached' if fu is None else f'{fu:.0f} days'}"
    )


@app.command()
def features(
    cohort_dir: CohortArg,
    out_file: Annotated[Path, typer.Argument(help="Output table: .parquet or .csv.")],
    landmarks: Annotated[
        str | None,
        typer.Option(help="Landmark days, e.g. 90,180,365 (default: each scheduled draw day)."),
    ] = None,
    horizon: Annotated[
        float | None,
        typer.Option("--horizon", min=1, help="Horizon in days for residual time and event."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the landmark feature table (one row per patient at risk per landmark)."""
    from cohort.load import load_cohort
    from features.landmark import build_landmark_table

    def work() -> dict[str, Any]:
        if out_file.suffix not in (".parquet", ".csv"):
            raise ValueError(f"OUT_FILE must end in .parquet or .csv, got {out_file.name!r}")
        days = parse_days(landmarks, "--landmarks")
        with progress("building landmark features"):
            cohort = load_cohort(cohort_dir)
            table = build_landmark_table(cohort, landmarks=days, horizon_days=horizon)
        _write_table_atomically(table, out_file)
        return {
            "rows": len(table),
            "columns": len(table.columns),
            "out_file": str(out_file),
            "landmarks": sorted(float(x) for x in table["landmark_day"].unique()),
        }

    res = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **res})
        return
    out.print(
        f"wrote {res['rows']} rows × {res['columns']} columns to {res['out_file']} "
        f"({len(res['landmarks'])} landmarks)"
    )


@app.command()
def describe(
    cohort_dir: CohortArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Patients column to compare groups by (default: the manifest's [study] arm).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for CSV, PNG and report.html (default: none written)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Study analytics: characteristics, RFS/PFS/OS, response, safety, cCR and eligibility."""
    from cohort.load import load_cohort
    from reporting.study import write_study_report
    from study.describe import describe_cohort

    def work() -> Any:
        cohort = load_cohort(cohort_dir)
        with progress("describing the cohort"):
            result = describe_cohort(cohort, by=by)
            return result if out_dir is None else write_study_report(result, out_dir)

    res = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **res.to_dict()})
        return
    out.print(res.summary())


def _operating_point_text(pipeline: Any) -> str:
    op = pipeline.alarm.operating_point

    def ci(key: str, fmt: str) -> str:
        low, high = op.get(f"{key}_low"), op.get(f"{key}_high")
        value = op.get(key)
        if value is None:
            return "—"
        rng = "" if low is None else f" ({format(low, fmt)}–{format(high, fmt)})"
        return format(value, fmt) + rng

    rule = f"risk ≥ {op['threshold']:.3f}" + (
        f" at {op['confirm']} consecutive draws" if op["confirm"] > 1 else " at a draw"
    )
    return (
        f"{rule}: patient-level specificity {ci('patient_specificity', '.1%')}, "
        f"sensitivity {ci('sensitivity', '.1%')}, "
        f"{ci('false_alarms_per_patient_year', '.2f')} false alarms per patient-year, "
        f"median lead {ci('median_lead_days', '.0f')} days (out of fold, per patient over the course)"
    )


@app.command()
def train(
    cohort_dir: CohortArg,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Comma-separated: cox,rsf,gbsa,xgb_cox,xgb_aft,baseline (default: all).",
        ),
    ] = None,
    horizon: Annotated[
        float,
        typer.Option("--horizon", min=1, help="Evaluation horizon in days from each landmark."),
    ] = 365.0,
    landmarks: Annotated[
        str | None,
        typer.Option(help="Landmark days, e.g. 0,90,180 (default: each scheduled draw day)."),
    ] = None,
    train_landmarks: Annotated[
        str | None,
        typer.Option(
            "--train-landmarks",
            help="Extra landmark days whose rows are fitted on but not scored (a landmark "
            "supermodel), e.g. 0,365,730 with --landmarks 1826.",
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Patient-grouped CV folds.")] = 5,
    folds_file: Annotated[
        Path | None, typer.Option("--folds-file", help="CSV patient_id,fold (overrides --folds).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap replicates for CIs (0: none).")
    ] = 50,
    select_by: Annotated[
        str, typer.Option("--select-by", help="Metric that picks the champion.")
    ] = "auc",
    specificity: Annotated[
        float,
        typer.Option(
            "--specificity",
            help="The alarm rule's target patient-level specificity: the share of "
            "recurrence-free patients never alarmed over their follow-up.",
        ),
    ] = 0.9,
    false_alarms_per_year: Annotated[
        float | None,
        typer.Option(
            "--false-alarms-per-year",
            help="Instead of --specificity: the alarm rule's target false alarms per patient-year.",
        ),
    ] = None,
    fit_on: Annotated[
        str,
        typer.Option(
            "--fit-on",
            help="draws: fit on each patient's own post-index draw days (where the service "
            "scores; default); landmarks: fit on the landmark rows only.",
        ),
    ] = "draws",
    features: Annotated[
        str,
        typer.Option(
            "--features",
            help="summary: statistics of the last draws (default); mixed: plus each marker's "
            "mixed-model summaries (BLUP level and slope, deviation from the patient's own "
            "prediction), the mixed models refitted inside every fold; summary-no-ctc, "
            "mixed-no-ctc: the same without any CTC marker. Several, comma-separated, run "
            "each model once per set as <model>/<set> (an ablation).",
        ),
    ] = "summary",
    lookback: Annotated[
        float,
        typer.Option("--lookback", help="Days before a recurrence in which an alarm detects it."),
    ] = 365.0,
    experiment: ExperimentOpt = "ctcmon",
    register: Annotated[
        bool,
        typer.Option("--register", help="Register the best model as ctcmon-recurrence@champion."),
    ] = False,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cross-validated training and evaluation of each model, one MLflow run each."""
    from cohort.load import load_cohort
    from training.stacking import base_names, packaged_weights
    from training.train import TrainConfig, summary_rows
    from training.train import train as run_training

    def work() -> Any:
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        config = TrainConfig(
            horizon_days=horizon,
            landmarks=parse_days(landmarks, "--landmarks"),
            train_landmarks=parse_days(train_landmarks, "--train-landmarks"),
            folds=folds,
            folds_file=folds_file,
            seed=seed,
            n_boot=bootstrap,
            select_by=select_by,
            specificity=specificity,
            false_alarms_per_year=false_alarms_per_year,
            fit_on=fit_on,
            lookback_days=lookback,
            features=features,
        )
        if names:
            config.models = names
        cohort = load_cohort(cohort_dir)
        with progress("training") as update:
            return run_training(
                cohort,
                config,
                tracking_uri=tracking_uri,
                experiment=experiment,
                register=register,
                progress=update,
            )

    res = guarded(as_json, work)
    table = summary_rows(res.results)
    payload = {
        "ok": True,
        "tracking_uri": res.tracking_uri,
        "experiment": res.experiment,
        "landmark_rows": res.n_rows,
        "landmarks": res.landmarks,
        "run_ids": res.run_ids,
        "champion": res.champion,
        "comparison": _records(table),
        "stack_weights": {
            r.name: _records(packaged_weights(r))
            for r in res.results
            if r.stack_weights is not None
        },
    }
    if as_json:
        emit_json(payload)
        return
    fitted_also = f", also fitted at days {train_landmarks}" if train_landmarks else ""
    out.print(
        f"trained {len(res.results)} model(s) on {res.n_rows} landmark rows "
        f"(scored at {len(res.landmarks)} landmarks{fitted_also}), horizon {horizon:g} days, "
        f"{folds} folds"
    )
    _print_comparison(table)
    for r in res.results:
        if r.stack_weights is not None:
            _print_stack_weights(r.name, packaged_weights(r), base_names(r))
    if res.champion:
        c = res.champion
        out.print(
            f"registered {c['model']} as {c['name']} version {c['version']} "
            f"(alias champion; {c['metric']} = {c['value']:.3f})"
        )
        best = next(r for r in res.results if r.name == c["model"])
        if best.pipeline is not None and best.pipeline.alarm.operating_point:
            out.print(f"its alarm, as clinicians meet it: {_operating_point_text(best.pipeline)}")
    out.print(
        f"MLflow: {res.tracking_uri} (experiment {res.experiment!r}); "
        f"browse with: mlflow ui --backend-store-uri {res.tracking_uri}"
    )


@app.command()
def compare(
    experiment: ExperimentOpt = "ctcmon",
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every run, not just each model's latest.")
    ] = False,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The model comparison table, read back from MLflow."""
    from tracking import locations, registry

    def work() -> Any:
        locations.use_tracking(tracking_uri, experiment)
        return registry.comparison_table(
            experiment, latest_only=not all_runs
        ), registry.champion_version()

    table, champ = guarded(as_json, work)
    if as_json:
        emit_json(
            {"ok": True, "experiment": experiment, "champion": champ, "comparison": _records(table)}
        )
        return
    _print_comparison(table)
    if champ:
        out.print(f"champion: {champ['name']} version {champ['version']} (run {champ['run_id']})")


@app.command()
def predict(
    cohort_dir: CohortArg,
    model: Annotated[
        str,
        typer.Option("--model", help="MLflow model URI, e.g. models:/ctcmon-recurrence@champion."),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Output table (.csv or .parquet).")],
    landmarks: Annotated[
        str | None, typer.Option(help="Landmark days (default: each scheduled draw day).")
    ] = None,
    horizons: Annotated[
        str | None, typer.Option(help="Horizons in days (default: the model's).")
    ] = None,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a cohort with a packaged model: one row per patient at risk per landmark."""
    from cohort.load import load_cohort
    from tracking import locations
    from training.predict import score_cohort

    def work() -> Any:
        if out_file.suffix not in (".parquet", ".csv"):
            raise ValueError(f"--out must end in .parquet or .csv, got {out_file.name!r}")
        locations.use_tracking(tracking_uri, locations.DEFAULT_EXPERIMENT)
        cohort = load_cohort(cohort_dir)
        with progress("scoring"):
            scored, metrics = score_cohort(
                cohort,
                model,
                parse_days(landmarks, "--landmarks"),
                parse_days(horizons, "--horizons"),
            )
        _write_table_atomically(scored, out_file)
        return scored, metrics

    scored, metrics = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, "rows": len(scored), "out_file": str(out_file), "metrics": metrics})
        return
    out.print(
        f"wrote {len(scored)} risk rows for {scored['patient_id'].nunique()} patients to {out_file}"
    )
    if any(k.endswith("_resubstitution") for k in metrics):
        out.print(
            "  note: this is the model's training cohort, so these figures are "
            "resubstitution (optimistic); the honest ones are the out-of-fold metrics "
            "in MLflow (`ctcmon compare`)"
        )
    for key, value in metrics.items():
        out.print(f"  {key}: {value:.3f}")


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where the demo writes everything.")
    ] = Path("ctcmon-demo"),
    patients: Annotated[
        int, typer.Option("--patients", "-n", min=50, help="Simulated patients.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 7,
    as_json: JsonOpt = False,
) -> None:
    """The whole job on a simulated cohort: simulate → validate → describe → train (registry)."""
    from ctcmon.demo import run_demo

    def work() -> Any:
        with progress("ctcmon demo") as update:
            return run_demo(workdir, n_patients=patients, seed=seed, say=update)

    res = guarded(as_json, work)
    if as_json:
        emit_json(
            {
                "ok": True,
                "workdir": str(res.workdir),
                "tracking_uri": res.tracking_uri,
                "steps_seconds": res.steps,
                **res.summary,
            }
        )
        return
    _print_demo(res)


def _print_demo(res: Any) -> None:
    s = res.summary
    c = s["cohort"]
    out.print(
        f"[bold]ctcmon demo[/] finished in {sum(res.steps.values()):.0f} s — everything is in {res.workdir}"
    )
    out.print(
        f"  cohort: {c['patients']} simulated patients, {c['draws']} blood draws, "
        f"{c['imaging_exams']} scans, {c['events']['rfs']} recurrences or deaths → {res.cohort_dir}"
    )
    out.print(f"  study report: {s['describe_dir']}/report.html")
    models = s["models"]
    champ = s.get("champion")
    if champ:
        best, base = models[champ["model"]], models.get("baseline", {})
        out.print(
            f"  best model: {champ['model']} — AUC at 365 d {best['auc']:.3f} "
            f"(95% CI {best.get('auc_low', float('nan')):.3f}–{best.get('auc_high', float('nan')):.3f}), "
            f"Brier {best['brier']:.3f}, calibration slope {best.get('calibration_slope', float('nan')):.2f}"
        )
        if base:
            out.print(
                f"  vs baseline (no markers): AUC {base['auc']:.3f} → +{best['auc'] - base['auc']:.3f}"
            )
        out.print(f"  registered as {champ['name']} version {champ['version']} (alias champion)")
    for name, m in s.get("leadtime", {}).items():
        out.print(f"  lead time, {name}: {_lead_line(m)}")
    out.print(
        f"  reports: {s['describe_dir']}/report.html, {s.get('leadtime_dir')}/report.html, "
        f"{s.get('model_report')}"
    )
    out.print("  steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.steps.items()))
    out.print(f"  MLflow: mlflow ui --backend-store-uri {res.tracking_uri}")
    store = s.get("store")
    if store:
        out.print(
            f"  service store: {store['patients']} patients with {store['draws']} draws, an "
            f"assessment each, in {store['database_url']} (site {store['site']!r})"
        )
        here = res.workdir == Path("ctcmon-demo").resolve()
        serve = (
            "ctcmon serve"
            if here
            else f"CTCMON_DATABASE_URL={store['database_url']} "
            f"MLFLOW_TRACKING_URI={res.tracking_uri} ctcmon serve"
        )
        out.print(
            f"  web app: run `{serve}`, open http://127.0.0.1:8000/ and sign in "
            "with this clinician key (shown once):"
        )
        out.print(f"  {store['clinician_key']}", markup=False)


def _lead_line(m: dict[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "—" if v is None else f"{v:.0%}"

    lead, ci = m.get("lead_median"), m.get("lead_median_ci") or [None, None]
    lead_txt = "—" if lead is None else f"{lead:.0f} days"
    if lead is not None and ci[0] is not None:
        lead_txt += f" (95% CI {ci[0]:.0f}–{ci[1]:.0f})"
    episode = m.get("episode_lead_median")
    episode_txt = "" if episode is None else f"; from the ongoing alarm episode {episode:.0f} days"
    return (
        f"sensitivity {pct(m.get('sensitivity'))}, specificity {pct(m.get('specificity'))}, "
        f"median lead over imaging {lead_txt}{episode_txt}"
    )


def _records(table: Any) -> list[dict[str, Any]]:
    import math

    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _print_comparison(table: Any) -> None:
    from rich.table import Table

    t = Table(title="Model comparison (out-of-fold, patient-grouped CV)")
    heads = {
        "model": "model",
        "harrell_c": "Harrell C",
        "uno_c": "Uno C",
        "auc": "AUC(h)",
        "brier": "Brier(h)",
        "integrated_brier": "IBS",
        "calibration_slope": "cal. slope",
        "ici": "ICI",
        "alarm_sensitivity": "alarm sens.",
        "alarm_patient_specificity": "alarm spec.",
        "alarm_median_lead_days": "lead d",
        "fit_seconds": "fit s",
        "serve_ms": "serve ms",
    }
    formats = {"fit_seconds": ".1f", "serve_ms": ".1f", "alarm_median_lead_days": ".0f"}
    for head in heads.values():
        t.add_column(head, justify="left" if head == "model" else "right", no_wrap=True)
    for row in table.to_dict(orient="records"):
        cells = [str(row["model"])]
        for key in list(heads)[1:]:
            v = row.get(key)
            cells.append("—" if v is None or v != v else format(v, formats.get(key, ".3f")))
        if row.get("auc_low") is not None and row.get("auc_low") == row.get("auc_low"):
            cells[3] += f" ({row['auc_low']:.2f}–{row['auc_high']:.2f})"
        t.add_row(*cells)
    table_console().print(t)
    out.print(
        "alarm sens./spec./lead d: the packaged alarm rule per patient over the course (out of "
        "fold); serve ms: median in-process time of one assessment",
        markup=False,
    )


def _print_stack_weights(name: str, weights: Any, models: list[str]) -> None:
    """A stack's packaged weights per band of days since index, one column per model."""
    from rich.table import Table

    t = Table(title=f"{name}: weights per band of days since index (sum 1 per band)")
    for head in ["band", "rows", "events", "chosen on", *models]:
        t.add_column(head, justify="left" if head in ("band", "chosen on") else "right")
    for row in weights.to_dict(orient="records"):
        cells = [str(row["band"]), f"{row['n_rows']:,}", f"{row['n_events']:,}"]
        cells.append("its rows" if row["weights_from"] == "band" else "all bands' rows")
        t.add_row(*cells, *(f"{row[m]:.2f}" if row[m] > 0 else "·" for m in models))
    table_console().print(t)


def _write_table_atomically(table: Any, path: Path) -> None:
    """Write to a temp file beside ``path`` then rename: never a half-written table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _as_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return obj
    fail(f"unexpected result type {type(obj).__name__}")


# Commands that live in their own modules (``register(app)`` each), kept apart so each
# capability's CLI sits next to nothing else's. A module that fails to import stops the CLI.
for _module in (cmd_leadtime, cmd_serve, cmd_report):
    _module.register(app)


def main() -> None:
    """Entry point: a bug shows a one-line internal error (CTCMON_DEBUG=1 for the traceback)."""
    import os

    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("CTCMON_DEBUG"):
            raise
        report_bug(exc)
