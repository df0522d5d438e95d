"""Best overall tumour response per criteria (mRECIST, RECIST 1.1), ORR and DCR with exact CIs.

Best response is the best on-treatment assessment (CR > PR > SD > PD), unconfirmed. Every
patient of the group is in the denominator (intention to treat): one never assessed under a
criteria counts as not evaluable (NE).
"""

from __future__ import annotations

import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import CRITERIA, DAY, PATIENT_ID, RESPONSE, RESPONSES
from study.groups import patient_groups
from study.names import BEST_RESPONSE, CATEGORY, GROUP, MEASURE, NOT_EVALUABLE
from study.parts import Part, skip
from study.proportions import proportion

UNSPECIFIED = "unspecified"
_RANK = {r: i for i, r in enumerate(RESPONSES)}  # CR, PR, SD, PD: lower is better
MEASURES = {"ORR": ("CR", "PR"), "DCR": ("CR", "PR", "SD")}


def best_response(imaging: pd.DataFrame) -> pd.DataFrame:
    """``patient_id``, ``criteria``, ``best_response`` from on-treatment scans (day > 0)."""
    scans = imaging.loc[imaging[RESPONSE].isin(RESPONSES) & (imaging[DAY] > 0)]
    scans = scans.copy()
    scans[CRITERIA] = scans[CRITERIA].astype("string").fillna(UNSPECIFIED)
    scans["_rank"] = scans[RESPONSE].map(_RANK)
    best = scans.sort_values("_rank").drop_duplicates([PATIENT_ID, CRITERIA])
    out = best[[PATIENT_ID, CRITERIA, RESPONSE]].rename(columns={RESPONSE: BEST_RESPONSE})
    return out.sort_values([CRITERIA, PATIENT_ID]).reset_index(drop=True)


def _group_rows(criteria: str, label: str, ids: pd.Index, best: pd.Series) -> tuple[list, list]:
    resp = best.reindex(ids).fillna(NOT_EVALUABLE)
    head = {CRITERIA: criteria, GROUP: label}
    counts = [
        {**head, CATEGORY: cat, **proportion(int((resp == cat).sum()), len(ids))}
        for cat in (*RESPONSES, NOT_EVALUABLE)
    ]
    rates = [
        {**head, MEASURE: m, **proportion(int(resp.isin(cats).sum()), len(ids))}
        for m, cats in MEASURES.items()
    ]
    return counts, rates


def response_tables(
    patients: pd.DataFrame, best: pd.DataFrame, group: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Response categories n (%) and ORR/DCR with exact 95% CIs, per criteria and group."""
    counts, rates = [], []
    for criteria, sub in best.groupby(CRITERIA, sort=True):
        by_patient = sub.set_index(PATIENT_ID)[BEST_RESPONSE]
        for label, ids in patient_groups(patients, group):
            c, r = _group_rows(str(criteria), label, ids, by_patient)
            counts += c
            rates += r
    return pd.DataFrame(counts), pd.DataFrame(rates)


def response_part(cohort: Cohort, group: str | None) -> Part:
    """Response tables, or a skipped note when the cohort has no graded responses."""
    imaging = cohort.imaging
    if imaging.empty:
        return skip("Tumour response", "the cohort has no imaging (imaging.csv absent or empty)")
    best = best_response(imaging)
    if best.empty:
        return skip(
            "Tumour response",
            "no on-treatment imaging has a response (CR/PR/SD/PD under mRECIST or RECIST 1.1)",
        )
    counts, rates = response_tables(cohort.patients, best, group)
    return Part(
        tables={"best_response": best, "response": counts, "response_rates": rates},
        notes=[
            "Best overall response is unconfirmed; patients never assessed count as NE "
            "in the denominator."
        ],
    )
