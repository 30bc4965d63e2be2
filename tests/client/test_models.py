"""models: strict requests (checked against the official client's wire output), tolerant answers."""

from __future__ import annotations

import logging
import math
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from canfar_widgets.errors import ConfigurationError
from canfar_widgets.models import (
    Configuration,
    ContainerRegistry,
    Context,
    CreateRequest,
    Event,
    Image,
    OIDCCredential,
    SessionRecord,
    Stats,
    X509Credential,
    normalise_image,
    parse_events,
    parse_gigabytes,
    parse_quantity,
    parse_time,
    server_kind,
    server_status,
)


@pytest.fixture(autouse=True)
def home(clean_home: Path) -> Path:
    return clean_home


# ======================================================================================
# literals
# ======================================================================================


def test_server_status() -> None:
    assert server_status("Succeeded") == "Completed"
    assert server_status("Error") == "Failed"
    assert server_status("running") == "Running"
    assert server_status("Terminating") == "Terminating"
    with pytest.raises(ValueError, match="'Done' is not one of Pending, Running, Terminating"):
        server_status("Done")
    with pytest.raises(ValueError):
        server_status(None)  # type: ignore[arg-type]


def test_server_kind() -> None:
    assert server_kind("Notebook") == "notebook"
    assert server_kind("desktop-app") == "desktop-app"
    with pytest.raises(ValueError, match="'vm' is not one of desktop, notebook"):
        server_kind("vm")


# ======================================================================================
# ContainerRegistry
# ======================================================================================


def test_registry_header_and_secrecy() -> None:
    registry = ContainerRegistry(username="bob", secret="s3cret")
    assert registry.header_value() == "Ym9iOnMzY3JldA=="
    for text in (
        repr(registry),
        str(registry),
        str(registry.model_dump()),
        registry.model_dump_json(),
    ):
        assert "s3cret" not in text
    assert ContainerRegistry(url="https://images.example").header_value() is None


def test_registry_pairs_required() -> None:
    with pytest.raises(ValidationError, match=r"container registry secret is required\."):
        ContainerRegistry(username="bob")
    with pytest.raises(ValidationError, match=r"container registry username is required\."):
        ContainerRegistry(secret="s")


def test_registry_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ContainerRegistry().header_value() is None
    monkeypatch.setenv("SKAHA_REGISTRY_USERNAME", "old")
    monkeypatch.setenv("SKAHA_REGISTRY_SECRET", "oldsecret")
    assert ContainerRegistry().username == "old"
    monkeypatch.setenv("CANFAR_REGISTRY__USERNAME", "bob")
    monkeypatch.setenv("CANFAR_REGISTRY__SECRET", "s3cret")
    monkeypatch.setenv("CANFAR_REGISTRY__URL", "https://images.example")
    registry = ContainerRegistry()
    assert (registry.username, registry.header_value()) == ("bob", "Ym9iOnMzY3JldA==")
    assert str(registry.url) == "https://images.example/"
    # explicit arguments never mix with the environment
    assert ContainerRegistry(username="x", secret="y").username == "x"


def test_registry_environment_half_set_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANFAR_REGISTRY__USERNAME", "bob")
    with pytest.raises(ValidationError, match="secret is required"):
        ContainerRegistry()


# ======================================================================================
# Configuration
# ======================================================================================


def test_configuration_defaults(home: Path) -> None:
    config = Configuration()
    assert config.version == 1
    assert config.active.authentication == "cadc" and config.active.server == "canfar"
    credential = config.active_credential()
    assert isinstance(credential, X509Credential)
    assert credential.path == home / ".ssl" / "cadcproxy.pem"
    server = config.active_server()
    assert (server.url, server.version, server.uri) == (
        "https://ws-uv.canfar.net/skaha",
        "v1",
        "ivo://cadc.nrc.ca/skaha",
    )
    assert server.base_url == "https://ws-uv.canfar.net/skaha/v1/"
    assert config.registry is None
    assert Configuration.load().path == home / ".canfar" / "config.yaml"  # missing file: defaults


def test_configuration_registry_from_environment(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("CANFAR_REGISTRY__USERNAME", "bob")
    monkeypatch.setenv("CANFAR_REGISTRY__SECRET", "s3cret")
    assert Configuration().registry is not None
    assert Configuration().registry.header_value() == "Ym9iOnMzY3JldA=="  # type: ignore[union-attr]
    # the environment beats the file ...
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"version": 1, "registry": {"username": "file", "secret": "f"}}))
    assert Configuration.load().registry.username == "bob"  # type: ignore[union-attr]
    # ... and an explicit keyword beats the environment
    explicit = Configuration(registry=ContainerRegistry(username="kw", secret="k"))
    assert explicit.registry.username == "kw"  # type: ignore[union-attr]


