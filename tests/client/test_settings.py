"""resolve_settings: precedence, credentials, validation, and secrets kept out of reprs."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from canfar_widgets.auth import BearerAuth, OIDCAuth, RegistryAuth
from canfar_widgets.errors import ConfigurationError
from canfar_widgets.models import Configuration, ContainerRegistry
from canfar_widgets.settings import ClientSettings, resolve_settings

TOKEN = "tok-3f9a-very-secret"


@pytest.fixture(autouse=True)
def home(clean_home: Path) -> Path:
    """A fresh HOME and no CANFAR_/SKAHA_ variables for every test."""
    return clean_home


def make_certificate(path: Path) -> Path:
    """A self-signed PEM holding certificate + key, like cadcproxy.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tester")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def write_config(home: Path, document: dict) -> Path:
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def sent_headers(settings: ClientSettings) -> httpx.Headers:
    """The headers one request really carries through settings.headers + settings.auth."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with httpx.Client(
        base_url=settings.base_url,
        headers=settings.headers,
        auth=settings.auth,
        transport=httpx.MockTransport(handler),
    ) as client:
        client.get("session")
    assert str(seen[0].url).startswith(settings.base_url + "session")
    return seen[0].headers


# -- url + token (the path the sessions module relies on) ------------------------------


def test_url_and_token() -> None:
    settings = resolve_settings(url="https://example.org/skaha/v1", token=TOKEN)
    assert settings.base_url == "https://example.org/skaha/v1/"
    assert settings.mode == "token"
    assert settings.timeout == 30
    assert settings.concurrency == 32
    assert settings.errors == "ignore"
    assert settings.verify is True
    assert isinstance(settings.auth, BearerAuth)
    assert settings.headers == {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": "canfar-widgets/0.1.0",
        "X-Skaha-Authentication-Type": "RUNTIME-TOKEN",
    }
    headers = sent_headers(settings)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "X-Skaha-Registry-Auth" not in headers


def test_secrets_never_in_reprs() -> None:
    registry = ContainerRegistry(username="bob", secret="regsecret99")
    settings = resolve_settings(url="https://example.org/skaha/v1", token=TOKEN, registry=registry)
    for text in (repr(settings), str(settings), repr(settings.auth), str(settings.headers)):
        assert TOKEN not in text
        assert "regsecret99" not in text
    assert "Authorization" not in settings.headers
    assert "bob" in repr(settings)


def test_trailing_slash_kept_once() -> None:
    assert (
        resolve_settings(url="https://e.org/skaha/v1/", token="t").base_url
        == "https://e.org/skaha/v1/"
    )


@pytest.mark.parametrize("url", ["ftp://e.org/x", "not a url", "https://e.org/v1?x=1", "/relative"])
def test_bad_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="url"):
        resolve_settings(url=url, token="t")


def test_token_without_url_uses_configured_server() -> None:
    settings = resolve_settings(token="t")
    assert settings.base_url == "https://ws-uv.canfar.net/skaha/v1/"
    assert settings.mode == "token"


# -- precedence -------------------------------------------------------------------------


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANFAR_URL", "https://env.example/skaha/v1")
    monkeypatch.setenv("CANFAR_TOKEN", "envtoken")
    monkeypatch.setenv("CANFAR_TIMEOUT", "12.5")
    monkeypatch.setenv("CANFAR_CONCURRENCY", "7")
    settings = resolve_settings()
    assert settings.base_url == "https://env.example/skaha/v1/"
    assert settings.mode == "token"
    assert (settings.timeout, settings.concurrency) == (12.5, 7)
    assert sent_headers(settings)["Authorization"] == "Bearer envtoken"


def test_keywords_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANFAR_URL", "https://env.example/skaha/v1")
    monkeypatch.setenv("CANFAR_TOKEN", "envtoken")
    monkeypatch.setenv("CANFAR_TIMEOUT", "12")
    monkeypatch.setenv("CANFAR_CONCURRENCY", "7")
    settings = resolve_settings(
        url="https://kw.example/skaha/v1", token="kwtoken", timeout=5, concurrency=3
    )
    assert settings.base_url == "https://kw.example/skaha/v1/"
    assert (settings.timeout, settings.concurrency) == (5, 3)
    assert sent_headers(settings)["Authorization"] == "Bearer kwtoken"


def test_environment_beats_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, _config_with_server("https://file.example/skaha", "v1"))
    assert resolve_settings(token="t").base_url == "https://file.example/skaha/v1/"
    monkeypatch.setenv("CANFAR_URL", "https://env.example/skaha/v1")
    assert resolve_settings(token="t").base_url == "https://env.example/skaha/v1/"


def test_default_when_nothing_configured() -> None:
    settings = resolve_settings()
    assert settings.base_url == "https://ws-uv.canfar.net/skaha/v1/"
    # No ~/.ssl/cadcproxy.pem: anonymous, the server will answer with its own error.
    assert settings.mode == "none"
    assert settings.auth is None
    assert "X-Skaha-Authentication-Type" not in settings.headers
    assert "Authorization" not in sent_headers(settings)


def test_default_certificate_used_when_present(home: Path) -> None:
    make_certificate(home / ".ssl" / "cadcproxy.pem")
    settings = resolve_settings()
    assert settings.mode == "x509"
    assert settings.headers["X-Skaha-Authentication-Type"] == "X509"
    assert isinstance(settings.verify, ssl.SSLContext)
    assert settings.verify.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert settings.certificate == home / ".ssl" / "cadcproxy.pem"


def test_server_and_version_keywords() -> None:
    assert resolve_settings(server="https://old.example/skaha", token="t").base_url == (
        "https://old.example/skaha/v1/"
    )
    assert resolve_settings(
        server="https://old.example/skaha/", version="v0", token="t"
    ).base_url == ("https://old.example/skaha/v0/")
    # version alone changes the configured server's version
    assert (
        resolve_settings(version="v2", token="t").base_url == "https://ws-uv.canfar.net/skaha/v2/"
    )
    # url beats server
    assert resolve_settings(
        url="https://u.example/v1", server="https://s.example", token="t"
    ).base_url == ("https://u.example/v1/")


# -- certificates -----------------------------------------------------------------------


def test_explicit_certificate(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path / "proxy.pem")
    settings = resolve_settings(url="https://e.org/skaha/v1", certificate=cert)
    assert settings.mode == "x509"
    assert settings.headers["X-Skaha-Authentication-Type"] == "RUNTIME-X509"
    assert isinstance(settings.verify, ssl.SSLContext)
    assert settings.verify.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert "Authorization" not in sent_headers(settings)


def test_explicit_missing_certificate_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.pem does not exist"):
        resolve_settings(certificate=tmp_path / "missing.pem")


def test_environment_missing_certificate_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANFAR_CERTIFICATE", str(tmp_path / "gone.pem"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_settings()


def test_unreadable_certificate_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(
        ConfigurationError, match="PEM file holding the certificate and its private key"
    ):
        resolve_settings(certificate=bad)


def test_token_beats_certificate(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path / "proxy.pem")
    with pytest.warns(UserWarning, match="token is used"):
        settings = resolve_settings(url="https://e.org/v1", token="t", certificate=cert)
    assert settings.mode == "token"
    assert settings.verify is True


def test_token_beats_missing_certificate(tmp_path: Path) -> None:
    # The certificate is dropped before it is looked at.
    with pytest.warns(UserWarning):
        settings = resolve_settings(
            url="https://e.org/v1", token="t", certificate=tmp_path / "no.pem"
        )
    assert settings.mode == "token"


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 300.5, 1000, float("nan"), "abc", True, None])
def test_timeout_validation(value: object) -> None:
    if value is None:
        assert resolve_settings(token="t").timeout == 30
        return
    with pytest.raises(ConfigurationError, match="timeout must be"):
        resolve_settings(token="t", timeout=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.001, 1, 300, "45"])
def test_timeout_accepts(value: object) -> None:
    assert resolve_settings(token="t", timeout=value).timeout == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 129, -3, 1.5, "x", True])
def test_concurrency_validation(value: object) -> None:
    with pytest.raises(ConfigurationError, match="concurrency must be"):
        resolve_settings(token="t", concurrency=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1, 128, "64"])
def test_concurrency_accepts(value: object) -> None:
    assert resolve_settings(token="t", concurrency=value).concurrency == int(value)  # type: ignore[arg-type]


def test_environment_validation_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANFAR_TIMEOUT", "999")
    with pytest.raises(ConfigurationError, match="CANFAR_TIMEOUT"):
        resolve_settings(token="t")
    monkeypatch.delenv("CANFAR_TIMEOUT")
    monkeypatch.setenv("CANFAR_CONCURRENCY", "lots")
    with pytest.raises(ConfigurationError, match="CANFAR_CONCURRENCY must be a whole number"):
        resolve_settings(token="t")


def test_errors_policy() -> None:
    assert resolve_settings(token="t", errors="raise").errors == "raise"
    with pytest.raises(ConfigurationError, match="errors must be 'ignore' or 'raise'"):
        resolve_settings(token="t", errors="strict")


def test_unknown_keywords_warn_naming_them_at_the_callers_line() -> None:
    with pytest.warns(UserWarning, match="unknown keyword argument.*bogus, colour") as caught:
        resolve_settings(token="t", colour="red", bogus=1)
    assert caught[0].filename == __file__


def test_loglevel() -> None:
    logger = logging.getLogger("canfar_widgets")
    before = logger.level
    try:
        resolve_settings(token="t", loglevel="debug")
        assert logger.level == logging.DEBUG
        resolve_settings(token="t", loglevel=logging.WARNING)
        assert logger.level == logging.WARNING
        with pytest.raises(ConfigurationError, match="loglevel"):
            resolve_settings(token="t", loglevel="chatty")
    finally:
        logger.setLevel(before)


def test_wrong_types_for_config_and_registry() -> None:
    with pytest.raises(ConfigurationError, match="config must be a Configuration"):
        resolve_settings(token="t", config={"version": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="registry must be a ContainerRegistry"):
        resolve_settings(token="t", registry={"username": "x"})  # type: ignore[arg-type]


# -- registry ---------------------------------------------------------------------------

REGISTRY_VALUE = "Ym9iOnMzY3JldA=="  # base64("bob:s3cret")


def test_registry_keyword() -> None:
    settings = resolve_settings(
        url="https://e.org/v1",
        token="t",
        registry=ContainerRegistry(username="bob", secret="s3cret"),
    )
    headers = sent_headers(settings)
    assert headers["X-Skaha-Registry-Auth"] == REGISTRY_VALUE
    assert headers["Authorization"] == "Bearer t"
    assert "X-Skaha-Registry-Auth" not in settings.headers


def test_registry_via_configuration_object() -> None:
    config = Configuration(registry=ContainerRegistry(username="bob", secret="s3cret"))
    settings = resolve_settings(config=config)
    assert settings.mode == "none"
    assert isinstance(settings.auth, RegistryAuth)
    assert sent_headers(settings)["X-Skaha-Registry-Auth"] == REGISTRY_VALUE


def test_registry_via_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANFAR_REGISTRY__USERNAME", "bob")
    monkeypatch.setenv("CANFAR_REGISTRY__SECRET", "s3cret")
    assert sent_headers(resolve_settings(url="https://e.org/v1", token="t"))[
        "X-Skaha-Registry-Auth"
    ] == (REGISTRY_VALUE)


def test_registry_saved_in_the_config_file_applies_with_url_and_token(home: Path) -> None:
    """With a URL and a token given, the config file is still read for its registry login."""
    document = _config_with_server("https://file.example/skaha", "v1")
    document["registry"] = {"username": "bob", "secret": "s3cret"}
    write_config(home, document)
    settings = resolve_settings(url="https://e.org/v1", token="t")
    assert settings.base_url == "https://e.org/v1/"  # the keyword still wins over the file
    assert sent_headers(settings)["X-Skaha-Registry-Auth"] == REGISTRY_VALUE


def test_legacy_registry_variables_apply_with_url_and_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("skaha_registry_username", "bob")  # read case-insensitively
    monkeypatch.setenv("SKAHA_REGISTRY_SECRET", "s3cret")
    settings = resolve_settings(url="https://e.org/v1", token="t")
    assert sent_headers(settings)["X-Skaha-Registry-Auth"] == REGISTRY_VALUE


def fresh_interpreter(code: str, home: Path) -> str:
    """What ``code`` prints in a new Python, with no CANFAR/SKAHA variables and ``home``."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR", "SKAHA"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(home)},
        check=True,
    )
    return done.stdout


