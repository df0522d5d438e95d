"""The printed report of ``bench_alarm_replay.py``: stated vs measured, and the targets."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any


def load(avg: tuple[float, ...] | list[float]) -> str:
    """The machine's load average: on a shared machine every time below depends on it."""
    return f"load average {avg[0]:.1f}/{avg[1]:.1f}/{avg[2]:.1f} over 1/5/15 min on {os.cpu_count()} CPUs"


def fmt(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def trio(d: dict[str, Any], key: str, spec: str) -> str:
    return f"{fmt(d.get(key), spec)} ({fmt(d.get(key + '_low'), spec)}–{fmt(d.get(key + '_high'), spec)})"


def counts(point: dict[str, Any]) -> str:
    return f"{point['n_patients']} / {point['n_recurrences']} / {point['n_controls']}"


def report(fig: dict[str, Any], a: argparse.Namespace) -> list[tuple[str, str, str, bool | None]]:
    """Print every section; return the target rows (what, target, measured, met)."""
    stated, measured = fig["stated"], fig["alarm"]["measured"]
    specs = {
        "patient_specificity": ".3f",
        "sensitivity": ".3f",
        "false_alarms_per_patient_year": ".3f",
        "median_lead_days": ".0f",
    }
    rule = f"risk_365 >= {stated['threshold']:.4f} at {stated['confirm']} consecutive draw(s)"
    print(
        f"\n== alarm per patient over the course ({rule}; look-back {stated['lookback_days']:g} d)"
    )
    print(
        f"{'figure':<32}{'stated by /v1/model (training OOF)':<38}{'measured on held-out (as issued)':<38}"
    )
    for key, spec in specs.items():
        print(f"{key:<32}{trio(stated, key, spec):<38}{trio(measured, key, spec):<38}")
    print(
        f"{'per_draw_specificity':<32}{fmt(stated.get('per_draw_specificity')):<38}"
        f"{fmt(measured.get('per_draw_specificity')):<38}"
    )
    print(f"{'patients/recurrences/controls':<32}{counts(stated):<38}{counts(measured):<38}")
    diff = measured["patient_specificity"] - stated["patient_specificity"]
    print(f"specificity measured − stated: {diff:+.3f}")
    a_fig = fig["alarm"]
    print(
        f"issued alarms vs the stated rule recomputed from the served risks: "
        f"{a_fig['issued_vs_stated_rule_disagreements']} of {a_fig['draws_compared']} draws differ "
        f"({a_fig['disagreements_within_rounding_of_threshold']} of them at a served risk within "
        "rounding, 0.00005, of the threshold)"
    )
    re = a_fig["rechosen_on_holdout"]
    print(
        f"rule re-chosen on the held-out served risks (an oracle, for context): risk >= "
        f"{re['threshold']:.4f} x{re['confirm']}: specificity {trio(re, 'patient_specificity', '.3f')}, "
        f"sensitivity {trio(re, 'sensitivity', '.3f')}, median lead {fmt(re['median_lead_days'], '.0f')} d"
    )

    training_section(fig)

    cal = fig["calibration"]
    print("\n== calibration of the served 365-day risk per band of days since index")
    print(
        f"{'band':<11}{'draws':>7}{'served':>8}{'observed (95% CI)':>22}{'diff':>8}"
        f"{'slope':>7}{'ICI':>7}   {'training OOF: pred/obs/diff':>28}"
    )
    for r in cal:
        print(
            f"{r['band']:<11}{r['n_rows']:>7}{fmt(r.get('predicted')):>8}"
            f"{fmt(r.get('observed')):>8} ({fmt(r.get('observed_low'))}–{fmt(r.get('observed_high'))})"
            f"{fmt(r.get('difference'), '+.3f'):>8}{fmt(r.get('slope'), '.2f'):>7}{fmt(r.get('ici')):>7}"
            f"   {fmt(r.get('stated_predicted'))}/{fmt(r.get('stated_observed'))}/"
            f"{fmt(r.get('stated_difference'), '+.3f')}"
        )

    iv = fig["intervals"]
    print("\n== risk intervals (grouped jackknife over the CV's fold models)")
    if "median_width_365" not in iv:
        print("no assessment carries an interval (the champion has no fold models)")
    else:
        print(
            f"assessments carrying an interval at every horizon: {iv['share_with_interval']:.1%}; "
            f"served risk inside its own interval: {iv['share_risk_inside_own_interval']:.1%}; "
            f"width at 365 d: median {iv['median_width_365']:.3f}, "
            f"90th centile {iv['width_365_q90']:.3f}"
        )
    if "reference_covered" in iv:
        ref = fig["reference"]
        print(
            f"contains the 365-d risk of a {fig['model']['algorithm']} fitted on an independent "
            f"cohort of {ref['patients']:,} patients (the estimand the jackknife targets: the "
            f"model's risk over training cohorts): {iv['reference_covered']:.1%} of draws "
            f"(an exact interval would: {iv['reference_expected_if_exact']:.1%}; mean |difference| "
            f"{iv['reference_mean_abs_difference']:.3f})"
        )
    if "latent_covered" in iv:
        print(
            f"contains the latent outcome frequency of its cell (draws in the same band and "
            f"decile of served risk whose latent lesion became visible, or who died, within "
            f"365 d; simulator truth, no censoring): {iv['latent_covered']:.1%} of draws "
            f"(mean |frequency − risk| {iv['latent_mean_abs_difference']:.3f}). Not what the "
            f"interval claims: it carries no calibration error and no patient-level uncertainty."
        )

    lat = fig["latency"]
    print("\n== latency")
    print(
        f"over HTTP, POST /v1/risk during the replay ({a.concurrency} in flight, "
        f"{a.workers} workers): p50 {lat['http_p50_ms']:.1f} ms, p99 {lat['http_p99_ms']:.1f} ms, "
        f"{fig['replay']['requests_per_second']:.0f} req/s"
    )
    ip = lat["in_process"]
    print(
        f"in process, RiskPipeline.assess, one patient with 20 draws, n={ip['n']} (load average "
        f"{ip['load_average']:.1f} on {os.cpu_count()} CPUs):"
    )
    for name, label in (("", "intervals included"), ("no_interval_", "without intervals")):
        print(
            f"  {label:<19} wall p50 {ip[name + 'p50_ms']:6.2f} ms, p99 {ip[name + 'p99_ms']:6.2f} ms;"
            f"  CPU p50 {ip[name + 'cpu_p50_ms']:6.2f} ms, p99 {ip[name + 'cpu_p99_ms']:6.2f} ms"
        )

    spec_target = a.specificity
    rows: list[tuple[str, str, str, bool | None]] = [
        ("|specificity measured − stated|", "<= 0.03", f"{abs(diff):.3f}", abs(diff) <= 0.03),
        (
            f"sensitivity (stated specificity {spec_target:g})",
            ">= 0.60",
            fmt(measured["sensitivity"]),
            (measured["sensitivity"] or 0) >= 0.60,
        ),
        (
            "median lead, days",
            ">= 100",
            fmt(measured["median_lead_days"], ".0f"),
            (measured["median_lead_days"] or 0) >= 100,
        ),
    ]
    for r in cal:
        d = r.get("difference")
        rows.append(
            (
                f"calibration {r['band']} |served − observed|",
                "<= 0.03",
                fmt(None if d is None else abs(d)),
                None if d is None or not math.isfinite(d) else abs(d) <= 0.03,
            )
        )
    rows += [
        (
            "assessments with an interval",
            "100%",
            f"{iv['share_with_interval']:.1%}",
            iv["share_with_interval"] == 1.0,
        ),
        ("in-process assess p99 (wall), ms", "<= 15", f"{ip['p99_ms']:.2f}", ip["p99_ms"] <= 15),
        ("  the same, CPU time, ms", "<= 15", f"{ip['cpu_p99_ms']:.2f}", ip["cpu_p99_ms"] <= 15),
    ]
    secs = fig["prepare"].get("train_seconds")
    rows.append(
        (
            f"ctcmon train ({a.models or 'all models'}, {a.train_patients:,} pts, "
            f"{a.folds} folds), wall s",
            "< 180",
            fmt(secs, ".0f") if secs else "reused",
            None if secs is None else secs < 180,
        )
    )
    cpu = fig["prepare"].get("train_cpu_seconds")
    if cpu is not None:
        floor = cpu / (os.cpu_count() or 1)
        rows.append(
            ("  the same, CPU time / cores (idle machine), s", "< 180", f"{floor:.0f}", floor < 180)
        )
    print("\n== targets")
    for what, target, value, met in rows:
        flag = "n/a" if met is None else ("met" if met else "NOT MET")
        print(f"{what:<56}{target:>8}{value:>10}   {flag}")
    return rows


def training_section(fig: dict[str, Any]) -> None:
    """Training patients replayed: as served (cross-fitted) and as the packaged model alone
    would have scored them (in-sample), beside what the service states."""
    t = fig.get("training_patients")
    if not t:
        return
    stated = fig["stated"]
    print(
        f"\n== {t['patients']} TRAINING patients replayed ({t['draws']} draws; "
        f"{t['cross_fitted_share']:.1%} of assessments cross-fitted); mean 365-day risk served "
        f"{t['mean_risk_365_served']:.3f}, packaged model in-sample {t['mean_risk_365_in_sample']:.3f}"
    )
    print(f"{'figure':<32}{'stated':<26}{'served (cross-fitted)':<26}{'packaged (in-sample)':<26}")
    for key, spec in (
        ("patient_specificity", ".3f"),
        ("sensitivity", ".3f"),
        ("false_alarms_per_patient_year", ".3f"),
        ("median_lead_days", ".0f"),
    ):
        print(
            f"{key:<32}{trio(stated, key, spec):<26}{trio(t['served'], key, spec):<26}"
            f"{trio(t['in_sample'], key, spec):<26}"
        )