OIDC_DOCUMENT: dict[str, Any] = {
    "version": 1,
    "active": {"authentication": "srcnet", "server": "src", "servers": {"srcnet": "src"}},
    "authentication": {
        "srcnet": {
            "mode": "oidc",
            "endpoints": {
                "discovery": "https://iam.example/.wk",
                "token": "https://iam.example/token",
            },
            "client": {"identity": "cid", "secret": "csecret"},
            "token": {"access": "acc", "refresh": "ref", "token_type": "Bearer"},
            "expiry": {"access": 2000000000.0, "refresh": None},
        },
        "cadc": {"mode": "x509", "path": "/x/cadcproxy.pem", "expiry": 0.0},
    },
    "servers": {
        "src": {
            "url": "https://src.example/skaha",
            "version": "v1",
            "idp": "srcnet",
            "auths": ["oidc"],
        },
    },
    "registry": {"username": "bob", "secret": "s3cret"},
    "console": {"width": 100, "banner": False},
}


def test_configuration_load_and_save_round_trip(home: Path, tmp_path: Path) -> None:
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(OIDC_DOCUMENT))
    config = Configuration.load()
    credential = config.active_credential()
    assert isinstance(credential, OIDCCredential)
    assert credential.idp == "srcnet" and credential.refreshable and not credential.expired()
    assert config.servers["src"].name == "src"
    assert config.active_server().base_url == "https://src.example/skaha/v1/"
    assert "csecret" not in repr(config) and "acc'" not in repr(config)

    target = tmp_path / "out" / "config.yaml"
    config.save(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    saved = yaml.safe_load(target.read_text())
    assert saved["authentication"]["srcnet"]["token"]["access"] == "acc"  # secrets written in full
    assert saved["authentication"]["srcnet"]["client"]["secret"] == "csecret"
    assert saved["registry"]["secret"] == "s3cret"
    again = Configuration.load(target)
    assert again.model_dump() == config.model_dump()
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]  # no temp files left


def test_configuration_reads_canfar_15_version_2(home: Path) -> None:
    # canfar 1.5 writes version 2: no per-server cores/ram, plus fields we keep verbatim.
    document = {
        "version": 2,
        "active": {"authentication": "cadc", "server": "canfar", "servers": {}},
        "authentication": {"cadc": {"mode": "x509", "path": "/p.pem", "expiry": 0.0}},
        "servers": {
            "canfar": {
                "idp": "cadc",
                "uri": "ivo://cadc.nrc.ca/skaha",
                "url": "https://ws-uv.canfar.net/skaha",
                "version": "v1",
                "auths": ["x509"],
                "storage": {
                    "arc": {"uri": "ivo://cadc.nrc.ca/arc", "url": "https://ws-uv.canfar.net/arc"}
                },
            }
        },
    }
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document))
    config = Configuration.load()
    assert config.version == 2
    assert config.active_server().base_url == "https://ws-uv.canfar.net/skaha/v1/"
    config.save()
    assert (
        yaml.safe_load(path.read_text())["servers"]["canfar"]["storage"]["arc"]["uri"]
        == "ivo://cadc.nrc.ca/arc"
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"version": 7}, "unsupported configuration version 7"),
        (
            {"version": 1, "active": {"authentication": "ghost"}},
            "active authentication 'ghost' not found",
        ),
        (
            {"version": 1, "active": {"authentication": "cadc", "server": "ghost"}},
            "active server 'ghost'",
        ),
        (
            {"version": 1, "servers": {"9bad": {"url": "https://x"}}, "active": {"server": None}},
            "invalid name '9bad'",
        ),
        ({"version": 1, "authentication": {"cadc": {"mode": "kerberos"}}}, "authentication.cadc"),
    ],
)
def test_configuration_invalid_documents(home: Path, document: dict, problem: str) -> None:
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigurationError, match=problem) as caught:
        Configuration.load()
    assert f"rm {path}" in str(caught.value)


def test_configuration_unreadable_file(home: Path) -> None:
    path = home / ".canfar" / "config.yaml"
    path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Configuration.load()


def test_no_active_server() -> None:
    config = Configuration(active={"authentication": "cadc", "server": None})
    with pytest.raises(ConfigurationError, match="no active server"):
        config.active_server()


