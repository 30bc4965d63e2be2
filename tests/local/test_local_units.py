"""Local platform building blocks: formats, knobs, CLI, lifecycle of the platform object."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from support import reap

from canfar_widgets.local import Faults, LocalPlatform, is_loopback
from canfar_widgets.local import cli as local_cli
from canfar_widgets.local.formats import (
    compact_json,
    decimal_g,
    gib_to_gb,
    gson_pretty,
    instant,
    java_double,
    java_int,
    java_split,
    join_items,
    kubectl_table,
    offset_datetime,
)
from canfar_widgets.local.settings import Settings
from canfar_widgets.local.validation import Params, check_resources

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------- formats


def test_gson_pretty_layout() -> None:
    value = [{"id": "a", "groups": [], "nested": {"x": [1, 2]}, "url": "x?token=a&b<c"}]
    assert gson_pretty(value) == (
        '[\n  {\n    "id": "a",\n    "groups": [],\n    "nested": {\n      "x": [\n'
        '        1,\n        2\n      ]\n    },\n    "url": "x?token=a&b<c"\n  }\n]'
    )
    assert join_items([]) == "[]"
    assert compact_json({"a": [1, 2], "b": "5"}) == '{"a":[1,2],"b":"5"}'


def test_java_split() -> None:
    assert java_split("a b", " ") == ["a", "b"]
    assert java_split("a  b ", " ") == ["a", "", "b"]
    assert java_split("", " ") == [""]
    assert java_split("A=", "=") == ["A"]
    assert java_split("=B", "=") == ["", "B"]
    assert java_split("A=1=2", "=") == ["A", "1", "2"]


def test_java_numbers() -> None:
    assert java_double(" 2.5 ") == 2.5
    assert java_double("4d") == 4.0
    assert java_double("1e1") == 10.0
    for bad in ("", "x", "1_0", "nan", "inf", "0x10", "1 2"):
        assert java_double(bad) is None
    assert java_int("+3") == 3
    for bad in (" 3", "3.0", "", "99999999999"):
        assert java_int(bad) is None


def test_ram_and_time_formats() -> None:
    assert gib_to_gb(4) == "4.29" and gib_to_gb(1) == "1.07"
    assert decimal_g(137.438953472) == "137.439G"
    assert decimal_g(549.755813888) == "549.756G"
    assert decimal_g(0) == "0G" and decimal_g(128.0) == "128G"
    assert offset_datetime(1785606595) == "2026-08-01T17:49:55Z"
    assert offset_datetime(1785606540) == "2026-08-01T17:49Z"  # Java drops :00 seconds
    assert instant(1785606540) == "2026-08-01T17:49:00Z"


def test_kubectl_table_alignment() -> None:
    table = kubectl_table(
        ["TYPE", "REASON", "LAST"], [["Normal", "Scheduled", "<none>"], ["Warning", "Failed", "x"]]
    )
    assert table.splitlines() == [
        "TYPE      REASON      LAST",
        "Normal    Scheduled   <none>",
        "Warning   Failed      x",
    ]
    assert kubectl_table(["A", "B"], []) == "A     B"  # columns are at least 6 wide


# --------------------------------------------------------------------- validation/knobs


def test_resources_check_the_integer_part_and_keep_the_value() -> None:
    # PostAction validates cores.intValue() against the options but requests the full value
    settings = Settings(username="u")
    assert check_resources(Params({"cores": ["2.9"], "ram": ["4.5"]}), settings) == (2.9, 4.5)
    assert check_resources(Params({}), settings) == (None, None)
    assert check_resources(Params({"cores": [""], "ram": ["  "]}), settings) == (None, None)


def test_settings_and_defaults() -> None:
    s = Settings(username="u", finished_ttl=None)
    assert s.ttl_for("headless") == 3600 and s.ttl_for("notebook") == 86400
    assert s.expiry_for("headless") == 1209600 and s.expiry_for("carta") == 345600
    assert s.ctx["maxInteractiveSessions"] == "5"
    assert Settings(username="u", max_sessions=2).ctx["maxInteractiveSessions"] == "2"
    with pytest.raises(ValueError):
        Settings(username="u", anonymous_status=403)
    with pytest.raises(ValueError):
        Settings(username="u", start_delay=-1)


def test_faults_validate_and_reset() -> None:
    faults = Faults(seed=1)
    faults.error_rate = 1.0
    assert faults.injected_status() in (500, 502, 503)
    faults.error_statuses = [504]
    assert faults.injected_status() == 504
    for name, value in (
        ("error_rate", -0.1),
        ("latency", -1),
        ("start_delay", -2),
        ("error_statuses", [404]),
    ):
        with pytest.raises(ValueError):
            setattr(faults, name, value)
    faults.reset()
    assert faults.injected_status() is None and faults.delay() == 0.0


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.5.5.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")


# ------------------------------------------------------------------- platform object


def test_platform_basics() -> None:
    p = LocalPlatform(token="s3cret-token", username="alice")
    assert "s3cret-token" not in repr(p) and not p.running
    with pytest.raises(RuntimeError):
        _ = p.url
    with p:
        assert p.running
        assert p.url == f"http://127.0.0.1:{p.port}/skaha/v1"
        assert not p.url.endswith("/")
        assert p.token == "s3cret-token" and p.username == "alice"
        assert "s3cret-token" not in repr(p)
        r = httpx.get(f"{p.url}/session", headers={"Authorization": "Bearer s3cret-token"})
        assert r.headers["x-vo-authenticated"] == "alice"
        p.start()  # idempotent
    assert not p.running
    p.stop()  # idempotent


def test_random_tokens_differ() -> None:
    a, b = LocalPlatform(), LocalPlatform()
    assert a.token != b.token and len(a.token) >= 32
    with pytest.raises(ValueError):
        LocalPlatform(token="")


async def test_async_context_manager() -> None:
    async with LocalPlatform() as p:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{p.url}/context", headers={"Authorization": f"Bearer {p.token}"})
        assert r.status_code == 200
    assert not p.running


def test_port_in_use_is_reported() -> None:
    with LocalPlatform() as first, pytest.raises(OSError):
        LocalPlatform(port=first.port).start()


def test_preload_rejects_unknown_values() -> None:
    with LocalPlatform() as p:
        with pytest.raises(ValueError):
            p.preload(1, kind="bogus")
        with pytest.raises(ValueError):
            p.preload(1, status="Terminating")
        assert len(p.preload(3, kind="notebook", status="Running")) == 3
        assert [s["status"] for s in p.sessions()] == ["Running"] * 3


# ------------------------------------------------------------------------------ CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canfar-widgets local",
        description=local_cli.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local_cli.add_arguments(parser)
    return parser


def test_cli_help_warns_plainly() -> None:
    text = _parser().format_help()
    assert "RUNS COMMANDS" in text and "current user" in text and "loopback" in text


def test_cli_options_build_the_platform() -> None:
    args = _parser().parse_args(
        [
            "--port",
            "0",
            "--token",
            "t",
            "--latency",
            "0.5",
            "--error-rate",
            "0.25",
            "--stats-unavailable",
            "--allowed-host",
            "images.example.org",
            "--max-sessions",
            "2",
            "--anonymous-401",
            "--slow-start",
            "3",
        ]
    )
    platform = local_cli.build_platform(args)
    assert platform.token == "t"
    assert platform.faults.latency == 0.5 and platform.faults.error_rate == 0.25
    assert platform.faults.stats_unavailable and platform.faults.start_delay == 3
    assert platform.settings.allowed_hosts == ("images.example.org",)
    assert platform.settings.max_sessions == 2 and platform.settings.anonymous_status == 401


def test_cli_dispatcher_knows_local() -> None:
    from canfar_widgets.cli import build_parser

    args = build_parser().parse_args(["local", "--port", "0"])
    assert args._run is local_cli.run


def test_cli_runs_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canfar_widgets",
            "local",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        url = next(line.split()[-1] for line in lines if line.strip().startswith("url:"))
        assert url.startswith("http://127.0.0.1:") and url.endswith("/skaha/v1")
        assert any(line.split()[-1] == "cli-token" for line in lines if "token:" in line)
        r = httpx.get(f"{url}/context", headers={"Authorization": "Bearer cli-token"})
        assert json.loads(r.text)["maxInteractiveSessions"] == "5"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        reap(proc)


def test_cli_warns_for_non_loopback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _parser().parse_args(["--host", "0.0.0.0", "--port", "0"])
    monkeypatch.setattr(
        local_cli,
        "build_platform",
        lambda _args: (_ for _ in ()).throw(OSError("not really starting")),
    )
    assert local_cli.run(args) == 1
    err = capsys.readouterr().err
    assert "WARNING" in err and "not a loopback address" in err


# ----------------------------------------------------------- the server's Java semantics


def test_docstring_examples_of_the_fidelity_modules() -> None:
    import doctest

    from canfar_widgets.local import formats, launch, validation

    for module in (formats, launch, validation):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("plain", "plain"),
        ("a\\b", "ab"),
        ("\\\\", "\\"),
        ("\\$", "$"),
        ("$0", "${k}"),
        ("$00", "${k}"),
        ("$01", "${k}1"),
    ],
)
def test_java_replacement_values(replacement: str, expected: str) -> None:
    from canfar_widgets.local.formats import java_replacement

    assert java_replacement(replacement, "${k}") == expected


@pytest.mark.parametrize(
    ("replacement", "java_class", "message"),
    [
        ("$x", "java.lang.IllegalArgumentException", "Illegal group reference"),
        (
            "a$",
            "java.lang.IllegalArgumentException",
            "Illegal group reference: group index is missing",
        ),
        ("$1", "java.lang.IndexOutOfBoundsException", "No group 1"),
        ("$10", "java.lang.IndexOutOfBoundsException", "No group 1"),
        ("${A}", "java.lang.IllegalArgumentException", "No group with name {A}"),
        ("${", "java.lang.IllegalArgumentException", "named capturing group has 0 length name"),
        (
            "${1}",
            "java.lang.IllegalArgumentException",
            "capturing group name {1} starts with digit character",
        ),
        ("x\\", "java.lang.IllegalArgumentException", "character to be escaped is missing"),
    ],
)
def test_java_replacement_errors(replacement: str, java_class: str, message: str) -> None:
    from canfar_widgets.local.formats import JavaError, java_replacement

    with pytest.raises(JavaError) as caught:
        java_replacement(replacement, "${k}")
    assert (caught.value.java_class, caught.value.message) == (java_class, message)


def test_cadc_base64_matches_the_standard_on_valid_input() -> None:
    import base64

    from canfar_widgets.local.formats import JavaError, cadc_base64_decode

    for size in range(12):
        data = bytes(range(200, 200 + size))
        assert cadc_base64_decode(base64.b64encode(data).decode()) == data
    for bad in ("YQ=A", "Y\u00e9==", "YQ==\n"):
        with pytest.raises(JavaError):
            cadc_base64_decode(bad)


def test_java_number_parsing() -> None:
    from canfar_widgets.local.formats import has_text, java_int_value, java_trim

    assert java_double("0x1.8p1") == 3.0 and java_double("2d") == 2.0
    assert java_double("\u00a02") is None  # String.trim keeps a no-break space
    assert java_int_value(float("nan")) == 0 and java_int_value(1e12) == 2**31 - 1
    assert java_int_value(-2.9) == -2
    assert java_trim("\x01 a \t") == "a"
    assert not has_text(" \t") and has_text("\u00a0")  # not whitespace to Java


def test_params_are_case_insensitive_and_keep_arrival_order() -> None:
    params = Params({"NAME": ["a"], "name": ["b"], "Env": ["X=1"], "env": ["Y=2"]})
    assert params.get("Name") == "a"
    assert params.get_all("ENV") == ["X=1", "Y=2"]
    assert params.get("missing") is None and params.get_all("missing") == []


def test_label_checks() -> None:
    from canfar_widgets.local.errors import PlatformError
    from canfar_widgets.local.validation import check_label

    assert check_label("canfar.net/id", "abc.d_e-f") == "abc.d_e-f"
    for value, rule in (
        ("", "cannot be blank"),
        ("a" * 64, "exceeds 63 characters"),
        ("a-", "must match Kubernetes label value syntax"),
    ):
        with pytest.raises(PlatformError) as caught:
            check_label("canfar.net/id", value)
        assert caught.value.status == 400
        assert caught.value.message == f"canfar.net/id label value {rule}"


def test_container_spec_follows_the_bundle() -> None:
    from canfar_widgets.local.formats import JavaError
    from canfar_widgets.local.launch import bundle, container_spec

    assert bundle("img", "echo", "a b", ["K=V", "bad"]) == (
        'image: "img"\n        command: ["echo"]\n        args: ["a", "b"]\n        env:\n'
        '        - name: K\n          value: "V"'
    )
    spec = container_spec("img", "echo", "", ["K=a=b", "N=1"])
    assert spec.argv == ("echo", "") and spec.env == (("N", "1"),)
    assert container_spec("img", None, "x", []).argv is None  # the image's entrypoint
    assert container_spec("img", "echo", " ", []).argv == ("echo",)  # " ".split(" ") is []
    with pytest.raises(JavaError) as caught:
        container_spec('im"g', "echo", None, [])
    assert caught.value.java_class.startswith("org.yaml.snakeyaml.")


def test_the_replicas_of_a_batch_share_one_parse_and_errors_are_never_kept() -> None:
    from canfar_widgets.local.formats import JavaError
    from canfar_widgets.local.launch import container_spec

    first = container_spec("img", "python", "run.py --n 3", ["A=1"])
    assert container_spec("img", "python", "run.py --n 3", ("A=1",)) is first  # list or tuple
    assert container_spec("img", "python", "run.py --n 4", ["A=1"]).argv[-1] == "4"
    assert container_spec("img", "python", "run.py --n 3", ["A=2"]).env == (("A", "2"),)
    for _ in range(2):  # the second call fails the same way: the failure was not cached
        with pytest.raises(JavaError):
            container_spec('im"g', "echo", None, [])


def test_a_random_session_id_is_a_letter_then_letters_and_digits() -> None:
    from canfar_widgets.local.store import _random_id

    ids = [_random_id(8) for _ in range(3000)]
    assert all(len(i) == 8 and i[0].isalpha() for i in ids)
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for i in ids for c in i)
    assert len({i[0] for i in ids}) == 26 and len({c for i in ids for c in i[1:]}) == 36
