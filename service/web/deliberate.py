"""Pages that note a read in the access log open only on a navigation the user made on this site.

The session cookie is SameSite=Lax, so a link (or a script's redirect) on another site to a case page loads it
signed in: the record would be read and the access log would say the user read it. The browser's Fetch Metadata
(`Sec-Fetch-Site`) says where a navigation came from; from anywhere but this origin or the user's own address
bar and bookmarks, such a page answers an interstitial whose link, on this origin, opens the same URL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Response, make_response, render_template, request

# `none`: typed, a bookmark, another application; `same-site` is another origin (a sibling subdomain) all the same.
OWN_NAVIGATION = ("same-origin", "none")


def deliberate_read(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer the interstitial instead of `view` unless this site or the user itself asked for the page; outermost
    of the view's guards, so it says nothing of whether the record exists or who may read it."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _asked_here():
            return _interstitial()
        return view(*args, **kwargs)
    return wrapper


def deliberate_search(view: Callable[..., Any]) -> Callable[..., Any]:
    """`deliberate_read` for a list that notes a read only when it searches by text (`q`): the cases a search
    finds are noted (usecases/tracker.py), the list itself is not."""
    guarded = deliberate_read(view)

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return (guarded if request.args.get("q", "").strip() else view)(*args, **kwargs)
    return wrapper


def _asked_here() -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in OWN_NAVIGATION
    # No Fetch Metadata: a client that is no current browser (a script, a screen reader's fetch) or an old browser.
    # Every browser released since 2023 sends it, so the guard holds where a link from elsewhere works; here a
    # Referer of another origin still tells one, and a request with none is taken as the user's own.
    if not request.referrer:
        return True
    referrer, here = urlsplit(request.referrer), urlsplit(request.host_url)
    return (referrer.scheme, referrer.netloc) == (here.scheme, here.netloc)


def _interstitial() -> Response:
    response = make_response(render_template("continue.html", url=same_url()))
    response.headers["Cache-Control"] = "no-store"  # the same URL opens the page itself once asked here
    return response


def same_url() -> str:
    """The requested URL as a path on this origin (never `//host…`, which a browser would take for another)."""
    path = request.script_root + "/" + request.path.lstrip("/")
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path