def test_oidc_expiry_and_refreshable() -> None:
    credential = OIDCCredential.model_validate(OIDC_DOCUMENT["authentication"]["srcnet"])
    assert not credential.expired(now=1999999000.0)
    assert credential.expired(skew=1000.0, now=1999999000.0)
    assert OIDCCredential().expired()
    assert not OIDCCredential().refreshable


# ======================================================================================
# CreateRequest
# ======================================================================================


def test_create_defaults_and_fields() -> None:
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2")
    assert request.kind == "headless" and request.replicas == 1
    assert request.image == "images.canfar.net/skaha/terminal:1.1.2"
    assert request.form_fields(1, 1) == [
        ("name", "job"),
        ("image", "images.canfar.net/skaha/terminal:1.1.2"),
        ("type", "headless"),
        ("env", "REPLICA_ID=1"),
        ("env", "REPLICA_COUNT=1"),
    ]
    assert request.model_dump(by_alias=True, exclude_none=True) == {
        "name": "job",
        "image": "images.canfar.net/skaha/terminal:1.1.2",
        "type": "headless",
    }


def test_create_full_sequence() -> None:
    request = CreateRequest(
        name="batch",
        image="skaha/terminal:1.1.2",
        cores=2,
        ram=4,
        gpu=1,
        cmd="python",
        args=["-c", "print(1)"],
        env={"A": 1, "B": True},
        replicas=2,
    )
    assert request.form_fields(2, 2) == [
        ("name", "batch-2"),
        ("image", "images.canfar.net/skaha/terminal:1.1.2"),
        ("cores", "2"),
        ("ram", "4"),
        ("type", "headless"),
        ("gpus", "1"),
        ("cmd", "python"),
        ("args", "-c print(1)"),
        ("env", "A=1"),
        ("env", "B=True"),
        ("env", "REPLICA_ID=2"),
        ("env", "REPLICA_COUNT=2"),
    ]
    assert request.gpus == 1
    assert request.model_dump(by_alias=True, exclude_none=True)["gpus"] == 1
    assert CreateRequest(name="a", image="a/b", gpus=3, type="notebook").kind == "notebook"


def test_create_replica_variables_override_user_values() -> None:
    request = CreateRequest(name="j", image="a/b", env={"REPLICA_ID": "9", "X": "1"}, replicas=2)
    assert [v for k, v in request.form_fields(1) if k == "env"] == [
        "REPLICA_ID=1",
        "X=1",
        "REPLICA_COUNT=2",
    ]


