"""httpx ``Auth`` flows: where credentials meet requests.

Why ``httpx.Auth`` and not default client headers: default headers live in the client's
``repr`` and in every copy of its header dict; an ``Auth`` adds ``Authorization`` and
``X-Skaha-Registry-Auth`` to each outgoing request only, so secrets never sit in long-lived
state that widgets, logs or tracebacks may print.

- ``RegistryAuth``: only the registry header (X.509 and anonymous modes; the certificate
  itself travels in the TLS context).
- ``BearerAuth``: a fixed token (``token=`` / ``CANFAR_TOKEN``) plus the registry header.
- ``OIDCAuth``: a saved ``canfar login`` OIDC record; refreshes an expiring access token
  once (single-flight) and saves the new tokens back to the config file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from canfar_widgets.errors import AuthenticationError
from canfar_widgets.models import ContainerRegistry, OIDCCredential, write_yaml_atomic

__all__ = ["REGISTRY_HEADER", "BearerAuth", "OIDCAuth", "RegistryAuth"]

log = logging.getLogger(__name__)

REGISTRY_HEADER = "X-Skaha-Registry-Auth"


class RegistryAuth(httpx.Auth):
    """Adds ``X-Skaha-Registry-Auth`` when registry credentials are configured.

    Used on its own for X.509 and anonymous modes, and as the base of the other flows.

    Example:
        >>> auth = RegistryAuth(ContainerRegistry(username="bob", secret="s3cret"))
        >>> client = httpx.Client(auth=auth)
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(self, registry: ContainerRegistry | None = None) -> None:
        self.registry = registry
        self._registry_header = registry.header_value() if registry is not None else None

    def _apply(self, request: httpx.Request) -> None:
        if self._registry_header:
            request.headers[REGISTRY_HEADER] = self._registry_header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._apply(request)
        yield request

    def __repr__(self) -> str:
        user = self.registry.username if self.registry is not None else None
        return f"{type(self).__name__}(registry_user={user!r})"


class BearerAuth(RegistryAuth):
    """``Authorization: Bearer <token>`` on every request, plus the registry header.

    Example:
        >>> client = httpx.Client(auth=BearerAuth("my-token"))
    """

    def __init__(self, token: str | SecretStr, registry: ContainerRegistry | None = None) -> None:
        super().__init__(registry)
        # Kept as SecretStr so an accidental vars(auth) or debugger print shows stars.
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def _apply(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        super()._apply(request)


class OIDCAuth(RegistryAuth):
    """Bearer auth from a saved OIDC login, refreshing the access token when it expires.

    Before each request, if the access token expires within ``skew`` seconds, one refresh
    grant (``grant_type=refresh_token``, client_secret_basic) is POSTed to the record's token
    endpoint. Concurrent requests share that single refresh: the first takes the lock, the
    others wait, re-check the expiry and go on with the new token. The refreshed record is
    written back to ``path`` atomically so the next process (and ``canfar``) sees it.

    Args:
        credential: the saved record (``Configuration.active_credential()``).
        idp: its name in the config file (where to save it).
        path: config file to update, or None to keep the new tokens in memory only.
        registry: optional private-registry credentials.
        skew: refresh this many seconds before the recorded expiry.
        transport / async_transport: for the refresh request (tests); default network.

    Raises (from the request):
        AuthenticationError: the token expired and could not be refreshed.

    Example:
        >>> config = Configuration.load()
        >>> auth = OIDCAuth(config.active_credential(), idp="srcnet", path=config.path)
    """

    def __init__(
        self,
        credential: OIDCCredential,
        *,
        idp: str,
        path: Path | None = None,
        registry: ContainerRegistry | None = None,
        skew: float = 30.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(registry)
        self._credential = credential
        self.idp = idp
        self.path = path
        self.skew = skew
        self.timeout = timeout
        self._transport = transport
        self._async_transport = async_transport
        # One thread lock guards refreshes from every thread and loop; asyncio locks (one per
        # event loop, as an asyncio.Lock is bound to the loop that first waits on it) keep
        # coroutines queued without blocking their loop.
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.refresh_count = 0

    @property
    def credential(self) -> OIDCCredential:
        """The current record (replaced as a whole on refresh)."""
        return self._credential

    def _needs_refresh(self) -> bool:
        return self._credential.expired(self.skew)

    def _apply(self, request: httpx.Request) -> None:
        access = self._credential.token.access
        if access is not None and access.get_secret_value():
            request.headers["Authorization"] = f"Bearer {access.get_secret_value()}"
        super()._apply(request)

    # -- flows ---------------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._needs_refresh():
            # Bounded wait: a refresh stuck elsewhere must not hang this thread for ever.
            if not self._thread_lock.acquire(timeout=self.timeout + min(5.0, self.timeout)):
                raise self._failure("another refresh did not finish")
            try:
                if self._needs_refresh():  # a concurrent caller may have refreshed already
                    self._refresh_sync()
            finally:
                self._thread_lock.release()
        self._apply(request)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._needs_refresh():
            async with self._loop_lock():
                if self._needs_refresh():
                    await self._acquire_thread_lock()
                    try:
                        if self._needs_refresh():
                            await self._refresh_async()
                    finally:
                        self._thread_lock.release()
        self._apply(request)
        yield request

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    async def _acquire_thread_lock(self) -> None:
        # Poll instead of blocking in a worker thread: a cancelled await must never leave a
        # thread that later takes the lock and holds it forever.
        deadline = time.monotonic() + self.timeout + min(5.0, self.timeout)
        while not self._thread_lock.acquire(blocking=False):
            if time.monotonic() > deadline:
                raise self._failure("another refresh did not finish")
            await asyncio.sleep(0.01)

    # -- refresh -------------------------------------------------------------------------

    def _refresh_request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        record = self._credential
        if not record.refreshable:
            raise AuthenticationError(
                f"The OIDC login {self.idp!r} has expired and could not be refreshed: the saved "
                "record has no usable refresh token or client. Run `canfar login` again."
            )
        assert record.endpoints.token and record.client.identity  # refreshable checked them
        assert record.client.secret is not None and record.token.refresh is not None
        # client_secret_basic (RFC 6749 §2.3.1): id and secret are form-encoded, then base64.
        basic = f"{quote(record.client.identity, safe='')}:{quote(record.client.secret.get_secret_value(), safe='')}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            "Accept": "application/json",
        }
        data = {
            "grant_type": "refresh_token",
            "refresh_token": record.token.refresh.get_secret_value(),
        }
        return record.endpoints.token, headers, data

    def _refresh_sync(self) -> None:
        url, headers, data = self._refresh_request()
        try:
            with httpx.Client(transport=self._transport, timeout=self.timeout) as client:
                response = client.post(url, headers=headers, data=data)
        except httpx.HTTPError as err:
            raise self._failure(type(err).__name__) from None
        self._accept(response)

    async def _refresh_async(self) -> None:
        url, headers, data = self._refresh_request()
        try:
            async with httpx.AsyncClient(
                transport=self._async_transport, timeout=self.timeout
            ) as client:
                response = await client.post(url, headers=headers, data=data)
        except httpx.HTTPError as err:
            raise self._failure(type(err).__name__) from None
        self._accept(response)

    def _failure(self, reason: str) -> AuthenticationError:
        # Never the token, the response body or the URL's query: only a short reason.
        return AuthenticationError(
            f"The OIDC access token for {self.idp!r} has expired and could not be refreshed "
            f"({reason}). Run `canfar login` again."
        )

    def _accept(self, response: httpx.Response) -> None:
        try:
            payload = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if response.status_code >= 400:
            code = payload.get("error") if isinstance(payload, dict) else None
            detail = (
                f": {code}" if isinstance(code, str) and code.replace("_", "").isalpha() else ""
            )
            raise self._failure(f"token endpoint answered {response.status_code}{detail}")
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("access_token"), str)
            or not payload["access_token"]
        ):
            raise self._failure("malformed token response")
        self._credential = _refreshed(self._credential, payload)
        self.refresh_count += 1
        log.debug("refreshed the OIDC access token for %r", self.idp)
        if self.path is not None:
            try:
                save_credential(self.path, self.idp, self._credential)
            except (OSError, ValueError) as err:
                # The request can still go ahead with the new token; only persistence failed.
                log.warning(
                    "could not save the refreshed OIDC token to %s (%s)",
                    self.path,
                    type(err).__name__,
                )


