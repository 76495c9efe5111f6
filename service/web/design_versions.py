"""The designers' pages about versions: what changed between two, and moving open cases to another."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _

from service.errors import Invalid
from service.usecases import processes, versions

from .access import actor, area_required, services
from .views import int_arg, plain_int

bp = Blueprint("design_versions", __name__, url_prefix="/designer")
MAX_VERSION = 2**31 - 1


@bp.get("/<key>/diff")
@area_required("designer")
def diff(key: str) -> Any:
    """Pick two versions; see the elements, forms and tables that differ, and both diagrams."""
    process = processes.get_process(services(), actor(), key)
    newest = process["version"]
    to = int_arg("to", newest, MAX_VERSION)
    since = int_arg("from", max(to - 1, 1), MAX_VERSION)
    if since == to:
        return render_template("designer/diff.html", process=process, since=since, to=to, diff=None)
    found = versions.version_diff(services(), actor(), key, to, since)
    xml = {n: processes.get_bpmn(services(), actor(), key, n) for n in (since, to)}
    return render_template("designer/diff.html", process=process, since=since, to=to, diff=found, xml=xml)


@bp.get("/<key>/migrate")
@area_required("designer")
def migrate_form(key: str) -> Any:
    process = processes.get_process(services(), actor(), key)
    return render_template("designer/migrate.html", process=process, since=None, to=process["version"], report=None)


@bp.post("/<key>/migrate")
@area_required("designer")
def migrate(key: str) -> Any:
    """A dry run first (designers and admins); the real run only after it, confirmed (admins)."""
    process = processes.get_process(services(), actor(), key)
    since, to = _version_field("from"), _version_field("to")
    dry_run = request.form.get("action") != "run"
    report = versions.migrate_open_cases(services(), actor(), key, to, since, dry_run)
    if not dry_run:
        flash(_("已迁移 %(moved)s 个案件到第 %(version)s 版；%(refused)s 个未迁移。", moved=report["moved"],
                version=report["to_version"], refused=report["refused"]), "success")
    return render_template("designer/migrate.html", process=process, since=since, to=report["to_version"],
                           report=report)


def _version_field(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    version = plain_int(raw)
    if version is None or not 1 <= version <= MAX_VERSION:
        raise Invalid(f"{name} must be a version number ({name} 必须是版本号)", {name: raw[:20]})
    return version
