"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378), item by item, mapped to
the report section that covers it, or marked not applicable / not reported with the reason.

Item topics are paraphrased; the statement itself is the reference. Items that depend on
the facts (dates, centres, ethics of simulated data) are resolved by a function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from reporting.facts import ReportFacts

REPORTED: Final = "reported"
PARTLY: Final = "partly reported"
NOT_APPLICABLE: Final = "not applicable"
NOT_REPORTED: Final = "not reported"

# section id -> heading, in the report's order (the template uses the same ids)
SECTIONS: Final = {
    "summary": "Summary",
    "intended-use": "Intended use",
    "data": "Data sources and dates",
    "eligibility": "Participants and eligibility",
    "outcome": "Outcome",
    "predictors": "Predictors",
    "missing": "Missing data",
    "sample-size": "Sample size and participant flow",
    "model": "Model",
    "validation": "Internal validation",
    "discrimination": "Discrimination",
    "calibration": "Calibration",
    "decision-curve": "Decision curve",
    "alarm": "Model output and alarm policy",
    "comparison": "Comparison with other models",
    "leadtime": "Lead time over imaging",
    "limitations": "Limitations",
    "reproducibility": "Reproducibility and model specification",
    "tripod": "TRIPOD+AI checklist",
}


@dataclass(frozen=True)
class Entry:
    status: str
    sections: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Item:
    number: str
    topic: str
    entry: Entry | Callable[[ReportFacts], Entry]


def _r(*sections: str, note: str = "") -> Entry:
    return Entry(REPORTED, sections, note)


def _na(note: str) -> Entry:
    return Entry(NOT_APPLICABLE, (), note)


def _nr(note: str) -> Entry:
    return Entry(NOT_REPORTED, (), note)


def _dates(f: ReportFacts) -> Entry:
    if f.cohort.get("accrual_start"):
        return _r("data")
    return _nr("the cohort files the run was trained on are not readable here (see Limitations)")


def _setting(f: ReportFacts) -> Entry:
    if f.cohort.get("sites"):
        return _r(
            "data", note="number of centres only; the type of setting is not in the data contract"
        )
    return _nr("centres are known only from the cohort files, which are not readable here")


def _ethics(f: ReportFacts) -> Entry:
    if f.simulated:
        return _na("simulated data: no participants")
    return _nr("approval and consent are outside the MLflow run; state them with the cohort")


def _flow(f: ReportFacts) -> Entry:
    note = "" if f.cohort.get("median_followup_days") else "follow-up time not available"
    return Entry(PARTLY if note else REPORTED, ("sample-size", "eligibility"), note)


_NO_SUBGROUPS: Final = "no subgroup or per-centre analysis is run"
_OUTSIDE: Final = "outside the pipeline: state it in the study's publication"

