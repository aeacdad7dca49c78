"""The Integration Manager over plain HTTP (no browser): a client that
logs in through ``/admin/login`` like a browser, keeps the session cookie
and sends the session's CSRF token and a same-origin ``Origin`` with every
state-changing request, as the pages do."""

from __future__ import annotations

import re
from typing import Any

import httpx

from support import ADMIN_KEY

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


class AdminUI:
    """A logged-in operator's browser, reduced to HTTP."""

    def __init__(self, url: str, key: str = ADMIN_KEY, *, log_in: bool = True) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=15, follow_redirects=False)
        self.csrf = ""
        if log_in:
            self.log_in(key)

    def log_in(self, key: str) -> httpx.Response:
        answer = self.http.post("/admin/login", data={"key": key}, headers={"Origin": self.url})
        if answer.status_code == 303:
            self.csrf = csrf_of(self.get("/admin").text)
        return answer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, htmx: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A form post as the page sends it: CSRF token and Origin included
        (``htmx``: as an htmx request, token in the header)."""
        headers = {"Origin": self.url, **kwargs.pop("headers", {})}
        form = dict(data or {})
        if htmx:
            headers |= {"HX-Request": "true", "X-CSRF-Token": self.csrf}
        else:
            form.setdefault("csrf", self.csrf)
        return self.http.post(path, data=form, headers=headers, **kwargs)

    def close(self) -> None:
        self.http.close()


def csrf_of(page: str) -> str:
    found = CSRF_META.search(page)
    assert found, "the page carries no CSRF token"
    return found.group(1)
