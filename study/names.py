"""Column names of the tables ``ctcmon describe`` produces.

Contract columns come from ``cohort.vocabulary``; these are the study outputs' own names,
kept in one place so the CSVs, the HTML and the tests agree. Candidates for vocabulary.py.
"""

from __future__ import annotations

from typing import Final

DAYS_PER_YEAR: Final = 365.25
DAYS_PER_MONTH: Final = DAYS_PER_YEAR / 12

GROUP: Final = "group"
GROUP_COLUMN: Final = "group_column"
ENDPOINT_LABEL: Final = "endpoint"
N: Final = "n"
N_TOTAL: Final = "N"
EVENTS: Final = "events"
PERCENT: Final = "percent"
LOWER: Final = "lower"
UPPER: Final = "upper"
P_VALUE: Final = "p_value"
TEST: Final = "test"

# survival
SURVIVAL: Final = "survival"
AT_RISK: Final = "at_risk"
CENSORED: Final = "censored"
MEDIAN_DAYS: Final = "median_days"
MEDIAN_LOWER: Final = "median_lower"
MEDIAN_UPPER: Final = "median_upper"
YEARS: Final = "years"
CHISQ: Final = "chisq"
DF: Final = "df"

# characteristics
VARIABLE: Final = "variable"
LEVEL: Final = "level"
OVERALL: Final = "Overall"
MISSING: Final = "missing"

# response / safety
CATEGORY: Final = "category"
BEST_RESPONSE: Final = "best_response"
NOT_EVALUABLE: Final = "NE"
MEASURE: Final = "measure"
WORST_GRADE: Final = "worst_grade"
ANY_TERM: Final = "any adverse event"

# listings
CRITERION: Final = "criterion"
RULE: Final = "rule"
STATUS: Final = "status"
PASS: Final = "pass"
FAIL: Final = "fail"
NOT_EVALUABLE_STATUS: Final = "not evaluable"
REASON: Final = "reason"
