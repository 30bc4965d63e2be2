"""httpx ``Auth`` flows: where credentials meet requests.

Why ``httpx.Auth`` and not default client headers: default headers live in the client's
``repr`` and in every copy of its header dict; an ``Auth`` adds ``Authorization`` and
``X-Skaha-Registry-Auth`` to each outgoing request only, so secrets never sit in long-lived
state that widgets, logs or tracebacks may print.

- ``RegistryAuth``: only the registry header (X.509 and anonymous modes; the certificate
  itself travels in the TLS context).
- ``BearerAuth``: a fixed token (``token=`` / ``CANFAR_TOKEN``) plus the registry header.
- ``OIDCAuth``: a saved ``canfar login`` OIDC record; refreshes an expiring access token
  once (single-flight) and saves the new tokens back to the config file. Before refreshing,
  and once more after the token endpoint answers ``invalid_grant``, it re-reads the saved
  login (another kernel may have rotated the refresh token meanwhile); a 401 to a GET or
  DELETE triggers one refresh and one retry of that request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from canfar_widgets.errors import AuthenticationError

if TYPE_CHECKING:  # pragma: no cover - loaded where used: token auth needs no model
    from pydantic import SecretStr

    from canfar_widgets.models import ContainerRegistry, OIDCCredential

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


def revealed(value: Any) -> Any:
    """The text behind a pydantic ``SecretStr`` (or this module's holder); anything else as given.

    Duck-typed, so the check itself imports no pydantic: the one place a secret is unwrapped.

    Example:
        >>> revealed(_Secret("s3cret")), revealed("plain")
        ('s3cret', 'plain')
    """
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


class _Secret:
    """A credential held so that printing it, or anything that holds it, shows stars.

    What pydantic's ``SecretStr`` does for a token, without importing pydantic: a client
    given its URL and token needs no model before its first answer, and pydantic is ~30 ms
    of that first call (docs/performance.md, "First call").

    Example:
        >>> token = _Secret("s3cret")
        >>> token, str(token), token.get_secret_value()
        (Secret('**********'), '**********', 's3cret')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""


class BearerAuth(RegistryAuth):
    """``Authorization: Bearer <token>`` on every request, plus the registry header.

    Example:
        >>> client = httpx.Client(auth=BearerAuth("my-token"))
    """

    def __init__(self, token: str | SecretStr, registry: ContainerRegistry | None = None) -> None:
        super().__init__(registry)
        # Kept in a holder so an accidental vars(auth) or debugger print shows stars.
        self._token = _Secret(str(revealed(token)))

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
            self._locked_sync(lambda: self._needs_refresh())
        used = self._access()
        self._apply(request)
        response = yield request
        if self._retry_after_401(request, response):
            self._locked_sync(lambda: self._access() == used)
            self._apply(request)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._needs_refresh():
            await self._locked_async(lambda: self._needs_refresh())
        used = self._access()
        self._apply(request)
        response = yield request
        if self._retry_after_401(request, response):
            await self._locked_async(lambda: self._access() == used)
            self._apply(request)
            yield request

    def _access(self) -> str | None:
        access = self._credential.token.access
        return access.get_secret_value() if access is not None else None

    def _retry_after_401(self, request: httpx.Request, response: httpx.Response) -> bool:
        # One retry, of requests that may be sent twice: the token may have been revoked or
        # rotated elsewhere although its recorded expiry is still ahead.
        if response.status_code != 401 or request.method not in ("GET", "DELETE"):
            return False
        if request.extensions.get("canfar_widgets.retried_401"):
            return False
        request.extensions["canfar_widgets.retried_401"] = True
        log.info(
            "401 from the platform; refreshing the OIDC token for %r and retrying once", self.idp
        )
        return True

    def _locked_sync(self, still_needed: Callable[[], bool]) -> None:
        # Bounded wait: a refresh stuck elsewhere must not hang this thread for ever.
        if not self._thread_lock.acquire(timeout=self.timeout + min(5.0, self.timeout)):
            raise self._failure("another refresh did not finish")
        try:
            if still_needed():  # a concurrent caller may have refreshed already
                if self._reread() and not self._needs_refresh():
                    return  # another process refreshed: its token is good
                self._refresh_sync()
        finally:
            self._thread_lock.release()

    async def _locked_async(self, still_needed: Callable[[], bool]) -> None:
        async with self._loop_lock():
            if not still_needed():
                return
            await self._acquire_thread_lock()
            try:
                if still_needed():
                    if self._reread() and not self._needs_refresh():
                        return
                    await self._refresh_async()
            finally:
                self._thread_lock.release()

    def _reread(self) -> bool:
        """Adopt the saved login if another process changed its tokens; True if it did.

        Why: two kernels share one refresh token. When one refreshes (and the IdP rotates
        the refresh token), the other's copy is spent; the file has the new one.
        """
        if self.path is None:
            return False
        try:
            saved = _saved_record(self.path, self.idp)
        except Exception as err:  # an unreadable file: go on with what we have
            log.debug("could not re-read the saved login %r (%s)", self.idp, type(err).__name__)
            return False
        if saved is None or saved.token == self._credential.token:
            return False
        if saved.token.access is None and saved.token.refresh is None:
            return False
        self._credential = saved
        log.debug("adopted the OIDC tokens another process saved for %r", self.idp)
        return True

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
        for attempt in (1, 2):
            url, headers, data = self._refresh_request()
            try:
                with httpx.Client(transport=self._transport, timeout=self.timeout) as client:
                    response = client.post(url, headers=headers, data=data)
            except httpx.HTTPError as err:
                raise self._failure(type(err).__name__) from None
            if attempt == 1 and _invalid_grant(response) and self._reread():
                if not self._needs_refresh():
                    return
                continue  # the refresh token was rotated elsewhere: try once with the new one
            self._accept(response)
            return

    async def _refresh_async(self) -> None:
        for attempt in (1, 2):
            url, headers, data = self._refresh_request()
            try:
                async with httpx.AsyncClient(
                    transport=self._async_transport, timeout=self.timeout
                ) as client:
                    response = await client.post(url, headers=headers, data=data)
            except httpx.HTTPError as err:
                raise self._failure(type(err).__name__) from None
            if attempt == 1 and _invalid_grant(response) and self._reread():
                if not self._needs_refresh():
                    return
                continue
            self._accept(response)
            return

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


def _invalid_grant(response: httpx.Response) -> bool:
    """The token endpoint refused the refresh token itself (spent, revoked or rotated)."""
    if response.status_code != 400:
        return False
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("error") == "invalid_grant"


def _saved_record(path: Path, idp: str) -> OIDCCredential | None:
    """The OIDC record ``idp`` as saved in ``path`` now (None if absent or not OIDC)."""
    from canfar_widgets.models import Configuration, OIDCCredential

    record = Configuration.load(path).authentication.get(idp)
    return record if isinstance(record, OIDCCredential) else None


def _refreshed(record: OIDCCredential, payload: dict[str, Any]) -> OIDCCredential:
    """A new record from a token response; the old refresh token stays if none came back."""
    from pydantic import SecretStr  # the record is a pydantic model: pydantic is loaded

    now = time.time()
    new_refresh = payload.get("refresh_token")
    rotated = isinstance(new_refresh, str) and bool(new_refresh)
    token = record.token.model_copy(
        update={
            "access": SecretStr(payload["access_token"]),
            "refresh": SecretStr(str(new_refresh)) if rotated else record.token.refresh,
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
    saved_token = record.get("token")
    record["token"] = {
        **(saved_token if isinstance(saved_token, dict) else {}),
        "access": token.access.get_secret_value() if token.access else None,
        "refresh": token.refresh.get_secret_value() if token.refresh else None,
        "token_type": token.token_type,
        "scope": token.scope,
    }
    record["token"] = {key: value for key, value in record["token"].items() if value is not None}
    record["expiry"] = {"access": credential.expiry.access, "refresh": credential.expiry.refresh}
    from canfar_widgets.models import write_yaml_atomic

    write_yaml_atomic(path, document)
