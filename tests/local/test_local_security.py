"""Requests from browsers, and what unauthenticated requests may cost.

The platform runs commands, so a web page the user happens to visit (another loopback port
counts: ports do not separate cookies) must not be able to make it run one. Two rules do it:
a request with a foreign ``Origin`` is refused, and the ``CADC_SSO`` cookie is accepted for
GET/HEAD only. And a flood of unauthenticated requests must not grow its memory.
"""

from __future__ import annotations

import gc
import secrets
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.timeout(120)

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def platform(make_platform: Callable[..., LocalPlatform]) -> LocalPlatform:
    return make_platform()


def touch_job(marker: Path) -> dict[str, str]:
    """A create whose job, if it ever ran, would leave ``marker`` behind."""
    return {"name": "pwn", "image": TERMINAL, "cmd": "touch", "args": str(marker)}


def ran_nothing(platform: LocalPlatform, marker: Path) -> bool:
    return platform.sessions() == [] and not marker.exists()


def test_forged_cross_origin_post_runs_nothing(platform: LocalPlatform, tmp_path: Path) -> None:
    marker = tmp_path / "cross-origin"
    # what a page on another loopback port can make the browser send: a form POST with the
    # user's cookie; even with the token in a header the foreign Origin is refused
    for headers in (
        {"Origin": "http://127.0.0.1:9999"},
        {"Origin": "http://127.0.0.1:9999", "Authorization": f"Bearer {platform.token}"},
        {"Origin": "null"},
    ):
        r = httpx.post(
            f"{platform.url}/session",
            data=touch_job(marker),
            cookies={"CADC_SSO": platform.token},
            headers=headers,
        )
        assert r.status_code == 403
        assert r.headers["content-type"] == "text/plain"
        assert r.text == (
            f"cross-origin request refused: Origin {headers['Origin']} is not "
            f"this platform ({platform.base})\n"
        )
    assert ran_nothing(platform, marker)
    # nor can it delete or renew
    own = httpx.post(
        f"{platform.url}/session",
        params={"name": "mine", "image": TERMINAL, "cmd": "sleep", "args": "30"},
        headers={**FORM, "Authorization": f"Bearer {platform.token}"},
    )
    sid = own.text.strip()
    r = httpx.delete(
        f"{platform.url}/session/{sid}",
        headers={"Origin": "http://localhost:1234", "Authorization": f"Bearer {platform.token}"},
    )
    assert r.status_code == 403
    assert [s["status"] for s in platform.sessions()] in (["Pending"], ["Running"])


def test_cookie_only_post_runs_nothing(platform: LocalPlatform, tmp_path: Path) -> None:
    marker = tmp_path / "cookie-only"
    r = httpx.post(
        f"{platform.url}/session", data=touch_job(marker), cookies={"CADC_SSO": platform.token}
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "text/plain"
    assert "CADC_SSO cookie is accepted for GET requests only" in r.text
    assert "Authorization: Bearer" in r.text
    assert platform.token not in r.text
    # a same-origin page is no exception: the cookie never authorises a state change
    r = httpx.post(
        f"{platform.url}/session",
        data=touch_job(marker),
        cookies={"CADC_SSO": platform.token},
        headers={"Origin": platform.base},
    )
    assert r.status_code == 403
    r = httpx.delete(f"{platform.url}/session/abcdefgh", cookies={"CADC_SSO": platform.token})
    assert r.status_code == 403
    assert ran_nothing(platform, marker)


def test_cookie_still_reads_and_own_origin_is_accepted(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    assert (
        httpx.get(f"{platform.url}/session", cookies={"CADC_SSO": platform.token}).status_code
        == 200
    )
    for origin in (platform.base, platform.base.replace("127.0.0.1", "localhost")):
        r = httpx.post(
            f"{platform.url}/session",
            data={"name": "ok", "image": TERMINAL, "cmd": "true"},
            headers={"Origin": origin, "Authorization": f"Bearer {platform.token}"},
        )
        assert r.status_code == 200, r.text
    # a cross-origin read is refused as well (its answer would leak nothing, but costs work)
    r = httpx.get(
        f"{platform.url}/session",
        cookies={"CADC_SSO": platform.token},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403


def test_unauthenticated_requests_cost_bounded_memory(platform: LocalPlatform) -> None:
    state = platform._state
    assert state is not None

    def flood(client: httpx.Client, count: int) -> None:
        for n in range(count):
            noise = secrets.token_hex(1000)  # 2,000-character distinct paths and views
            path = ("session/" + noise, f"session/{noise}/app/x", "session")[n % 3]
            r = client.get(path, params={"view": noise[:500]} if n % 3 == 2 else None)
            assert r.status_code == 400  # anonymous
            r = client.post(path, headers={"Authorization": "Bearer wrong-" + noise[:50]})
            assert r.status_code == 401

    with httpx.Client(base_url=platform.url + "/") as client:
        flood(client, 100)  # warm up tornado's and httpx's caches
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            flood(client, 1000)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 1_000_000, f"memory grew by {grown} bytes"
    # the counters are keyed by route, not by path
    keys = {path for _, path in platform.call(lambda _store: list(state.requests))}
    assert keys == {"session/{id}", "session/{id}/app/{appid}", "session?view=*", "session"}
    assert platform.request_count("GET", "session/{id}") == 368
