"""Glue of `public_report` (信访举报): triage opens a linked accountability or admonishment case.

The report's channel becomes the accountability case's `source`, its category the case's category,
and its content the allegation (or the admonishment's summary); the reporter's contact never leaves
the report.
"""

from .common import start_accountability, start_admonishment

OPERATIONS = {"start_accountability": start_accountability, "start_admonishment": start_admonishment}
