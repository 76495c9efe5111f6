"""述职述廉 (docs/processes.md §8): opening the year's reports, the public disclosure, its ratings and tallies.

Every `leading` cadre holding a post reports once a year: opening is idempotent per cadre and year
(the bulk starts' `field:year` dedupe, under a lock on the cadres). While a case waits out its
`disclosure` period its reports are public; anyone may rate them once per address (a keyed hash of
the address, of an IPv6 one's /64, unique per disclosure in the database) with an optional comment, and an IPv6
/48 at most PUBLIC_RATINGS_PER_NETWORK times (its keyed hash beside the address's).
Staff read the disclosures of the cases the policy lets them read, with their tallies and comments.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, Disclosure, DisclosureRating, utcnow
from service.errors import Conflict, Invalid, NotFound, WrittenMeanwhile
from service.ratelimit import address_key, network_key

from . import access_log, policy, queries, views
from .bulk import already_started
from .context import Actor, Services
from .portal import MARKUP, hidden_problem
from .public_posts import count_public_post
from .reminders import local_date
from .stepper import start_batch

PROCESS = "integrity_report"
MAX_COMMENT = 2000
_GONE = "this disclosure is not found or its period is over (公示不存在或已结束)"


def open_reports(services: Services, actor: Actor, year: Any) -> dict[str, Any]:
    """Open the year's 述职述廉 case for every leading cadre holding a post who has none for that year."""
    policy.require(actor, "integrity.open")
    year = _year(year)
    with services.db.unit_of_work() as session:
        cadres = list(session.scalars(select(Cadre.id).where(Cadre.post_level == "leading", Cadre.post != "")
                                      .order_by(Cadre.id).with_for_update()))
        done = already_started(session, PROCESS, cadres, "field:year", {"year": year})
        results = start_batch(services, session, actor, PROCESS,
                              [(cadre_id, {"year": year}) for cadre_id in cadres if cadre_id not in done])
    opened = [result.id for result in results if isinstance(result, Case)]
    failed = [{"error": result.message, "fields": result.fields} for result in results if not isinstance(result, Case)]
    return {"opened": opened, "skipped": len(done), "failed": failed}


