"""auth: bearer/registry headers per request, OIDC single-flight refresh and atomic save."""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import yaml

from canfar_widgets.auth import BearerAuth, OIDCAuth, RegistryAuth
from canfar_widgets.errors import AuthenticationError
from canfar_widgets.models import Configuration, ContainerRegistry, OIDCCredential

TOKEN_URL = "https://iam.example/token"
REGISTRY = ContainerRegistry(username="bob", secret="s3cret")


def api(auth: httpx.Auth) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    return httpx.Client(
        base_url="https://api.example/skaha/v1/", auth=auth, transport=httpx.MockTransport(handler)
    ), seen


def async_api(auth: httpx.Auth) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = httpx.AsyncClient(
        base_url="https://api.example/skaha/v1/", auth=auth, transport=httpx.MockTransport(handler)
    )
    return client, seen


def get_session_once(auth: httpx.Auth, flavour: str) -> list[httpx.Request]:
    """One ``GET session`` through ``auth`` with httpx's sync or async client; the requests
    that reached the server."""
    if flavour == "sync":
        client, seen = api(auth)
        with client:
            client.get("session")
        return seen
    async_client, seen = async_api(auth)

    async def main() -> None:
        async with async_client:
            await async_client.get("session")

    asyncio.run(main())
    return seen


# -- bearer / registry --------------------------------------------------------------------


def test_bearer_and_registry_headers() -> None:
    client, seen = api(BearerAuth("tok", REGISTRY))
    with client:
        client.get("session")
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[0].headers["X-Skaha-Registry-Auth"] == "Ym9iOnMzY3JldA=="
    assert "tok" not in repr(BearerAuth("tok")) and "s3cret" not in repr(
        BearerAuth("tok", REGISTRY)
    )


def test_the_bearer_token_is_held_where_no_print_shows_it() -> None:
    # Held without pydantic (a first call needs no model), with SecretStr's promise: repr,
    # str, format and vars() of the auth, or of its holder, show stars.
    from pydantic import SecretStr

    auth = BearerAuth("tok-9f8e7d")
    held = vars(auth)["_token"]
    for text in (repr(auth), str(vars(auth)), repr(held), str(held), f"{held}", f"{held!r}"):
        assert "tok-9f8e7d" not in text
    assert str(held) == "**********" and repr(held) == "Secret('**********')"
    assert not hasattr(held, "__dict__")  # nothing else to print: the value sits in a slot
    for token in ("tok-9f8e7d", SecretStr("tok-9f8e7d")):  # a SecretStr is unwrapped
        client, seen = api(BearerAuth(token))
        with client:
            client.get("session")
        assert seen[0].headers["Authorization"] == "Bearer tok-9f8e7d"


async def test_bearer_async() -> None:
    client, seen = async_api(BearerAuth("tok"))
    async with client:
        await client.get("session")
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert "X-Skaha-Registry-Auth" not in seen[0].headers


def test_registry_auth_alone() -> None:
    client, seen = api(RegistryAuth(REGISTRY))
    with client:
        client.get("session")
    assert seen[0].headers["X-Skaha-Registry-Auth"] == "Ym9iOnMzY3JldA=="
    assert "Authorization" not in seen[0].headers
    client, seen = api(RegistryAuth(None))
    with client:
        client.get("session")
    assert "X-Skaha-Registry-Auth" not in seen[0].headers
    assert repr(RegistryAuth(REGISTRY)) == "RegistryAuth(registry_user='bob')"


# -- OIDC ---------------------------------------------------------------------------------