@pytest.mark.parametrize(
    "name", ["-job", "job-", "job_1", "job.1", "", "a" * 64, "jöb", "a b", "job\n", "job-\u0663"]
)
def test_create_bad_names(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateRequest(name=name, image="a/b")
    text = str(caught.value)
    assert (
        "name: letters, digits and '-' only, at most 63 characters, not starting or ending with '-'"
        in text
    )


@pytest.mark.parametrize("name", ["a", "A1", "my-job-2", "a" * 63, "0"])
def test_create_good_names(name: str) -> None:
    assert CreateRequest(name=name, image="a/b").name == name


def test_create_suffixed_names_must_fit() -> None:
    CreateRequest(name="a" * 61, image="a/b", replicas=9)
    with pytest.raises(ValidationError, match="at most 63 characters"):
        CreateRequest(name="a" * 61, image="a/b", replicas=10)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cores", 0, "greater than or equal to 1"),
        ("cores", 257, "less than or equal to 256"),
        ("ram", 0, "greater than or equal to 1"),
        ("ram", 513, "less than or equal to 512"),
        ("gpu", 0, "omit gpu for none"),
        ("gpu", 29, "less than or equal to 28"),
        ("replicas", 0, "greater than or equal to 1"),
        ("replicas", 513, "less than or equal to 512"),
        ("kind", "vm", "Input should be 'desktop'"),
    ],
)
def test_create_ranges(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        CreateRequest(name="j", image="a/b", **{field: value})
    assert caught.value.errors()[0]["loc"][0] in (field, "type", "gpus")


def test_create_limits_accepted() -> None:
    CreateRequest(name="j", image="a/b", cores=256, ram=512, gpu=28, replicas=512)


@pytest.mark.parametrize("field", ["cmd", "args", "env"])
def test_create_headless_only(field: str) -> None:
    value = {"A": "1"} if field == "env" else "x"
    with pytest.raises(
        ValidationError, match=r"cmd, args, env only allowed for headless sessions\."
    ):
        CreateRequest(name="j", image="a/b", kind="notebook", **{field: value})


@pytest.mark.parametrize("kind", ["desktop", "firefly"])
def test_create_no_replicas_for_desktop_and_firefly(kind: str) -> None:
    with pytest.raises(ValidationError, match=f"multiple replicas invalid for {kind} sessions."):
        CreateRequest(name="j", image="a/b", kind=kind, replicas=2)
    CreateRequest(name="j", image="a/b", kind="notebook", replicas=2)


def test_create_warns_for_ignored_resources() -> None:
    with pytest.warns(
        UserWarning, match="cmd, args, cores and ram ignored for firefly sessions."
    ) as caught:
        CreateRequest(name="j", image="a/b", kind="firefly", ram=4)
    assert caught[0].filename == __file__  # points at the caller's line


def test_create_args_validation() -> None:
    with pytest.raises(ValidationError, match="list of strings"):
        CreateRequest(name="j", image="a/b", args=["a", 1])
    assert CreateRequest(name="j", image="a/b", args="a  b").args == "a  b"
    with pytest.raises(ValidationError):
        CreateRequest(name="j", image="a/b", env=["A=1"])


def test_create_unknown_fields_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        CreateRequest(name="j", image="a/b", core=2)


def test_form_fields_replica_range() -> None:
    with pytest.raises(ValueError, match="replica must be between 1 and 2"):
        CreateRequest(name="j", image="a/b", replicas=2).form_fields(3)


IMAGE_ERROR = (
    "invalid image container reference.must follow the format [registry/]repository/image[:tag]"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("skaha/astroml", "images.canfar.net/skaha/astroml:latest"),
        ("skaha/astroml:v1.0", "images.canfar.net/skaha/astroml:v1.0"),
        ("images.canfar.net/skaha/astroml", "images.canfar.net/skaha/astroml:latest"),
        ("registry.example:5000/team/img", "registry.example:5000/team/img:latest"),
        ("images.canfar.net/skaha/x@sha256:abc", "images.canfar.net/skaha/x@sha256:abc"),
        ("ubuntu:latest", None),
        ("a/b/c/d", None),
        ("plain", None),
    ],
)
def test_image_normalisation(given: str, expected: str | None) -> None:
    from canfar.models.session import CreateRequest as Upstream

    if expected is None:
        with pytest.raises(ValueError, match=r"invalid image container reference\.must follow"):
            normalise_image(given)
        with pytest.raises(ValidationError) as caught:
            Upstream(name="x", image=given, kind="headless")
        assert IMAGE_ERROR in str(caught.value)
        return
    assert normalise_image(given) == expected
    assert Upstream(name="x", image=given, kind="headless").image == expected


# -- the official client's wire output ----------------------------------------------------

CREATE_CASES: list[dict[str, Any]] = [
    {"name": "job", "image": "skaha/terminal:1.1.2"},
    {
        "name": "batch",
        "image": "images.canfar.net/skaha/terminal:1.1.2",
        "cores": 2,
        "ram": 8,
        "gpu": 1,
        "cmd": "python",
        "args": "-c print(1)",
        "env": {"A": 1, "B": "two words", "C": None, "D": 1.5},
        "replicas": 3,
    },
    {"name": "nb", "image": "skaha/astroml", "kind": "notebook", "cores": 4, "ram": 16},
    {
        "name": "rep",
        "image": "skaha/terminal:1.1.2",
        "env": {"REPLICA_ID": "x", "Z": "z"},
        "replicas": 2,
    },
    {"name": "dig", "image": "images.canfar.net/skaha/x@sha256:0123abcd", "kind": "carta"},
    {"name": "desk", "image": "skaha/desktop:1.2.1", "kind": "desktop"},
    {"name": "contrib", "image": "skaha/thing:2", "kind": "contributed", "replicas": 2, "gpu": 4},
]


def upstream_params(case: dict[str, Any], *, asynchronous: bool) -> list[list[tuple[str, str]]]:
    """What canfar 1.5.2's Session/AsyncSession put on the wire for ``create(**case)``."""
    import asyncio

    from canfar.sessions import AsyncSession, Session

    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.content == b""
        return httpx2.Response(200, text=f"id{len(requests)}\n")

    options = {
        "url": "https://example.test/skaha/v1",
        "token": "t",
        "transport": httpx2.MockTransport(handler),
    }
    if asynchronous:

        async def run() -> list[str]:
            async with AsyncSession(**options) as session:
                return await session.create(**case)

        ids = asyncio.run(run())
    else:
        with Session(**options) as session:
            ids = session.create(**case)
    assert len(ids) == case.get("replicas", 1)
    assert all(str(r.url).startswith("https://example.test/skaha/v1/session?") for r in requests)
    # The handler may run replicas concurrently (async): order by name as the replicas are.
    params = [r.url.params.multi_items() for r in requests]
    return sorted(params, key=lambda items: dict(items)["name"])