ITEMS: Final[tuple[Item, ...]] = (
    Item("1", "Title: development of a prediction model, population, outcome", _r("summary")),
    Item("2", "Abstract", _r("summary", note="the summary box stands in for an abstract")),
    Item("3a", "Background: healthcare context, rationale, existing models", _r("intended-use")),
    Item(
        "3b", "Target population, intended purpose in the care pathway, users", _r("intended-use")
    ),
    Item(
        "3c",
        "Known health inequalities between sociodemographic groups",
        _nr("not assessed by the pipeline"),
    ),
    Item("4", "Objectives: development and/or validation", _r("intended-use")),
    Item("5a", "Data sources, rationale and representativeness", _r("data")),
    Item("5b", "Dates of data collection, accrual and end of follow-up", _dates),
    Item("6a", "Setting, number and location of centres", _setting),
    Item("6b", "Eligibility criteria", _r("eligibility")),
    Item("6c", "Treatments received and how they were handled", _r("eligibility")),
    Item("7", "Data preparation and quality checking", _r("data", "predictors")),
    Item("8a", "Outcome definition, horizon, how and when assessed", _r("outcome")),
    Item(
        "8b",
        "Qualifications of outcome assessors (if subjective)",
        _nr("who read the confirming imaging is not recorded in the data contract"),
    ),
    Item("8c", "Blinding of outcome assessment", _nr("not recorded in the data contract")),
    Item("9a", "Choice and pre-selection of predictors", _r("predictors")),
    Item("9b", "Definition of all predictors, how and when measured", _r("predictors")),
    Item(
        "9c",
        "Qualifications of predictor assessors (if subjective)",
        _nr("CTC enumeration involves operator review; who counted is not recorded"),
    ),
    Item("10", "Sample size: how arrived at, whether sufficient", _r("sample-size")),
    Item("11", "Missing data handling", _r("missing")),
    Item("12a", "How the data were used: partitioning", _r("validation")),
    Item("12b", "Handling of predictors: form, scaling, transformation", _r("predictors", "model")),
    Item(
        "12c", "Model type, building steps, tuning, internal validation", _r("model", "validation")
    ),
    Item("12d", "Heterogeneity across clusters (e.g. centres)", _nr(_NO_SUBGROUPS)),
    Item(
        "12e",
        "Performance measures and plots, model comparison",
        _r("discrimination", "calibration", "decision-curve", "comparison"),
    ),
    Item(
        "12f",
        "Model updating (e.g. recalibration)",
        _na("the packaged model is not updated or recalibrated"),
    ),
    Item(
        "12g", "How predictions were calculated for evaluation", _r("validation", "reproducibility")
    ),
    Item(
        "13", "Class imbalance methods", _na("time-to-event model: no resampling or class weights")
    ),
    Item("14", "Fairness approaches", _nr("no fairness analysis is run")),
    Item("15", "Model output, classification thresholds and how chosen", _r("alarm")),
    Item(
        "16",
        "Differences between development and evaluation data",
        _na("internal validation only: no separate evaluation data"),
    ),
    Item("17", "Ethical approval and consent", _ethics),
    Item("18a", "Funding", _nr(_OUTSIDE)),
    Item("18b", "Conflicts of interest", _nr(_OUTSIDE)),
    Item("18c", "Protocol", _nr(_OUTSIDE)),
    Item("18d", "Registration", _nr(_OUTSIDE)),
    Item(
        "18e",
        "Data sharing",
        Entry(
            PARTLY, ("data",), "cohort identified by name and digest; sharing terms not recorded"
        ),
    ),
    Item("18f", "Code sharing", _r("reproducibility")),
    Item("19", "Patient and public involvement", _nr(_OUTSIDE)),
    Item("20a", "Participant flow, with and without the outcome, follow-up", _flow),
    Item(
        "20b",
        "Participant characteristics, predictors, missing data",
        Entry(
            PARTLY,
            ("data", "sample-size"),
            "counts only; the characteristics table comes from `ctcmon describe`",
        ),
    ),
    Item(
        "20c",
        "Evaluation vs development data: predictor distributions",
        _na("no separate evaluation data"),
    ),
    Item("21", "Participants and events in each analysis", _r("sample-size", "validation")),
    Item("22", "Full model specification, access to the model", _r("model", "reproducibility")),
    Item(
        "23a",
        "Performance with CIs, key subgroups, plots",
        Entry(
            PARTLY,
            ("discrimination", "calibration", "decision-curve"),
            f"overall only: {_NO_SUBGROUPS}",
        ),
    ),
    Item("23b", "Heterogeneity of performance across clusters", _nr(_NO_SUBGROUPS)),
    Item("24", "Model updating results", _na("no model updating")),
    Item("25", "Overall interpretation", _r("summary", "comparison")),
    Item("26", "Limitations", _r("limitations")),
    Item("27a", "Input data quality and availability in practice", _r("missing", "intended-use")),
    Item("27b", "User interaction and expertise required", _r("intended-use")),
    Item("27c", "Next steps: applicability and generalisability", _r("limitations")),
)


def checklist(facts: ReportFacts) -> list[dict[str, object]]:
    """One row per item: number, topic, status, sections (id and heading), note."""
    rows: list[dict[str, object]] = []
    for item in ITEMS:
        entry = item.entry(facts) if callable(item.entry) else item.entry
        rows.append(
            {
                "number": item.number,
                "topic": item.topic,
                "status": entry.status,
                "sections": [{"id": s, "title": SECTIONS[s]} for s in entry.sections],
                "note": entry.note,
            }
        )
    return rows