def test_a_client_given_url_and_token_loads_no_configuration_model(home: Path) -> None:
    """No config file and no registry variable: Session() skips the configuration models
    (the first-call cost, docs/performance.md); a fresh interpreter shows what was imported."""
    code = (
        "import sys\n"
        "from canfar_widgets.sessions import Session\n"
        "session = Session(url='https://e.org/skaha/v1', token='t')\n"
        "print(sorted(m for m in sys.modules if m.startswith('canfar_widgets.models')))\n"
    )
    assert fresh_interpreter(code, home).strip() == "[]"


def test_a_first_call_given_url_and_token_imports_no_pydantic(home: Path) -> None:
    """Import, Session(url, token) and the first fetch() need no model: pydantic (~30 ms of
    the first call, docs/performance.md) stays unloaded; a SecretStr token still works."""
    code = (
        "import sys, httpx\n"
        "from canfar_widgets.sessions import Session\n"
        "def answer(request):\n"
        "    assert request.headers['Authorization'] == 'Bearer t'\n"
        "    return httpx.Response(200, json=[{'id': 'a1', 'status': 'Running'}])\n"
        "session = Session(url='https://e.org/skaha/v1', token='t',\n"
        "                  transport=httpx.MockTransport(answer))\n"
        "print(session.fetch())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))\n"
    )
    assert fresh_interpreter(code, home).splitlines() == [
        "[{'id': 'a1', 'status': 'Running'}]",
        "[]",
    ]
    from pydantic import SecretStr

    settings = resolve_settings(url="https://example.org/skaha/v1", token=SecretStr(TOKEN))
    assert sent_headers(settings)["Authorization"] == f"Bearer {TOKEN}"


