"""A page that notes a read in the access log opens only on a navigation made on this site or by the user itself:
a link on another site (`Sec-Fetch-Site: cross-site`, or for an old browser without Fetch Metadata a Referer of
another origin) gets an interstitial whose link opens the same URL here, and nothing is read nor noted."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from service.api import is_api_path
from service.db.models import AccessLogEntry
from tests.api.support import start_admonishment
from tests.web.test_web_shell import login

CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}
# The page routes that note a read (the use cases calling access_log.note, read_case or note_many).
READ_PAGES = {"/cases/<int(max=2147483647):case_id>", "/cases/<int(max=2147483647):case_id>/documents/<kind>.pdf",
              "/attachments/<int(max=2147483647):attachment_id>", "/tasks/<task_id>", "/cadres/<cadre_id>",
              "/cadres/<cadre_id>/ledger.pdf", "/integrity-reports/<int(max=2147483647):disclosure_id>",
              "/reports/<int(max=2147483647):case_id>"}


def reads_noted(services) -> int:
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(AccessLogEntry)) or 0


def a_case(api) -> int:
    api.create_cadre("c1")
    return start_admonishment(api)["id"]


def interstitial_link(html: str) -> str:
    found = re.search(r'<a class="button primary" href="([^"]*)">', html)
    assert found and "确认打开" in html, html
    return found.group(1).replace("&amp;", "&")


def test_no_page_notes_a_read_when_another_site_links_to_it(hostile_world):
    """Every GET page of the URL map, from a user holding every role: linked from another site none notes a read
    (a new page noting reads without the guard fails here); asked on the site, those this world can reach do."""
    app, services = hostile_world.app, hostile_world.app.extensions["cadreflow"]
    client = app.test_client()
    login(client, "everyone")
    pages = [rule for rule in app.url_map.iter_rules()
             if "GET" in (rule.methods or ()) and not is_api_path(rule.rule) and rule.rule != "/logout"]
    from_elsewhere, noting = [], set()
    for rule in pages:
        url = hostile_world.url(rule, "GET")
        before = reads_noted(services)
        client.get(url, headers=CROSS_SITE).close()
        if reads_noted(services) != before:
            from_elsewhere.append(rule.rule)
        client.get(url).close()
        if reads_noted(services) != before:
            noting.add(rule.rule)
    assert from_elsewhere == []
    assert {"/cases/<int(max=2147483647):case_id>", "/tasks/<task_id>", "/cadres/<cadre_id>"} <= noting <= READ_PAGES


def test_each_page_noting_a_read_answers_the_interstitial_when_linked_from_elsewhere(hostile_world):
    app = hostile_world.app
    client = app.test_client()
    login(client, "everyone")
    for rule in app.url_map.iter_rules():
        if rule.rule in READ_PAGES:
            url = hostile_world.url(rule, "GET")
            assert interstitial_link(client.get(url, headers=CROSS_SITE).get_data(as_text=True)) == url


@pytest.mark.parametrize("headers", [CROSS_SITE, {"Sec-Fetch-Site": "same-site"},
                                     {"Referer": "https://elsewhere.example/cases/1"}],
                         ids=["cross-site", "same-site", "old browser, referer of another site"])
def test_a_case_page_linked_from_elsewhere_is_an_interstitial_then_opens_here(client, api, services, headers):
    case_id = a_case(api)
    login(client, "discipline")
    before = reads_noted(services)
    response = client.get(f"/cases/{case_id}?tab=history&x=1", headers=headers)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    link = interstitial_link(html)
    assert link == f"/cases/{case_id}?tab=history&x=1"
    assert "群众反映工作作风问题" not in html and reads_noted(services) == before  # nothing of the case, no read
    page = client.get(link, headers={"Sec-Fetch-Site": "same-origin"})  # the user clicks the link
    assert page.status_code == 200 and "群众反映工作作风问题" in page.get_data(as_text=True)
    assert reads_noted(services) == before + 1


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "none"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Referer": "http://localhost/inbox"}, {}],
                         ids=["typed or bookmarked", "a link here", "old browser, referer of this site",
                              "no browser: no metadata, no referer"])
def test_a_navigation_the_user_made_opens_the_page(client, api, services, headers):
    case_id = a_case(api)
    login(client, "discipline")
    before = reads_noted(services)
    response = client.get(f"/cases/{case_id}", headers=headers)
    assert response.status_code == 200 and "群众反映工作作风问题" in response.get_data(as_text=True)
    assert reads_noted(services) == before + 1


def test_the_interstitial_says_nothing_of_the_record_nor_of_who_may_read_it(client, api):
    """The same page for a case the user may read, one it may not, one that does not exist, and no login."""
    case_id = a_case(api)
    anonymous = client.get(f"/cases/{case_id}", headers=CROSS_SITE).get_data(as_text=True)
    login(client, "audit")  # may not read an admonishment
    answers = [client.get(f"/cases/{which}", headers=CROSS_SITE) for which in (case_id, 999999)]
    assert all(answer.status_code == 200 for answer in answers)
    assert [interstitial_link(a.get_data(as_text=True)) for a in answers] == [f"/cases/{case_id}", "/cases/999999"]
    assert interstitial_link(anonymous) == f"/cases/{case_id}"
    assert client.get(f"/cases/{case_id}").status_code == 404  # asked here: the policy answers