def _year(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2000 <= value <= 2100:
        raise Invalid("year must be a year between 2000 and 2100 (年度须为 2000–2100 之间的整数)",
                      {"year": "须为 2000–2100 之间的整数 (an integer from 2000 to 2100)"})
    return value


# Public ------------------------------------------------------------------------------------------


def public_list(services: Services) -> list[dict[str, Any]]:
    """The disclosures whose period runs now, as the public sees them."""
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(_running(utcnow()).order_by(Disclosure.id))
        return [_public_view(services, session, disclosure, case, cadre) for disclosure, case, cadre in rows]


def public_get(services: Services, disclosure_id: int) -> dict[str, Any]:
    """One running disclosure (404 once its period is over, like an unknown one)."""
    with services.db.unit_of_work(write=False) as session:
        found = session.execute(_running(utcnow()).where(Disclosure.id == disclosure_id)).first()
        if found is None:
            raise NotFound(_GONE)
        disclosure, case, cadre = found
        return _public_view(services, session, disclosure, case, cadre)


def _running(now: datetime) -> Select[Disclosure, Case, Cadre]:
    return (select(Disclosure, Case, Cadre).join(Case, Case.id == Disclosure.case_id)
            .join(Cadre, Cadre.id == Disclosure.cadre_id)
            .where(Disclosure.closed_at.is_(None), Case.status == "open",
                   or_(Disclosure.ends_at.is_(None), Disclosure.ends_at > now)))


def _public_view(services: Services, session: Session, disclosure: Disclosure, case: Case,
                 cadre: Cadre) -> dict[str, Any]:
    return {"id": disclosure.id, "cadre_name": cadre.name, "unit": cadre.unit, "post": cadre.post,
            "year": disclosure.year, "duty_report": case.data.get("duty_report", ""),
            "integrity_report": case.data.get("integrity_report", ""),
            "ends_on": local_date(services, disclosure.ends_at),
            "ends_at": views.iso(disclosure.ends_at), "tally": queries.disclosure_tally(session, disclosure.id)}


def rate(services: Services, disclosure_id: int, body: Any, address: str, secret: str) -> dict[str, Any]:
    """Record one rating from an address (a second from the same address, or one past PUBLIC_RATINGS_PER_NETWORK
    from its IPv6 /48, is a 409); returns the tally."""
    count_public_post(services, address)
    rating, comment = _rating_input(body)
    digest = _keyed(secret, address_key(address))  # an IPv6 client by its /64, as the post limit counts it
    network = network_key(address)
    network_digest = _keyed(secret, network) if network is not None else None
    try:
        with services.db.unit_of_work() as session:
            disclosure = _lock_running(session, disclosure_id)
            _check_network_share(session, disclosure.id, network_digest, int(services.settings[
                "PUBLIC_RATINGS_PER_NETWORK"]))
            session.add(DisclosureRating(disclosure_id=disclosure.id, address_hash=digest, rating=rating,
                                         comment=comment, network_hash=network_digest))
            session.flush()
            return {"id": disclosure.id, "rating": rating, "tally": queries.disclosure_tally(session, disclosure.id)}
    except WrittenMeanwhile:  # the unique key on (disclosure, hashed address): rated before, or at the same moment
        raise Conflict("this address has already rated this disclosure (此网络地址已评议过该报告)") from None


def _keyed(secret: str, key: str) -> str:
    """A client address or network as stored: keyed, so the table names no address."""
    return hmac.new(secret.encode(), key.encode("utf-8", "backslashreplace"), hashlib.sha256).hexdigest()


def _check_network_share(session: Session, disclosure_id: int, network: str | None, most: int) -> None:
    """409 when the rater's IPv6 /48 has rated this disclosure `most` times (counted under the disclosure's lock,
    so parallel ratings cannot all pass); nothing for an IPv4 rater."""
    if network is None:
        return
    given = session.scalar(select(func.count()).select_from(DisclosureRating).where(
        DisclosureRating.disclosure_id == disclosure_id, DisclosureRating.network_hash == network))
    if (given or 0) >= most:
        raise Conflict("this network has rated this disclosure as often as it may "
                       "(此网络已达到对该报告的评议次数上限)")


def _rating_input(body: Any) -> tuple[str, str | None]:
    if not isinstance(body, dict):
        raise Invalid("a rating is an object (评议须为对象)", {"rating": "必填 (required)"})
    fields = {}
    rating, comment = body.get("rating"), body.get("comment")
    if rating not in queries.RATINGS:
        fields["rating"] = "须为 满意/基本满意/不满意 (satisfied, basically_satisfied or dissatisfied)"
    if comment is not None and not isinstance(comment, str):
        fields["comment"] = "须为文本 (must be text)"
    elif comment and len(comment) > MAX_COMMENT:
        fields["comment"] = f"不超过 {MAX_COMMENT} 字 (at most {MAX_COMMENT} characters)"
    elif comment and MARKUP.search(comment):  # plain text, as the portal's reports: no tag, no entity
        fields["comment"] = "只接受纯文本，不能含 HTML (plain text only, no HTML)"
    elif comment and "\x00" in comment:  # PostgreSQL refuses NUL in text (a 500), SQLite would keep it
        fields["comment"] = "含有无效字符 (invalid characters)"
    elif comment and (hidden := hidden_problem(comment, multiline=True)):  # no bidi override, as the reports
        fields["comment"] = hidden
    unknown = set(body) - {"rating", "comment"}
    if unknown:
        fields.update({name: "未知字段 (unknown field)" for name in sorted(unknown)})
    if fields:
        raise Invalid("the rating is not valid (评议内容有误)", fields)
    return str(rating), (comment or "").strip() or None


def _lock_running(session: Session, disclosure_id: int) -> Disclosure:
    """The disclosure, locked against the timer closing it meanwhile; 404 unknown, 409 over."""
    disclosure = session.scalar(select(Disclosure).where(Disclosure.id == disclosure_id).with_for_update())
    if disclosure is None:
        raise NotFound(_GONE)
    case = session.get(Case, disclosure.case_id)
    if disclosure.closed_at is not None or case is None or case.status != "open" or (
            disclosure.ends_at is not None and disclosure.ends_at <= utcnow()):
        raise Conflict("the disclosure period is over (公示评议期已结束)")
    return disclosure


# Staff -------------------------------------------------------------------------------------------


def staff_list(services: Services, actor: Actor, year: int | None = None) -> list[dict[str, Any]]:
    """Every disclosure of a case the actor may read, newest first, with its tally."""
    policy.require(actor, "case.list")
    query = (select(Disclosure, Case, Cadre).join(Case, Case.id == Disclosure.case_id)
             .join(Cadre, Cadre.id == Disclosure.cadre_id).where(policy.case_filter(actor)))
    if year is not None:
        query = query.where(Disclosure.year == year)
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(query.order_by(Disclosure.id.desc()))
        return [_staff_view(session, disclosure, case, cadre) for disclosure, case, cadre in rows]


def staff_get(services: Services, actor: Actor, disclosure_id: int) -> dict[str, Any]:
    """One disclosure with its tally and every comment (404 when its case may not be read); its reports are the
    case's data, so the read is logged like the case's (`disclosure`)."""
    with services.db.unit_of_work(write=False) as session:
        disclosure = session.get(Disclosure, disclosure_id)
        case = session.scalar(select(Case).where(Case.id == disclosure.case_id, policy.case_filter(actor))) \
            if disclosure is not None else None
        if disclosure is None or case is None:
            raise NotFound(f"disclosure {disclosure_id} not found (公示不存在)")
        view = _staff_view(session, disclosure, case, session.get_one(Cadre, disclosure.cadre_id))
        view |= {"duty_report": case.data.get("duty_report", ""),
                 "integrity_report": case.data.get("integrity_report", ""),
                 "comments": queries.disclosure_comments(session, disclosure.id)}
    access_log.note(services, actor, "disclosure", view["case_id"], view["cadre_id"])
    return view


def of_case(session: Session, case: Case) -> dict[str, Any] | None:
    """The disclosure of a case the caller already reads, with its tally and comments (None: none yet)."""
    disclosure = session.scalar(select(Disclosure).where(Disclosure.case_id == case.id))
    if disclosure is None:
        return None
    view = _staff_view(session, disclosure, case, session.get_one(Cadre, disclosure.cadre_id))
    return {**view, "comments": queries.disclosure_comments(session, disclosure.id)}


def _staff_view(session: Session, disclosure: Disclosure, case: Case, cadre: Cadre) -> dict[str, Any]:
    running = disclosure.closed_at is None and case.status == "open"
    return {"id": disclosure.id, "case_id": case.id, "cadre_id": cadre.id, "cadre_name": cadre.name,
            "unit": cadre.unit, "post": cadre.post, "year": disclosure.year,
            "status": "running" if running else "closed", "opened_at": views.iso(disclosure.opened_at),
            "ends_at": views.iso(disclosure.ends_at), "closed_at": views.iso(disclosure.closed_at),
            "result": disclosure.result, "conclusion": disclosure.conclusion,
            "tally": queries.disclosure_tally(session, disclosure.id)}