def test_registry_with_certificate(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path / "p.pem")
    settings = resolve_settings(
        url="https://e.org/v1",
        certificate=cert,
        registry=ContainerRegistry(username="bob", secret="s3cret"),
    )
    assert isinstance(settings.auth, RegistryAuth)
    headers = sent_headers(settings)
    assert headers["X-Skaha-Registry-Auth"] == REGISTRY_VALUE
    assert "Authorization" not in headers


# -- the config file --------------------------------------------------------------------


def _config_with_server(url: str, version: str) -> dict:
    return {
        "version": 1,
        "active": {"authentication": "cadc", "server": "mine"},
        "authentication": {"cadc": {"mode": "x509", "path": "/nonexistent/cadcproxy.pem"}},
        "servers": {"mine": {"url": url, "version": version, "idp": "cadc"}},
    }


def _oidc_document(*, expiry: float, refresh: str | None = "refresh-tok") -> dict:
    token: dict = {"access": "access-tok"}
    if refresh:
        token["refresh"] = refresh
    return {
        "version": 1,
        "active": {"authentication": "srcnet", "server": "src"},
        "authentication": {
            "srcnet": {
                "mode": "oidc",
                "endpoints": {
                    "discovery": "https://iam.example/.well-known",
                    "token": "https://iam.example/token",
                },
                "client": {"identity": "cid", "secret": "csecret"},
                "token": token,
                "expiry": {"access": expiry, "refresh": None},
            }
        },
        "servers": {"src": {"url": "https://src.example/skaha", "version": "v1", "idp": "srcnet"}},
    }