def record(*, expires_in: float, refresh: str | None = "refresh-1") -> dict[str, Any]:
    return {
        "mode": "oidc",
        "endpoints": {
            "discovery": "https://iam.example/.well-known/openid-configuration",
            "token": TOKEN_URL,
        },
        "client": {"identity": "client id", "secret": "client/secret"},
        "token": {
            "access": "access-1",
            "refresh": refresh,
            "token_type": "Bearer",
            "scope": "openid",
        },
        "expiry": {"access": time.time() + expires_in, "refresh": 4102444800.0},
        "keepme": "unmodelled field",
    }


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / ".canfar" / "config.yaml"
    path.parent.mkdir()
    document = {
        "version": 1,
        "active": {"authentication": "srcnet", "server": "src"},
        "authentication": {
            "srcnet": record(expires_in=-10),
            "cadc": {"mode": "x509", "path": "/x.pem"},
        },
        "servers": {
            "src": {"url": "https://src.example/skaha", "version": "v1", "storage": {"keep": 1}}
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


class TokenEndpoint:
    """A fake IdP token endpoint counting refresh grants."""

    def __init__(self, *, status: int = 200, body: Any = None, delay: float = 0.0) -> None:
        self.calls: list[httpx.Request] = []
        self.status = status
        self.body = body
        self.delay = delay

    def _response(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.body is not None:
            if isinstance(self.body, (dict, list)):
                return httpx.Response(self.status, json=self.body)
            return httpx.Response(self.status, text=self.body)
        number = len(self.calls) + 1
        return httpx.Response(
            self.status,
            json={"access_token": f"access-{number}", "expires_in": 3600, "token_type": "Bearer"},
        )

    def sync(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        return self._response(request)

    async def asynchronous(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._response(request)

    def auth(
        self, credential: OIDCCredential, path: Path | None = None, **options: Any
    ) -> OIDCAuth:
        return OIDCAuth(
            credential,
            idp="srcnet",
            path=path,
            transport=httpx.MockTransport(self.sync),
            async_transport=httpx.MockTransport(self.asynchronous),
            **options,
        )


def load(path: Path) -> OIDCCredential:
    credential = Configuration.load(path).active_credential()
    assert isinstance(credential, OIDCCredential)
    return credential


def test_valid_token_is_used_without_refresh() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=3600)), registry=REGISTRY)
    client, seen = api(auth)
    with client:
        client.get("session")
    assert endpoint.calls == []
    assert seen[0].headers["Authorization"] == "Bearer access-1"
    assert seen[0].headers["X-Skaha-Registry-Auth"] == "Ym9iOnMzY3JldA=="


def test_refresh_request_shape_and_save(config_path: Path) -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(load(config_path), config_path)
    client, seen = api(auth)
    with client:
        client.get("session")
    (grant,) = endpoint.calls
    assert grant.method == "POST" and str(grant.url) == TOKEN_URL
    assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(grant.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-1"],
    }
    # client_secret_basic: id and secret form-encoded, then base64
    assert (
        grant.headers["Authorization"]
        == "Basic " + base64.b64encode(b"client%20id:client%2Fsecret").decode()
    )
    assert seen[0].headers["Authorization"] == "Bearer access-2"

    saved = yaml.safe_load(config_path.read_text())
    entry = saved["authentication"]["srcnet"]
    assert entry["token"]["access"] == "access-2"
    assert entry["token"]["refresh"] == "refresh-1"  # none returned: the old one is kept
    assert entry["expiry"]["refresh"] == 4102444800.0  # and its expiry too
    assert entry["expiry"]["access"] == pytest.approx(time.time() + 3600, abs=30)
    assert entry["keepme"] == "unmodelled field"
    assert saved["servers"]["src"]["storage"] == {"keep": 1}
    assert saved["authentication"]["cadc"] == {"mode": "x509", "path": "/x.pem"}
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["config.yaml"]
    assert load(config_path).token.access.get_secret_value() == "access-2"  # type: ignore[union-attr]


def test_rotated_refresh_token_is_saved(config_path: Path) -> None:
    endpoint = TokenEndpoint(
        body={
            "access_token": "new-access",
            "refresh_token": "refresh-2",
            "expires_in": 60,
            "refresh_expires_in": 600,
        }
    )
    auth = endpoint.auth(load(config_path), config_path)
    client, _ = api(auth)
    with client:
        client.get("session")
    entry = yaml.safe_load(config_path.read_text())["authentication"]["srcnet"]
    assert entry["token"]["refresh"] == "refresh-2"
    assert entry["expiry"]["refresh"] == pytest.approx(time.time() + 600, abs=30)
    assert auth.credential.token.refresh.get_secret_value() == "refresh-2"  # type: ignore[union-attr]


def test_expiring_within_skew_is_refreshed() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=10)), skew=30)
    client, seen = api(auth)
    with client:
        client.get("a")
        client.get("b")
    assert len(endpoint.calls) == 1
    assert [r.headers["Authorization"] for r in seen] == ["Bearer access-2", "Bearer access-2"]


