"""How an alarm over a monitoring course is scored, one definition for every caller.

``surveillance``: each patient's course (scans, recurrence between the last negative and the
confirming scan, end of follow-up). ``rules``: marker rules such as ``ctc_total>=2 & afp_rise``.
``series``: alarm series from marker rules or from risk scores (``--confirm K``). ``metrics``:
per-patient sensitivity, specificity, false alarms per patient-year and lead time. ``sweep``:
thresholds swept and chosen at a target. Training chooses the packaged alarm rule with these,
``ctcmon leadtime`` (``evaluation/``) reports with them, and the model report quotes them.
"""
