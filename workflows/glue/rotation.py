"""Glue of `rotation_review`: a leading cadre's rotation starts with a departure audit."""

from workflows.glue.common import start_departure_audit

OPERATIONS = {"start_departure_audit": start_departure_audit}