@pytest.mark.parametrize("asynchronous", [False, True], ids=["Session", "AsyncSession"])
@pytest.mark.parametrize("case", CREATE_CASES, ids=[c["name"] for c in CREATE_CASES])
def test_form_fields_equal_official_client(case: dict[str, Any], asynchronous: bool) -> None:
    theirs = upstream_params(case, asynchronous=asynchronous)
    request = CreateRequest(**case)
    total = request.replicas
    ours = [request.form_fields(i, total) for i in range(1, total + 1)]
    assert ours == sorted(ours, key=lambda items: dict(items)["name"])
    assert ours == theirs


# ======================================================================================
# SessionRecord
# ======================================================================================

FULL_RECORD = {
    "id": "k3x9ab2q",
    "userid": "alice",
    "runAsUID": "20001",
    "runAsGID": "20001",
    "supplementalGroups": [30001, 30002],
    "image": "images.canfar.net/skaha/astroml:latest",
    "type": "notebook",
    "status": "Running",
    "name": "mynotebook",
    "startTime": "2026-08-01T17:49:55Z",
    "expiryTime": "2026-08-05T17:49:55Z",
    "connectURL": "https://ws-uv.canfar.net/session/notebook/k3x9ab2q/lab/tree/cavern/home/alice?token=k3x9ab2q",
    "requestedRAM": "4.29",
    "requestedCPUCores": "2",
    "requestedGPUCores": "0",
    "ramInUse": "0.54",
    "cpuCoresInUse": "0.013",
    "isFixedResources": True,
}


def test_record_full() -> None:
    record = SessionRecord.model_validate(FULL_RECORD)
    assert record.anomalies == []
    assert record.state == "Running" and not record.finished
    assert record.kind == "notebook"
    assert record.start == datetime(2026, 8, 1, 17, 49, 55, tzinfo=timezone.utc)
    assert record.expiry == datetime(2026, 8, 5, 17, 49, 55, tzinfo=timezone.utc)
    assert (record.requested_cores, record.requested_ram_gb, record.requested_gpus) == (
        2.0,
        4.29,
        0.0,
    )
    assert (record.cpu_in_use, record.ram_in_use_gb) == (0.013, 0.54)
    assert record.model_dump(exclude_none=True) == FULL_RECORD


def test_record_flexible_pending() -> None:
    record = SessionRecord.model_validate(
        {
            "id": "q2w8e4r6",
            "status": "Pending",
            "type": "headless",
            "connectURL": "",
            "isFixedResources": False,
        }
    )
    assert record.state == "Pending"
    assert record.start is None and record.requested_cores is None and record.cpu_in_use is None


def test_record_odd_values() -> None:
    record = SessionRecord.model_validate(
        {
            "id": 12345,
            "status": "Failed (DeadlineExceeded)",
            "type": "vm",
            "startTime": "2026-08-01T17:49Z",
            "expiryTime": "next tuesday",
            "requestedRAM": "16G",
            "requestedCPUCores": 2,
            "requestedGPUCores": "<none>",
            "ramInUse": "101Mi",
            "cpuCoresInUse": "0m",
            "isFixedResources": "false",
            "supplementalGroups": [1, "2", "x", None, 3.0],
            "somethingNew": {"nested": True},
            "anomalies": "spoofed",
        }
    )
    assert record.id == "12345"
    assert record.state == "Failed" and record.finished
    assert record.start == datetime(2026, 8, 1, 17, 49, tzinfo=timezone.utc)
    assert record.expiry is None
    assert record.requested_ram_gb == 16.0
    assert record.requested_cores == 2.0
    assert record.requested_gpus is None
    assert record.ram_in_use_gb == pytest.approx(101 * 2**20 / 1e9)
    assert record.cpu_in_use == 0.0
    assert record.isFixedResources is False
    assert record.supplementalGroups == [1, 2, 3]
    assert record.model_extra == {"somethingNew": {"nested": True}}
    joined = " | ".join(record.anomalies)
    assert "expiryTime" in joined and "supplementalGroups" in joined and "type" in joined
    assert "anomalies" not in record.model_dump()
    assert "anomalies" not in record.model_dump_json()


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Completed", "Completed"),
        ("Succeeded", "Completed"),
        ("Error", "Failed"),
        ("running", "Running"),
        ("Terminating", "Terminating"),
        ("", "Unknown"),
        (None, "Unknown"),
        ("Weird", "Unknown"),
    ],
)
def test_record_states(status: str | None, state: str) -> None:
    assert SessionRecord.model_validate({"status": status}).state == state


