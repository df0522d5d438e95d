"""``ctcmon leadtime``: do CTC and marker alarms see recurrence before scheduled imaging?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon.console import JsonOpt, TrackingOpt, emit_json, guarded, out, progress


def register(app: typer.Typer) -> None:
    """Add the ``leadtime`` command to ``app``."""
    app.command(name="leadtime")(leadtime)


def leadtime(
    cohort_dir: Annotated[
        Path, typer.Argument(help="Cohort folder (data contract, with imaging.csv).")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="MLflow model URI, e.g. models:/ctcmon-recurrence@champion."),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="Marker rule, repeatable: 'ctc_total>=2', 'afp>20', 'ctc_total>=2 & afp_rise' "
            "(default: ctc_total>=2 and the manifest's cut-offs).",
        ),
    ] = None,
    confirm: Annotated[
        int, typer.Option("--confirm", min=1, help="Consecutive positive draws for an alarm.")
    ] = 1,
    specificity: Annotated[
        float, typer.Option("--specificity", help="Target specificity of the threshold sweeps.")
    ] = 0.9,
    lookback: Annotated[
        float, typer.Option("--lookback", help="Look-back window before recurrence, days.")
    ] = 365.0,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for leadtime.json, report.html, PNGs.")
    ] = None,
    prospective: Annotated[
        Path | None,
        typer.Option(
            "--prospective",
            help="Export folder of GET /v1/export (or its assessments.csv): issued alarms.",
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs.")
    ] = 500,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lead time of marker and model alarms over imaging-confirmed recurrence, with its cost."""
    from cohort.load import load_cohort
    from evaluation import run_leadtime
    from reporting.leadtime import publish_leadtime

    def work() -> Any:
        cohort = load_cohort(cohort_dir)
        with progress("lead-time analysis") as update:
            result = run_leadtime(
                cohort,
                model_uri=model,
                rules=rule or None,
                confirm=confirm,
                specificity=specificity,
                lookback_days=lookback,
                prospective_assessments=prospective,
                n_boot=bootstrap,
                tracking_uri=tracking_uri,
                progress=update,
            )
            return publish_leadtime(result, out_dir, progress=update)

    result = guarded(as_json, work)
    if as_json:
        from reporting.leadtime import json_payload

        emit_json({"ok": True, **json_payload(result)})
        return
    _print_summary(result)


def _print_summary(result: Any) -> None:
    from reporting.filters import ci_num, ci_pct, hazard_ratio, num, pct

    c, s = result.cohort, result.settings
    out.print(
        f"lead time over imaging: {c['n_patients']} patients, {c['n_recurrences']} recurrences; "
        f"look-back {s['lookback_days']:g} days, confirm {s['confirm']}, "
        f"{s['n_boot']} bootstrap resamples"
    )
    for r in result.rules:
        m = r.metrics
        lead = m["lead"]
        iqr = "" if lead["median"] is None else f" (IQR {lead['q1']:.0f}–{lead['q3']:.0f})"
        out.print(f"  [bold]{r.name}[/]", markup=True)
        out.print(
            f"    sensitivity {pct(m['sensitivity'])} {ci_pct(m['sensitivity_ci'])}, "
            f"specificity {pct(m['specificity'])} {ci_pct(m['specificity_ci'])}, "
            f"false alarms/patient-year {num(m['false_alarms_per_patient_year'], 3)}, "
            f"PPV {pct(m['ppv'])}",
            markup=False,
        )
        out.print(
            f"    median lead {num(m['lead_median'], 0)} days{iqr} {ci_num(m['lead_median_ci'])}; "
            f"vs last negative scan {num(m['lead_vs_last_negative_median'], 0)} days; "
            f"HR {hazard_ratio(r.hazard_ratio)}",
            markup=False,
        )
        out.print(
            f"    episode lead (alarm run ongoing at recurrence) {num(m['episode_lead_median'], 0)} "
            f"days {ci_num(m.get('episode_lead_median_ci'))}",
            markup=False,
        )
    stated = (result.model or {}).get("stated_operating_point")
    if stated:
        out.print(
            "  the model states for its packaged rule (out of fold, on its training cohort): "
            f"specificity {pct(stated['patient_specificity'])} "
            f"{ci_pct([stated['patient_specificity_low'], stated['patient_specificity_high']])}, "
            f"sensitivity {pct(stated['sensitivity'])} "
            f"{ci_pct([stated['sensitivity_low'], stated['sensitivity_high']])}, "
            f"median lead {num(stated['median_lead_days'], 0)} days",
            markup=False,
        )
    for note in result.notes:
        out.print(f"  note: {note}", markup=False)
    if result.files:
        out.print(f"report: {result.files['html']}", markup=False)
    if result.mlflow_run_id:
        out.print(f"MLflow run: {result.mlflow_run_id} (tag ctcmon.kind=leadtime)", markup=False)
