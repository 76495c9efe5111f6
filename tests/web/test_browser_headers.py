"""What every page tells the browser: a style policy without inline styles (but on the modeler's page), and a
logout that leaves nothing of the session's pages in the browser's caches."""

from __future__ import annotations

import re

from tests.web.test_disclosure_pages import disclosed
from tests.web.test_web_shell import csrf_token, login


def style_src(response) -> list[str]:
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return policy["style-src"].split()


def test_pages_allow_no_inline_styles(client, api):
    """An injected `style` attribute or <style> element (CSS that reads a page's tokens out through attribute
    selectors and background URLs) is never applied: no page but the modeler's allows inline styles, and no
    page writes one (the tallies' bars included)."""
    case_id, disclosure_id = disclosed(api)
    pages = ["/login", "/disclosures", f"/disclosures/{disclosure_id}", "/nope", "/api/docs"]
    for url in pages:
        response = client.get(url)
        assert style_src(response) == ["'self'"], url
        assert not re.search(r"<style|\sstyle=", response.get_data(as_text=True)), url
    for sheet in re.findall(r'<link rel="stylesheet" href="([^"]+)"', client.get("/api/docs").get_data(as_text=True)):
        answer = client.get(sheet)
        answer.close()  # a static file's answer holds the file open
        assert answer.status_code == 200, sheet
    login(client, "admin")
    for url in [
        "/inbox",
        f"/cases/{case_id}",
        f"/integrity-reports/{disclosure_id}",
        "/dashboard",
        "/designer/admonishment/versions/1",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert style_src(response) == ["'self'"], url
        assert not re.search(r"<style|\sstyle=", response.get_data(as_text=True)), url


def test_only_the_modeler_may_use_inline_styles(client):
    """bpmn-js's palette and properties panel write inline styles: the modeler's page alone allows them."""
    login(client, "designer")
    response = client.get("/designer/admonishment/edit")
    assert response.status_code == 200
    assert style_src(response) == ["'self'", "'unsafe-inline'"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_logout_clears_the_browsers_cache(client):
    """After logging out, the back button shows no page of the session, from the HTTP cache or the back-forward
    cache: the logout answer tells the browser to drop this site's cache (not its cookies: the device's stays)."""
    login(client, "org_dept")
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")})
    assert response.status_code == 302
    assert response.headers["Clear-Site-Data"] == '"cache"'
    assert "Clear-Site-Data" not in client.post("/login", data={"csrf_token": csrf_token(client)}).headers
