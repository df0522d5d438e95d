"""Lead-time validation: do blood-marker alarms see recurrence before scheduled imaging?

``run_leadtime(cohort, ...)`` evaluates marker rules (``alarms.rules``), a
model's risk threshold and the alarms the service issued against imaging-confirmed
recurrence (``ctcmon leadtime``). It computes only: ``reporting.leadtime.publish_leadtime``
writes the report and logs the analysis to MLflow.
"""

from alarms.rules import MarkerRule, default_rules, parse_rule
from evaluation.api import LeadtimeResult, RuleResult, run_leadtime

__all__ = [
    "LeadtimeResult",
    "MarkerRule",
    "RuleResult",
    "default_rules",
    "parse_rule",
    "run_leadtime",
]
