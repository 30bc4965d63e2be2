"""What the local-platform tests share: the image they run, the official client's way of
posting a create, an authorised `httpx.Client`, and `PlatformApi`, a tiny skaha client
over it for tests that drive jobs rather than check the wire.
"""

from __future__ import annotations

from typing import Any

import httpx
import support

from canfar_widgets.local import LocalPlatform

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
# The official client posts a create as a query string with this content type, empty body.
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def authorized_client(platform: LocalPlatform, **options: Any) -> httpx.Client:
    """An `httpx.Client` on the platform's API, with its token."""
    return httpx.Client(
        base_url=platform.url + "/",
        headers={"Authorization": f"Bearer {platform.token}"},
        **options,
    )


class PlatformApi:
    """Create, read and wait on sessions over real HTTP, asserting each create succeeded."""

    wait_timeout = 15.0  # seconds a wait_status gives the platform by default

    def __init__(self, platform: LocalPlatform) -> None:
        self.platform = platform
        self.http = authorized_client(platform)

    def create(self, **params: Any) -> str:
        params.setdefault("name", "job")
        params.setdefault("image", TERMINAL)
        r = self.http.post("session", params=params, headers=FORM)
        assert r.status_code == 200, r.text
        return r.text.strip()

    def record(self, sid: str) -> dict[str, Any] | None:
        r = self.http.get(f"session/{sid}")
        return r.json() if r.status_code == 200 else None

    def status(self, sid: str) -> str | None:
        record = self.record(sid)
        return record["status"] if record else None

    def statuses(self, ids: list[str]) -> list[str | None]:
        by_id = {r["id"]: r["status"] for r in self.http.get("session").json()}
        return [by_id.get(sid) for sid in ids]

    def logs(self, sid: str) -> str:
        return self.http.get(f"session/{sid}", params={"view": "logs"}).text

    def events(self, sid: str) -> Any:
        return self.http.get(f"session/{sid}", params={"view": "events"}).text

    def wait_status(
        self, sid: str, *wanted: str | None, timeout: float | None = None
    ) -> str | None:
        support.wait_for(lambda: self.status(sid) in wanted, timeout or self.wait_timeout)
        return self.status(sid)

    def close(self) -> None:
        self.http.close()