def _refreshed(record: OIDCCredential, payload: dict[str, Any]) -> OIDCCredential:
    """A new record from a token response; the old refresh token stays if none came back."""
    now = time.time()
    new_refresh = payload.get("refresh_token")
    rotated = isinstance(new_refresh, str) and bool(new_refresh)
    token = record.token.model_copy(
        update={
            "access": SecretStr(payload["access_token"]),
            "refresh": SecretStr(new_refresh) if rotated else record.token.refresh,
            "token_type": payload.get("token_type") or record.token.token_type,
            "scope": payload.get("scope") or record.token.scope,
        }
    )
    access_expiry = _number(payload.get("expires_at"))
    if access_expiry is None and (seconds := _number(payload.get("expires_in"))) is not None:
        access_expiry = now + seconds
    if rotated:
        seconds = _number(payload.get("refresh_expires_in"))
        # Keycloak sends 0 for offline tokens that never expire.
        refresh_expiry = now + seconds if seconds else None
    else:
        refresh_expiry = record.expiry.refresh
    expiry = record.expiry.model_copy(update={"access": access_expiry, "refresh": refresh_expiry})
    return record.model_copy(update={"token": token, "expiry": expiry})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def save_credential(path: Path, idp: str, credential: OIDCCredential) -> None:
    """Write one refreshed OIDC record into the config file, keeping everything else as is.

    Only ``authentication.<idp>.token`` and ``.expiry`` change, edited in the raw YAML document
    so fields this client does not model (e.g. canfar 1.5's v2 additions) survive.
    """
    import yaml  # imported here: most processes never write the config file

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = None
    except yaml.YAMLError as err:
        raise ValueError("configuration file is not valid YAML") from err
    if not isinstance(document, dict):
        raise ValueError("configuration file is not a mapping")
    records = document.setdefault("authentication", {})
    if not isinstance(records, dict):
        raise ValueError("authentication is not a mapping")
    record = records.setdefault(idp, {"mode": "oidc"})
    if not isinstance(record, dict):
        raise ValueError(f"authentication.{idp} is not a mapping")
    token = credential.token
    record["token"] = {
        **(record.get("token") if isinstance(record.get("token"), dict) else {}),
        "access": token.access.get_secret_value() if token.access else None,
        "refresh": token.refresh.get_secret_value() if token.refresh else None,
        "token_type": token.token_type,
        "scope": token.scope,
    }
    record["token"] = {key: value for key, value in record["token"].items() if value is not None}
    record["expiry"] = {"access": credential.expiry.access, "refresh": credential.expiry.refresh}
    write_yaml_atomic(path, document)
