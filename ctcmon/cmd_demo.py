"""``ctcmon demo``: the README's main job and its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon.console import (
    JsonOpt,
    emit_json,
    guarded,
    out,
    progress,
)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command(name="demo")(demo)


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
            f"assessment each, in {store['database_url']} (site {store['site']!r}); new "
            f"patients, not trained on → {store['cohort_dir']}"
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