def test_file_server_and_missing_saved_certificate(home: Path) -> None:
    write_config(home, _config_with_server("https://file.example/skaha/", "v0"))
    settings = resolve_settings()
    assert settings.base_url == "https://file.example/skaha/v0/"
    assert settings.mode == "none"


def test_file_x509_login(home: Path, tmp_path: Path) -> None:
    cert = make_certificate(tmp_path / "saved.pem")
    document = _config_with_server("https://file.example/skaha", "v1")
    document["authentication"]["cadc"]["path"] = str(cert)
    write_config(home, document)
    settings = resolve_settings()
    assert settings.mode == "x509"
    assert settings.headers["X-Skaha-Authentication-Type"] == "X509"
    assert settings.idp == "cadc"


def test_file_oidc_login(home: Path) -> None:
    import time

    path = write_config(home, _oidc_document(expiry=time.time() + 3600))
    settings = resolve_settings()
    assert settings.mode == "oidc"
    assert settings.base_url == "https://src.example/skaha/v1/"
    assert settings.headers["X-Skaha-Authentication-Type"] == "OIDC"
    assert isinstance(settings.auth, OIDCAuth)
    assert settings.auth.path == path
    assert sent_headers(settings)["Authorization"] == "Bearer access-tok"
    assert "access-tok" not in repr(settings) and "access-tok" not in repr(settings.auth)


