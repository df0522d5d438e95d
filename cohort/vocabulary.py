"""The one place that defines ctcmon's column names and controlled vocabularies.

Every package imports these names instead of spelling strings, so a rename is one edit.
"""

from __future__ import annotations

from typing import Final, Literal

# identifiers and time
PATIENT_ID: Final = "patient_id"
SITE_ID: Final = "site_id"
INDEX_DATE: Final = "index_date"
DATE: Final = "date"
DAY: Final = "day"  # float days since the patient's index_date
START: Final = "start"
STOP: Final = "stop"
EVENT: Final = "event"
TIME: Final = "time"  # time to event or censoring, days since index
LANDMARK_DAY: Final = "landmark_day"
HORIZON_DAYS: Final = "horizon_days"
RESIDUAL_TIME: Final = "residual_time"  # time from landmark to event/censoring
# untruncated residual follow-up and event (IPCW scoring needs follow-up past the horizon)
RESIDUAL_TIME_FULL: Final = "residual_time_full"
EVENT_FULL: Final = "event_full"
FOLD: Final = "fold"  # cross-validation fold of a patient

# measurements.csv
MARKER: Final = "marker"
VALUE: Final = "value"
UNIT: Final = "unit"
QUALIFIER: Final = "qualifier"
DRAW_ID: Final = "draw_id"
QUALIFIERS: Final = ("<", ">")

# imaging.csv
MODALITY: Final = "modality"
FINDING: Final = "finding"
RESPONSE: Final = "response"
CRITERIA: Final = "criteria"
MODALITIES: Final = ("CT", "MRI", "US", "CEUS", "PET-CT")
FINDINGS: Final = ("no_evidence", "indeterminate", "recurrence")
FINDING_RECURRENCE: Final = "recurrence"
RESPONSES: Final = ("CR", "PR", "SD", "PD")
CRITERIA_VALUES: Final = ("mRECIST", "RECIST1.1", "LI-RADS")

# outcomes.csv
LAST_FOLLOWUP_DATE: Final = "last_followup_date"
RECURRENCE_DATE: Final = "recurrence_date"
PROGRESSION_DATE: Final = "progression_date"
DEATH_DATE: Final = "death_date"
OUTCOME_DATES: Final = (LAST_FOLLOWUP_DATE, RECURRENCE_DATE, PROGRESSION_DATE, DEATH_DATE)

# treatments.csv / adverse_events.csv
START_DATE: Final = "start_date"
END_DATE: Final = "end_date"
TREATMENT: Final = "treatment"
TERM: Final = "term"
GRADE: Final = "grade"

Endpoint = Literal["rfs", "pfs", "os"]
ENDPOINTS: Final = ("rfs", "pfs", "os")
CovariateType = Literal["numeric", "binary", "categorical"]
COVARIATE_TYPES: Final = ("numeric", "binary", "categorical")

# contract files
PATIENTS_FILE: Final = "patients"
MEASUREMENTS_FILE: Final = "measurements"
IMAGING_FILE: Final = "imaging"
OUTCOMES_FILE: Final = "outcomes"
TREATMENTS_FILE: Final = "treatments"
ADVERSE_EVENTS_FILE: Final = "adverse_events"
MANIFEST_FILE: Final = "cohort.toml"
TRUTH_FILE: Final = "truth.csv"
# issued assessments (GET /v1/export): one row per assessment the service issued
ASSESSMENTS_FILE: Final = "assessments"
ASSESSMENT_ID: Final = "assessment_id"
ISSUED_AT: Final = "issued_at"
AS_OF: Final = "as_of"

# the primary CTC marker code and AFP, used by defaults, reports and the simulator
CTC_TOTAL: Final = "ctc_total"
AFP: Final = "afp"


def day_column(date_column: str) -> str:
    """Name of the day-since-index column derived from a date column."""
    return date_column.removesuffix("_date") + "_day" if date_column != DATE else DAY


def feature_name(marker: str, stat: str) -> str:
    """Marker feature name, e.g. ``feature_name("ctc_total", "last")`` → ``ctc_total_last``."""
    return f"{marker}_{stat}"


def risk_column(horizon_days: float) -> str:
    """Column of a predicted risk at a horizon, e.g. ``risk_365``."""
    return f"risk_{int(horizon_days)}"
