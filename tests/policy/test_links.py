"""The web UI never links a user to a page that would refuse them: crawl every link each user is shown."""

from __future__ import annotations

import re
from collections import deque

import pytest

from tests.api.support import DEPARTURE
from tests.policy.world import WALKED

HREF = re.compile(r'href="(/[^"#]*)"')
SKIP = ("/assets/", "/static/")
MAX_PAGES = 400


@pytest.fixture
def world_app(world, tmp_path):
    app = world.app(tmp_path / "links")
    yield app
    app.extensions["cadreflow"].db.dispose()


def crawl(client, start: str = "/") -> dict[str, int]:
    """Every internal link reachable from `start` for this client, with the status it answered."""
    seen: dict[str, int] = {}
    queue = deque([start])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft().replace("&amp;", "&")
        if url in seen or url.startswith(SKIP):
            continue
        response = client.get(url, follow_redirects=True)
        seen[url] = response.status_code
        if response.mimetype == "text/html":
            queue.extend(HREF.findall(response.get_data(as_text=True)))
        response.close()
    return seen


@pytest.mark.parametrize("user", WALKED)
def test_every_link_a_user_is_shown_opens(world, world_app, user):
    """From the home page, each link (navigation, cases, tasks, cadres, filters, exports) answers 200."""
    found = crawl(world.web(world_app, user))
    refused = {url: status for url, status in found.items() if status != 200}
    assert refused == {}
    assert len(found) < MAX_PAGES


def test_audit_follows_the_cadre_link_of_its_own_task(world, world_app):
    """audit's fieldwork task links its cadre, and the cadre page opens; its crumbs lead to open pages."""
    web = world.web(world_app, "audit")
    page = web.get(f"/tasks/{world.tasks[DEPARTURE]}").get_data(as_text=True)
    cadre_links = re.findall(r'href="(/cadres/[^"]+)"', page)
    assert cadre_links and all(web.get(link).status_code == 200 for link in cadre_links)
    assert crawl(web, f"/tasks/{world.tasks[DEPARTURE]}") and all(
        status == 200 for status in crawl(web, f"/tasks/{world.tasks[DEPARTURE]}").values())
