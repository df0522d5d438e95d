"""What the routes do: check input against the data contract, assess with the live model, store.

One module per concern: ``common`` (the audit and assessment rows, the patient's stored
record, the contract check), ``locations`` (a contract problem's place in a request),
``risk`` (a posted history; registering a patient), ``draws``, ``events`` (imaging and
outcome), ``reads``. The routes and the web app call the functions re-exported here.
"""

from __future__ import annotations

from serving.service.common import (
    ASSESSMENT_INSERT,
    Snapshot,
    assess,
    assessment_values,
    audit,
    patient_record,
    snapshot,
)
from serving.service.draws import DRAW_INSERT, MEASUREMENT_INSERT, submit_draw
from serving.service.events import add_imaging, record_outcome
from serving.service.locations import history_body
from serving.service.reads import list_assessments, read_patient
from serving.service.risk import register_patient, stateless_risk

# where a posted history's problems sit (the body of POST /v1/risk)
body_loc = history_body()

__all__ = [
    "ASSESSMENT_INSERT",
    "DRAW_INSERT",
    "MEASUREMENT_INSERT",
    "Snapshot",
    "add_imaging",
    "assess",
    "assessment_values",
    "audit",
    "body_loc",
    "list_assessments",
    "patient_record",
    "read_patient",
    "record_outcome",
    "register_patient",
    "snapshot",
    "stateless_risk",
    "submit_draw",
]
