"""Lead-time validation: do blood-marker alarms see recurrence before scheduled imaging?

``run_leadtime(cohort, ...)`` evaluates marker rules (``training.leadtime.rules``), a
model's risk threshold and the alarms the service issued against imaging-confirmed
recurrence, and writes the report (``ctcmon leadtime``).
"""

from training.leadtime.api import LeadtimeResult, RuleResult, run_leadtime
from training.leadtime.rules import MarkerRule, default_rules, parse_rule

__all__ = [
    "LeadtimeResult",
    "MarkerRule",
    "RuleResult",
    "default_rules",
    "parse_rule",
    "run_leadtime",
]
