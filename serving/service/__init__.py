"""What the routes do: check input against the data contract, assess with the live model, store.

One module per concern: ``common`` (the audit and assessment rows, the patient's stored
record, the contract check), ``locations`` (a contract problem's place in a request),
``risk`` (a posted history; registering a patient), ``draws``, ``events`` (imaging and
outcome), ``reads``. The routes and the web app call the functions re-exported here.
"""

from __future__ import annotations

from serving.service.common import ASSESSMENT_INSERT, assessment_values, audit
from serving.service.draws import submit_draw
from serving.service.events import add_imaging, record_outcome
from serving.service.reads import list_assessments, read_patient
from serving.service.risk import register_patient, stateless_risk

__all__ = [
    "ASSESSMENT_INSERT",
    "add_imaging",
    "assessment_values",
    "audit",
    "list_assessments",
    "read_patient",
    "record_outcome",
    "register_patient",
    "stateless_risk",
    "submit_draw",
]
