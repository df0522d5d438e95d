"""``ctcmon train``, ``compare`` and ``predict``: the researchers' commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon.console import (
    CohortArg,
    ExperimentOpt,
    JsonOpt,
    TrackingOpt,
    emit_json,
    guarded,
    out,
    parse_days,
    progress,
    records,
    table_console,
    write_table_atomically,
)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``compare`` and ``predict`` to ``app``."""
    app.command(name="train")(train)
    app.command(name="compare")(compare)
    app.command(name="predict")(predict)


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
            "prediction), the mixed models refitted inside every fold; blup: each marker's "
            "BLUP level and slope alone, with the covariates (two-stage landmarking); "
            "<set>-no-ctc: without any CTC marker; <set>-no-scans: without the scans' "
            "readings (the blood alone). Several, comma-separated, run each model once per "
            "set as <model>/<set> (an ablation).",
        ),
    ] = "summary",
    markers: Annotated[
        str | None,
        typer.Option(
            "--markers",
            help="The analysis's pre-specified markers, comma-separated (default: every "
            "marker of cohort.toml), e.g. bili,albumin,protime,chol.",
        ),
    ] = None,
    covariates: Annotated[
        str | None,
        typer.Option(
            "--covariates",
            help="The analysis's pre-specified covariates, comma-separated (default: every "
            "covariate of cohort.toml), e.g. age,edema.",
        ),
    ] = None,
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
            markers=_names(markers),
            covariates=_names(covariates),
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
        "comparison": records(table),
        "stack_weights": {
            r.name: records(packaged_weights(r)) for r in res.results if r.stack_weights is not None
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
            {"ok": True, "experiment": experiment, "champion": champ, "comparison": records(table)}
        )
        return
    _print_comparison(table)
    for row in table.to_dict(orient="records"):
        weights = registry.packaged_stack_weights(str(row["run_id"])) if _is_stack(row) else None
        if weights is not None:
            _print_stack_weights(str(row["model"]), weights, _weight_columns(weights))
    if champ:
        out.print(f"champion: {champ['name']} version {champ['version']} (run {champ['run_id']})")


def _is_stack(row: dict[str, Any]) -> bool:
    from training.stacking import STACK

    return str(row["model"]).partition("/")[0] == STACK


def _weight_columns(weights: Any) -> list[str]:
    """The models of a packaged weights table: every column but the band's own figures."""
    return [c for c in weights.columns if c not in ("band", "n_rows", "n_events", "weights_from")]


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
        write_table_atomically(scored, out_file)
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


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of names (None when not given)."""
    if text is None:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]