async def test_async_single_flight(config_path: Path) -> None:
    endpoint = TokenEndpoint(delay=0.05)
    auth = endpoint.auth(load(config_path), config_path)
    client, seen = async_api(auth)
    async with client:
        await asyncio.gather(*(client.get(f"session/{i}") for i in range(25)))
    assert len(endpoint.calls) == 1
    assert auth.refresh_count == 1
    assert {r.headers["Authorization"] for r in seen} == {"Bearer access-2"}
    assert len(seen) == 25


def test_threads_single_flight() -> None:
    endpoint = TokenEndpoint(delay=0.05)
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)))
    client, seen = api(auth)
    barrier = threading.Barrier(12)

    def work() -> None:
        barrier.wait()
        client.get("session")

    with client:
        threads = [threading.Thread(target=work) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(endpoint.calls) == 1
    assert {r.headers["Authorization"] for r in seen} == {"Bearer access-2"}


def test_threads_and_loops_share_one_refresh() -> None:
    # A sync caller and coroutines on two other loops, all at once: still one grant.
    endpoint = TokenEndpoint(delay=0.05)
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)))
    barrier = threading.Barrier(3)

    def sync_caller() -> None:
        client, _ = api(auth)
        barrier.wait()
        with client:
            client.get("x")

    def loop_caller() -> None:
        async def main() -> None:
            client, _ = async_api(auth)
            barrier.wait()
            async with client:
                await asyncio.gather(*(client.get("y") for _ in range(5)))

        asyncio.run(main())

    threads = [threading.Thread(target=f) for f in (sync_caller, loop_caller, loop_caller)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(endpoint.calls) == 1


def test_reused_across_event_loops() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)))

    async def once() -> str:
        client, seen = async_api(auth)
        async with client:
            await client.get("x")
        return seen[0].headers["Authorization"]

    assert asyncio.run(once()) == "Bearer access-2"
    auth._credential = auth.credential.model_copy(
        update={"expiry": auth.credential.expiry.model_copy(update={"access": 0.0})}
    )
    assert asyncio.run(once()) == "Bearer access-3"


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        (
            TokenEndpoint(
                status=400,
                body={"error": "invalid_grant", "error_description": "refresh-1 revoked"},
            ),
            "400: invalid_grant",
        ),
        (TokenEndpoint(status=500, body="<html>oops refresh-1</html>"), "answered 500"),
        (TokenEndpoint(body={"token": "x"}), "malformed token response"),
        (TokenEndpoint(body="not json"), "malformed token response"),
        (TokenEndpoint(body={"access_token": ""}), "malformed token response"),
    ],
)
async def test_refresh_failures(endpoint: TokenEndpoint, reason: str) -> None:
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)))
    for sync in (True, False):
        with pytest.raises(AuthenticationError, match="could not be refreshed") as caught:
            if sync:
                client, _ = api(auth)
                with client:
                    client.get("x")
            else:
                aclient, _ = async_api(auth)
                async with aclient:
                    await aclient.get("x")
        message = str(caught.value)
        assert reason in message
        for secret in ("refresh-1", "access-1", "client/secret", "client%2Fsecret"):
            assert secret not in message
        # no chained exception whose text could carry the response
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None or caught.value.__suppress_context__


async def test_network_failure() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    auth = OIDCAuth(
        OIDCCredential.model_validate(record(expires_in=-1)),
        idp="srcnet",
        transport=httpx.MockTransport(boom),
        async_transport=httpx.MockTransport(boom),
    )
    client, _ = async_api(auth)
    async with client:
        with pytest.raises(AuthenticationError, match=r"could not be refreshed \(ConnectError\)"):
            await client.get("x")


def test_not_refreshable() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1, refresh=None)))
    client, _ = api(auth)
    with client, pytest.raises(AuthenticationError, match="could not be refreshed"):
        client.get("x")
    assert endpoint.calls == []


def test_save_failure_does_not_block_the_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = TokenEndpoint()
    missing_dir_file = tmp_path / "gone" / "config.yaml"  # no such file: cannot be updated
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)), missing_dir_file)
    client, seen = api(auth)
    with caplog.at_level(logging.WARNING, logger="canfar_widgets.auth"), client:
        client.get("x")
    assert seen[0].headers["Authorization"] == "Bearer access-2"
    assert "could not save the refreshed OIDC token" in caplog.text
    assert "access-2" not in caplog.text


def test_expires_at_in_response_is_used() -> None:
    endpoint = TokenEndpoint(body={"access_token": "a2", "expires_at": 4102444800})
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)))
    client, _ = api(auth)
    with client:
        client.get("x")
    assert auth.credential.expiry.access == 4102444800.0


