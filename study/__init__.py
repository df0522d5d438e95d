"""Study analytics straight from a cohort in the data contract (``ctcmon describe``).

Reads only ``cohort``: characteristics (Table 1), RFS/PFS/OS, CTC dynamics, response,
safety, clinical complete response and eligibility listings, written as CSV, PNG and HTML.
"""

from study.describe import DescribeResult, describe_cohort

__all__ = ["DescribeResult", "describe_cohort"]