def test_file_oidc_login_expired_without_refresh(home: Path) -> None:
    write_config(home, _oidc_document(expiry=1.0, refresh=None))
    with pytest.raises(ConfigurationError, match="expired and cannot be refreshed") as caught:
        resolve_settings()
    assert "access-tok" not in str(caught.value)


def test_authentication_idp_selects_a_saved_login(home: Path, tmp_path: Path) -> None:
    import time

    document = _oidc_document(expiry=time.time() + 3600)
    cert = make_certificate(tmp_path / "c.pem")
    document["authentication"]["cadc"] = {"mode": "x509", "path": str(cert)}
    write_config(home, document)
    assert resolve_settings(authentication_idp="cadc").mode == "x509"
    with pytest.raises(ConfigurationError, match="no saved login named 'nope'"):
        resolve_settings(authentication_idp="nope")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 3\n", "unsupported configuration version 3"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: [1\n", "invalid YAML"),
        ("active: {}\n", "version is missing"),
        ("", "expected a mapping"),
    ],
)
def test_bad_config_file(home: Path, text: str, problem: str) -> None:
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=problem) as caught:
        resolve_settings()
    assert f"rm {path}" in str(caught.value)
    assert "canfar login" in str(caught.value)


def test_bad_config_file_hides_secrets(home: Path) -> None:
    document = _oidc_document(expiry=0)
    document["authentication"]["srcnet"]["expiry"] = {"access": "TOPSECRETVALUE"}
    write_config(home, document)
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings()
    assert "TOPSECRETVALUE" not in str(caught.value)
    assert "authentication.srcnet" in str(caught.value)


def test_config_file_not_needed_when_keywords_suffice(home: Path) -> None:
    (home / ".canfar").mkdir()
    (home / ".canfar" / "config.yaml").write_text("version: 99\n")
    settings = resolve_settings(
        url="https://e.org/v1", token="t", registry=ContainerRegistry(username="a", secret="b")
    )
    assert settings.mode == "token"
    with pytest.raises(ConfigurationError):
        resolve_settings(url="https://e.org/v1", token="t")  # registry may come from the file


def test_config_keyword_skips_the_file(home: Path) -> None:
    (home / ".canfar").mkdir()
    (home / ".canfar" / "config.yaml").write_text("version: 99\n")
    assert resolve_settings(config=Configuration()).base_url == "https://ws-uv.canfar.net/skaha/v1/"


def test_home_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-home"
    write_config(other, _config_with_server("https://late.example/skaha", "v1"))
    monkeypatch.setenv("HOME", str(other))
    assert resolve_settings().base_url == "https://late.example/skaha/v1/"


def test_config_keyword_accepts_a_path(tmp_path: Path) -> None:
    import time

    path = tmp_path / "elsewhere.yaml"
    path.write_text(yaml.safe_dump(_oidc_document(expiry=time.time() + 3600)))
    for given in (path, str(path)):
        settings = resolve_settings(config=given)
        assert settings.mode == "oidc"
        assert isinstance(settings.auth, OIDCAuth) and settings.auth.path == path
    with pytest.raises(ConfigurationError, match="cannot be used"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("version: 5\n")
        resolve_settings(config=bad)


def test_certificate_without_registry_needs_no_auth(tmp_path: Path) -> None:
    settings = resolve_settings(
        url="https://e.org/v1", certificate=make_certificate(tmp_path / "p.pem")
    )
    assert settings.auth is None


def test_a_missing_saved_certificate_is_a_login_problem_not_anonymous_access() -> None:
    # (issue 11: requests raise AuthenticationError with this text before anything is sent)
    settings = resolve_settings()
    assert settings.login_problem is not None
    assert "canfar auth login" in settings.login_problem
    assert ".ssl/cadcproxy.pem" in settings.login_problem
    assert resolve_settings(url="https://e.org/v1", token="t").login_problem is None


@pytest.mark.parametrize(
    ("env", "keyword", "expected"),
    [
        ("raise", None, "raise"),
        ("RAISE", None, "raise"),
        ("raise", "ignore", "ignore"),
        (None, None, "ignore"),
    ],
)
def test_canfar_errors_environment(monkeypatch: pytest.MonkeyPatch, env, keyword, expected) -> None:
    if env is not None:
        monkeypatch.setenv("CANFAR_ERRORS", env)
    assert resolve_settings(url="https://e.org/v1", token="t", errors=keyword).errors == expected
