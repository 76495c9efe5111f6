"""Glue of `admonishment`: escalation opens an accountability case."""

from .common import start_accountability

OPERATIONS = {"start_accountability": start_accountability}