def test_record_from_non_mapping() -> None:
    record = SessionRecord.model_validate(["not", "a", "dict"])
    assert record.state == "Unknown" and record.anomalies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("101Mi", 101 * 2**20),
        ("4Gi", 4 * 2**30),
        ("8G", 8e9),
        ("0m", 0.0),
        ("250m", 0.25),
        ("0.54", 0.54),
        ("1e3", 1000.0),
        (" 2 ", 2.0),
        (3, 3.0),
        ("<none>", None),
        ("", None),
        ("12Xi", None),
        ("abc", None),
        (True, None),
        (None, None),
        ([1], None),
        ("1e400", None),
    ],
)
def test_parse_quantity(value: Any, expected: float | None) -> None:
    assert parse_quantity(value) == expected


def test_parse_gigabytes() -> None:
    assert parse_gigabytes("4.29") == 4.29
    assert parse_gigabytes("8G") == 8.0
    assert parse_gigabytes("4Gi") == pytest.approx(4.294967296)
    assert parse_gigabytes("137.439G") == pytest.approx(137.439)
    assert parse_gigabytes("<none>") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-01T17:49:55Z", datetime(2026, 8, 1, 17, 49, 55, tzinfo=timezone.utc)),
        ("2026-08-01T17:49Z", datetime(2026, 8, 1, 17, 49, tzinfo=timezone.utc)),
        (
            "2026-08-01T17:49:55.123456789Z",
            datetime(2026, 8, 1, 17, 49, 55, 123456, tzinfo=timezone.utc),
        ),
        ("2026-08-01T19:49:55+02:00", datetime(2026, 8, 1, 17, 49, 55, tzinfo=timezone.utc)),
        ("2026-08-01 17:49:55", datetime(2026, 8, 1, 17, 49, 55, tzinfo=timezone.utc)),
        ("2026-13-01T17:49:55Z", None),
        ("<none>", None),
        ("", None),
        (1234, None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected


# ======================================================================================
# Stats, Context, Image
# ======================================================================================


def test_stats_current_shape() -> None:
    stats = Stats.model_validate(
        {
            "cores": {
                "requestedCPUCores": 12.5,
                "cpuCoresAvailable": 64.0,
                "maxCPUCores": {"cpuCores": 8.0, "withRam": "32Gi"},
            },
            "ram": {
                "requestedRAM": "137.439G",
                "ramAvailable": "549.756G",
                "maxRAM": {"ram": "32Gi", "withCPUCores": 8.0},
            },
        }
    )
    assert (stats.cores_requested, stats.cores_available, stats.cores_max) == (12.5, 64.0, 8.0)
    assert stats.ram_requested_gb == pytest.approx(137.439)
    assert stats.ram_available_gb == pytest.approx(549.756)
    assert stats.ram_max_gb == pytest.approx(32 * 2**30 / 1e9)
    assert stats.gpus_requested is None and stats.anomalies == []


def test_stats_older_shapes() -> None:
    stats = Stats.model_validate(
        {
            "instances": {"session": 88, "desktopApp": 30, "headless": 0, "total": 118},
            "cores": {
                "requestedCPUCores": 377,
                "coresAvailable": 960,
                "maxCores": {"cores": 32, "withRam": "147Gi"},
            },
            "ram": {
                "requestedRAM": "8Gi",
                "ramAvailable": "128Gi",
                "maxRAM": {"ram": "226Gi", "withCores": 32},
            },
            "gpu": {"requestedGPU": 2, "gpuAvailable": "8"},
        }
    )
    assert (stats.cores_requested, stats.cores_available, stats.cores_max) == (377.0, 960.0, 32.0)
    assert stats.ram_requested_gb == pytest.approx(8 * 2**30 / 1e9)
    assert (stats.gpus_requested, stats.gpus_available) == (2.0, 8.0)
    assert stats.instances == {"session": 88, "desktopApp": 30, "headless": 0, "total": 118}


def test_stats_junk() -> None:
    stats = Stats.model_validate({"cores": "lots", "ram": None})
    assert stats.cores_requested is None and stats.ram_available_gb is None
    assert stats.anomalies == ["cores: not an object, dropped"]
    assert Stats.model_validate("nope").anomalies


def test_context() -> None:
    context = Context.model_validate(
        {
            "cores": {
                "default": 2,
                "defaultRequest": 1,
                "defaultLimit": 8,
                "options": list(range(1, 17)),
            },
            "memoryGB": {
                "default": 8,
                "defaultRequest": 4,
                "defaultLimit": 32,
                "options": [1, 2, 4, "x", 8],
            },
            "gpus": {"options": list(range(1, 29))},
            "maxInteractiveSessions": "5",
        }
    )
    assert context.cores.default == 2 and context.cores.defaultLimit == 8
    assert context.memoryGB.options == [1, 2, 4, 8]
    assert context.gpus.options[-1] == 28 and context.gpus.default is None
    assert context.maxInteractiveSessions == 5
    assert Context.model_validate({"maxInteractiveSessions": 3}).maxInteractiveSessions == 3
    assert Context.model_validate({"maxInteractiveSessions": "many"}).maxInteractiveSessions is None
    assert Context.model_validate(None).cores.options == []


def test_image() -> None:
    image = Image.model_validate(
        {
            "id": "images.canfar.net/skaha/astroml:latest",
            "types": ["notebook", 3],
            "digest": "sha256:4f",
        }
    )
    assert (image.id, image.types, image.digest) == (
        "images.canfar.net/skaha/astroml:latest",
        ["notebook"],
        "sha256:4f",
    )
    assert Image.model_validate("a/b:1").id == "a/b:1"
    assert Image.model_validate(None).id == ""


# ======================================================================================
# Events
# ======================================================================================

EVENTS = (
    "TYPE     REASON      MESSAGE                                                              FIRST-TIME             LAST-TIME\n"
    "Normal   Scheduled   Successfully assigned skaha-workload/skaha-notebook-alice-k3x9ab2q-7xq2m to node-3   <none>                 <none>\n"
    'Normal   Pulled      Container image "images.canfar.net/skaha/astroml:latest" already present on machine   2026-08-01T17:49:57Z   2026-08-01T17:49:57Z\n'
    "Normal   Created     Created container skaha-notebook-alice-k3x9ab2q                      2026-08-01T17:49:57Z   2026-08-01T17:49:57Z\n"
    "Warning  BackOff     Back-off restarting failed container                                 2026-08-01T17:50:00Z   2026-08-01T17:52:00Z\n"
)


def test_parse_events_server_example() -> None:
    events = parse_events(EVENTS)
    assert [e.reason for e in events] == ["Scheduled", "Pulled", "Created", "BackOff"]
    assert events[0] == Event(
        type="Normal",
        reason="Scheduled",
        message="Successfully assigned skaha-workload/skaha-notebook-alice-k3x9ab2q-7xq2m to node-3",
    )
    assert (
        events[1].message
        == 'Container image "images.canfar.net/skaha/astroml:latest" already present on machine'
    )
    assert events[1].first_time == datetime(2026, 8, 1, 17, 49, 57, tzinfo=timezone.utc)
    assert events[3].type == "Warning"
    assert events[3].last_time == datetime(2026, 8, 1, 17, 52, tzinfo=timezone.utc)


def test_parse_events_aligned_table_with_empty_cells() -> None:
    header = f"{'TYPE':<9}{'REASON':<10}{'MESSAGE':<30}{'FIRST-TIME':<23}LAST-TIME"
    row = f"{'Normal':<9}{'Pulling':<10}{'Pulling image  x  (spaced)':<30}{'<none>':<23}2026-08-01T17:49Z"
    (event,) = parse_events(f"{header}\n{row}\n")
    assert event.message == "Pulling image  x  (spaced)"  # inner spacing kept when aligned
    assert event.first_time is None
    assert event.last_time == datetime(2026, 8, 1, 17, 49, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text",
    ["<none>\n", "<none>", "", "\n\n", None, 42, "TYPE REASON MESSAGE FIRST-TIME LAST-TIME\n"],
)
def test_parse_events_empty(text: Any) -> None:
    assert parse_events(text) == []


def test_parse_events_ragged_lines() -> None:
    text = "TYPE   REASON   MESSAGE   FIRST-TIME   LAST-TIME\nNormal Pulled\nWarning\n\r\nNormal  Killing  Stopping  container  <none>  <none>\n"
    events = parse_events(text)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", "Pulled", None),
        ("Warning", None, None),
        ("Normal", "Killing", "Stopping container"),
    ]