def test_sync_wait_for_a_stuck_refresh_is_bounded() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=-1)), timeout=0.01)
    auth._thread_lock.acquire()  # as if another refresh never finished
    try:
        client, _ = api(auth)
        with client, pytest.raises(AuthenticationError, match="another refresh did not finish"):
            client.get("x")

        async def attempt() -> None:
            aclient, _ = async_api(auth)
            async with aclient:
                await aclient.get("x")

        with pytest.raises(AuthenticationError, match="another refresh did not finish"):
            asyncio.run(attempt())
    finally:
        auth._thread_lock.release()
    assert endpoint.calls == []


# -- another process refreshed meanwhile; a 401 mid-way (issue 11) -------------------------


def _save_tokens(path: Path, access: str, refresh: str, expires_in: float) -> None:
    document = yaml.safe_load(path.read_text())
    entry = document["authentication"]["srcnet"]
    entry["token"].update({"access": access, "refresh": refresh})
    entry["expiry"]["access"] = time.time() + expires_in
    path.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_saved_login_is_reread_before_refreshing(config_path: Path, flavour: str) -> None:
    # Another kernel refreshed (and rotated the refresh token) after we loaded the file:
    # its fresh access token is used, and our spent refresh token is never sent.
    endpoint = TokenEndpoint()
    auth = endpoint.auth(load(config_path), config_path)
    _save_tokens(config_path, "fresh-from-elsewhere", "refresh-rotated", 3600)
    seen = get_session_once(auth, flavour)
    assert endpoint.calls == []
    assert seen[0].headers["Authorization"] == "Bearer fresh-from-elsewhere"


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_invalid_grant_rereads_once_and_retries_with_the_rotated_token(
    config_path: Path, flavour: str
) -> None:
    used: list[str] = []

    def grant(request: httpx.Request) -> httpx.Response:
        refresh = parse_qs(request.content.decode())["refresh_token"][0]
        used.append(refresh)
        if refresh == "refresh-1":  # spent: another kernel rotated it just now
            _save_tokens(config_path, "stale-access", "refresh-rotated", -10)
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(200, json={"access_token": "after-rotation", "expires_in": 60})

    async def agrant(request: httpx.Request) -> httpx.Response:
        return grant(request)

    auth = OIDCAuth(
        load(config_path),
        idp="srcnet",
        path=config_path,
        transport=httpx.MockTransport(grant),
        async_transport=httpx.MockTransport(agrant),
    )
    seen = get_session_once(auth, flavour)
    assert used == ["refresh-1", "refresh-rotated"]  # re-read once, retried once
    assert seen[0].headers["Authorization"] == "Bearer after-rotation"


def test_invalid_grant_twice_fails_with_login_advice(config_path: Path) -> None:
    endpoint = TokenEndpoint(status=400, body={"error": "invalid_grant"})
    auth = endpoint.auth(load(config_path), config_path)
    client, seen = api(auth)
    with client, pytest.raises(AuthenticationError, match=r"invalid_grant.*canfar login"):
        client.get("session")
    assert len(endpoint.calls) == 1  # the file had nothing newer: no second grant
    assert seen == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_401_mid_way_refreshes_once_and_retries_once(method: str) -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=3600)))
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if request.headers["Authorization"] == "Bearer access-1" else 200)

    with httpx.Client(
        base_url="https://api.example/skaha/v1/", auth=auth, transport=httpx.MockTransport(handler)
    ) as client:
        assert client.request(method, "session/abc").status_code == 200
    assert seen == ["Bearer access-1", "Bearer access-2"]
    assert len(endpoint.calls) == 1


async def test_a_401_is_retried_once_only_and_never_for_a_post() -> None:
    endpoint = TokenEndpoint()
    auth = endpoint.auth(OIDCCredential.model_validate(record(expires_in=3600)))
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(401)

    async with httpx.AsyncClient(
        base_url="https://api.example/skaha/v1/", auth=auth, transport=httpx.MockTransport(handler)
    ) as client:
        assert (await client.get("session")).status_code == 401
        assert calls == ["GET", "GET"]  # one retry, then the 401 is the answer
        assert (await client.post("session", data={"name": "x"})).status_code == 401
        assert calls == ["GET", "GET", "POST"]  # a create is not sent twice
    assert len(endpoint.calls) == 1