def test_parse_events_bytes_and_crlf() -> None:
    assert len(parse_events(EVENTS.replace("\n", "\r\n").encode())) == 4


# ======================================================================================
# hypothesis: tolerant parsers never raise
# ======================================================================================

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
record_keys = st.sampled_from([*SessionRecord.model_fields, "anomalies", "other"])
quantity_text = st.from_regex(
    r"[-+]?[0-9.]{0,6}(e[0-9]{1,3})?(m|k|Ki|Mi|Gi|G|Ti|E|Ei|Xi)?", fullmatch=True
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(record_keys, json_values | quantity_text, max_size=12) | json_values)
def test_session_record_never_raises(data: Any) -> None:
    record = SessionRecord.model_validate(data)
    for name in (
        "state",
        "finished",
        "start",
        "expiry",
        "requested_cores",
        "requested_ram_gb",
        "requested_gpus",
        "cpu_in_use",
        "ram_in_use_gb",
        "kind",
    ):
        getattr(record, name)
    assert record.state in ("Pending", "Running", "Terminating", "Completed", "Failed", "Unknown")
    for value in (record.requested_cores, record.cpu_in_use, record.ram_in_use_gb):
        assert value is None or math.isfinite(value)
    record.model_dump()
    record.model_dump_json()


stats_sections = st.dictionaries(
    st.sampled_from(
        [
            "requestedCPUCores",
            "cpuCoresAvailable",
            "coresAvailable",
            "requestedRAM",
            "ramAvailable",
            "maxCPUCores",
            "maxRAM",
            "maxCores",
            "requestedGPU",
            "gpuAvailable",
        ]
    ),
    json_values | quantity_text,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["cores", "ram", "gpu", "instances", "x"]), stats_sections | json_values
    )
    | json_values
)
def test_stats_never_raises(data: Any) -> None:
    stats = Stats.model_validate(data)
    for name in (
        "cores_requested",
        "cores_available",
        "cores_max",
        "ram_requested_gb",
        "ram_available_gb",
        "ram_max_gb",
        "gpus_requested",
        "gpus_available",
    ):
        value = getattr(stats, name)
        assert value is None or isinstance(value, float)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["cores", "memoryGB", "gpus", "maxInteractiveSessions"]),
        st.dictionaries(
            st.sampled_from(["default", "defaultRequest", "defaultLimit", "options"]), json_values
        )
        | json_values,
    )
    | json_values
)
def test_context_and_image_never_raise(data: Any) -> None:
    Context.model_validate(data)
    Image.model_validate(data)


event_lines = st.lists(
    st.text(alphabet=st.sampled_from(list('ab <>:-TZ0123456789none\t"')), max_size=60)
    | st.sampled_from(
        [
            "<none>",
            "TYPE REASON MESSAGE FIRST-TIME LAST-TIME",
            "Normal Pulled x 2026-08-01T17:49Z <none>",
        ]
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(event_lines, st.booleans())
def test_parse_events_never_raises(lines: list[str], with_header: bool) -> None:
    header = (
        ["TYPE     REASON      MESSAGE        FIRST-TIME             LAST-TIME"]
        if with_header
        else []
    )
    events = parse_events("\n".join(header + lines))
    assert all(isinstance(event, Event) for event in events)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_events_never_raises_on_any_text(text: str) -> None:
    parse_events(text)


def test_env_values_with_equals_are_sent_but_logged(caplog: pytest.LogCaptureFixture) -> None:
    # Sent as the official client does; the server drops KEY=VALUE entries with a second '='.
    with caplog.at_level(logging.WARNING, logger="canfar_widgets.models"):
        request = CreateRequest(name="j", image="a/b", env={"OPTS": "a=b"})
    assert ("env", "OPTS=a=b") in request.form_fields(1, 1)
    assert "'OPTS' contains '='" in caplog.text and "a=b" not in caplog.text
    with pytest.raises(ValidationError, match="names must be non-empty strings"):
        CreateRequest(name="j", image="a/b", env={"": "c"})


def test_validation_errors_never_echo_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateRequest(name="-bad", image="a/b", env={"API_KEY": "sk-live-123"})
    assert "sk-live-123" not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        ContainerRegistry(secret="hunter2-" * 40, username="bob")  # too long
    assert "hunter2" not in str(caught.value)
