"""LaunchForm: context-driven choices, inline validation before any request, the launch
itself (exact HTTP), double-click safety, registry secrets kept out of everything."""

from __future__ import annotations

import base64
import json
import logging
import random
import re
from urllib.parse import parse_qsl

import pytest
from widget_fakes import FakeSkaha, send, wait_until

from canfar_widgets.models import ContainerRegistry
from canfar_widgets.widgets.launch import (
    NAME_PATTERN,
    LaunchForm,
    check_name,
    create_kwargs,
    default_name,
    parse_env,
    python_code,
    validate_spec,
)

SECRET = "s3cr3t-SENTINEL-9d8c"


@pytest.fixture
def sky():
    return FakeSkaha()


def make_form(sky, **traits):
    form = LaunchForm(sky.session(), **traits)
    form._ready.result(5)
    return form


def posts(sky):
    return sky.made("POST", "session")


def form_fields(request):
    return parse_qsl(request.content.decode())


# -- the rules ----------------------------------------------------------------------------------


def test_default_name_is_valid_and_varied():
    names = {default_name(random.Random(seed)) for seed in range(20)}
    assert len(names) > 10
    assert all(re.match(NAME_PATTERN, n) and check_name(n) == "" for n in names)


@pytest.mark.parametrize("bad", ["-a", "a-", "a_b", "a b", "a" * 64, "émile"])
def test_name_rule_message_names_field_and_rule(bad):
    message = check_name(bad)
    assert message.startswith("Name ")
    assert NAME_PATTERN in message


def test_validate_spec_mirrors_the_browser_rules():
    limits = {"cores": {"options": [1, 2, 4]}, "ram": {"options": [1, 8]}, "gpus": {"options": [1, 2]}}
    spec = {"name": "ok", "kind": "notebook", "image": "skaha/astroml", "resources": "fixed",
            "cores": 3, "ram": "8", "gpus": 5}  # fmt: skip
    assert validate_spec(spec, limits) == {
        "cores": "Cores must be one of 1, 2, 4.",
        "gpus": "GPUs must be one of 1, 2.",
    }
    assert validate_spec({**spec, "cores": 300}, {})["cores"] == "Cores must be between 1 and 256."
    assert validate_spec({**spec, "resources": "flexible", "cores": 300, "gpus": 0}, limits) == {}
    headless = {**spec, "kind": "headless", "resources": "flexible", "gpus": None,
                "cmd": "echo hi", "env": "A=b=c", "replicas": 0}  # fmt: skip
    assert set(validate_spec(headless, limits)) == {"cmd", "env", "replicas"}
    assert "too long for 10 replicas" in validate_spec(
        {**headless, "name": "a" * 61, "cmd": "", "env": "", "replicas": 10}
    )["name"]


def test_parse_env_and_create_kwargs():
    assert parse_env("A=1\n\n# c\nB = two") == ({"A": "1", "B": "two"}, "")
    assert "line 2" in parse_env("A=1\nB")[1]
    spec = {"name": "n", "kind": "headless", "image": "skaha/x", "resources": "fixed", "cores": "2",
            "ram": 8, "gpus": "1", "cmd": "echo", "args": "a b", "env": "K=V", "replicas": 3}  # fmt: skip
    assert create_kwargs(spec) == {"name": "n", "image": "skaha/x", "kind": "headless", "cores": 2,
                                   "ram": 8, "gpu": 1, "cmd": "echo", "args": "a b",
                                   "env": {"K": "V"}, "replicas": 3}  # fmt: skip
    # Headless-only fields never leak into an interactive launch; desktop ignores resources.
    assert create_kwargs({**spec, "kind": "desktop"}) == {
        "name": "n", "image": "skaha/x", "kind": "desktop", "gpu": 1,
    }


def test_python_code_matches_the_documented_shape():
    code = python_code({"name": "n", "kind": "headless", "image": "skaha/x", "resources": "flexible",
                        "cmd": "echo", "args": 'say "hi"', "env": "A=1", "replicas": 2})  # fmt: skip
    assert code == (
        "from canfar_widgets import Session\n\nsession = Session()\nids = session.create(\n"
        '    name="n",\n    image="skaha/x",\n    kind="headless",\n    cmd="echo",\n'
        '    args="say \\"hi\\"",\n    env={"A": "1"},\n    replicas=2,\n)\n'
    )
    with_registry = python_code({"name": "n", "kind": "notebook", "image": "p/x"}, registry=True)
    assert "registry = ContainerRegistry()" in with_registry
    assert "registry=registry," in with_registry
    compile(with_registry, "<code>", "exec")


# -- the widget -----------------------------------------------------------------------------------


def test_choices_come_from_context_and_image_endpoints(sky):
    form = make_form(sky)
    assert form.name and check_name(form.name) == ""
    assert form.limits["cores"]["options"] == [1, 2, 4, 8, 16]
    assert form.limits["ram"]["default"] == 8
    assert form.limits["gpus"]["options"] == [1, 2, 3, 4]
    assert form.load_limits == {"cores": 8.0, "ram": pytest.approx(34.36, abs=0.01)}
    assert wait_until(lambda: "notebook" in form.images)
    assert form.images["notebook"] == ["images.canfar.net/skaha/astroml:latest"]
    # Choosing a kind loads its images, filtered by the server (?type=kind).
    form.kind = "headless"
    assert wait_until(lambda: "headless" in form.images)
    assert form.images["headless"] == [
        "images.canfar.net/skaha/astroml:latest",
        "images.canfar.net/skaha/terminal:1.1.2",
    ]
    assert [r.url.params.get("type") for r in sky.made("GET", "image")] == ["notebook", "headless"]
    assert form.error == ""


def test_launch_flexible_headless_sends_exact_form(sky):
    form = make_form(sky)
    send(form, kind="launch", nonce="n1", registry=None, spec={
        "name": "job", "kind": "headless", "image": "images.canfar.net/skaha/terminal:1.1.2",
        "resources": "flexible", "cores": 2, "ram": 8, "gpus": None, "cmd": "echo",
        "args": "hello world", "env": "MODE=test", "replicas": 2,
    })  # fmt: skip
    ids = form._launch_future.result(5)
    assert ids == ["new00001", "new00002"] or sorted(ids) == ["new00001", "new00002"]
    assert form.last_launched == ids
    assert "Launched 2 sessions" in form.status
    assert wait_until(lambda: form.done_nonce == "n1")
    assert form.busy is False and form.error == "" and form.field_errors == {}
    sent = sorted((form_fields(r) for r in posts(sky)), key=lambda f: f[0][1])
    assert sent[0] == [
        ("name", "job-1"), ("image", "images.canfar.net/skaha/terminal:1.1.2"),
        ("type", "headless"), ("cmd", "echo"), ("args", "hello world"), ("env", "MODE=test"),
        ("env", "REPLICA_ID=1"), ("env", "REPLICA_COUNT=2"),
    ]  # fmt: skip
    # Flexible: no cores or ram on the wire.
    assert all(k not in ("cores", "ram") for f in sent for k, _ in f)


def test_launch_fixed_notebook_uses_traits_from_python(sky):
    form = make_form(sky, kind="notebook", image="skaha/astroml", resources="fixed", cores=4, ram=16,
                     gpus=2, cmd="ignored-for-notebooks")  # fmt: skip
    ids = form.launch().result(5)
    assert ids == ["new00001"]
    (request,) = posts(sky)
    assert form_fields(request) == [
        ("name", form.name), ("image", "images.canfar.net/skaha/astroml:latest"), ("cores", "4"),
        ("ram", "16"), ("type", "notebook"), ("gpus", "2"), ("env", "REPLICA_ID=1"),
        ("env", "REPLICA_COUNT=1"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "-bad-"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"resources": "fixed", "cores": 3, "ram": 8}, "cores"),
        ({"resources": "fixed", "cores": 2, "ram": 1000}, "ram"),
        ({"gpus": 99}, "gpus"),
        ({"image": "ubuntu:latest"}, "image"),
        ({"kind": "headless", "env": "NOPE"}, "env"),
        ({"kind": "headless", "replicas": 513}, "replicas"),
    ],
)
def test_invalid_fields_are_rejected_inline_without_any_request(sky, change, field):
    form = make_form(sky)
    before = len(sky.requests)
    spec = {**form.spec(), "image": "skaha/astroml", **change}
    send(form, kind="launch", nonce="bad", spec=spec, registry=None)
    assert form._launch_future.result(5) == []
    assert field in form.field_errors
    assert form.field_errors[field]
    assert form.error.startswith("Not launched: check")
    assert posts(sky) == []
    assert len(sky.requests) == before
    if field == "name":
        assert "Name" in form.field_errors["name"]


def test_model_level_errors_map_to_fields():
    from pydantic import ValidationError

    from canfar_widgets.models import CreateRequest
    from canfar_widgets.widgets.launch import _model_errors

    with pytest.raises(ValidationError) as info:
        CreateRequest(name="a" * 61, image="s/x", kind="headless", replicas=10)
    assert list(_model_errors(info.value)) == ["name"]
    with pytest.raises(ValidationError) as info:
        CreateRequest(name="ok", image="ubuntu:latest", cores=999, kind="notebook")
    errors = _model_errors(info.value)
    assert set(errors) == {"image", "cores"}
    assert errors["cores"].startswith("Cores: ")


def test_server_refusal_is_shown_inline(sky):
    sky.create_reply = (400, "User alice has reached the maximum of 5 active sessions.\n")
    form = make_form(sky, image="skaha/astroml")
    send(form, kind="launch", nonce="x", spec=form.spec(), registry=None)
    with pytest.raises(Exception, match="maximum of 5"):
        form._launch_future.result(5)
    assert wait_until(lambda: "maximum of 5 active sessions" in form.error)
    assert form.error.startswith("Launch failed:")
    assert form.last_launched == []
    assert wait_until(lambda: form.done_nonce == "x" and not form.busy)
    # Exactly one POST: a create is never retried.
    assert len(posts(sky)) == 1


def test_double_click_launches_once(sky):
    gate = __import__("threading").Event()
    sky.on_request = lambda r: r.method == "POST" and gate.wait(5)
    form = make_form(sky, image="skaha/astroml")
    send(form, kind="launch", nonce="a", spec=form.spec(), registry=None)
    first = form._launch_future
    send(form, kind="launch", nonce="b", spec=form.spec(), registry=None)  # second click
    send(form, kind="launch", nonce="a", spec=form.spec(), registry=None)  # re-sent message
    gate.set()
    assert first.result(5) == ["new00001"]
    assert len(posts(sky)) == 1
    assert wait_until(lambda: form.done_nonce == "a")
    # After it finished, a deliberate new launch works again, but never the same nonce.
    send(form, kind="launch", nonce="a", spec=form.spec(), registry=None)
    assert len(posts(sky)) == 1
    send(form, kind="launch", nonce="c", spec=form.spec(), registry=None)
    assert form._launch_future.result(5) == ["new00002"]


def test_registry_secret_is_used_once_and_never_kept(sky, caplog):
    caplog.set_level(logging.DEBUG)
    form = make_form(sky, image="images.canfar.net/private/thing:1")
    message = {"kind": "launch", "nonce": "r", "spec": form.spec()}
    credentials = json.dumps({"username": "bob", "secret": SECRET}).encode()
    form._dispatch_message(form, message, [memoryview(credentials)])  # as the browser sends it
    assert SECRET not in json.dumps(message)  # never in the JSON content
    assert form._launch_future.result(5) == ["new00001"]
    (request,) = posts(sky)
    header = request.headers["x-skaha-registry-auth"]
    assert base64.b64decode(header).decode() == f"bob:{SECRET}"
    # A second launch without credentials sends no registry header: nothing was kept.
    send(form, kind="launch", nonce="r2", spec=form.spec(), registry=None)
    form._launch_future.result(5)
    assert "x-skaha-registry-auth" not in posts(sky)[1].headers
    state = repr(form.get_state()) + repr(form) + str(form._repr_mimebundle_())
    assert SECRET not in state and "bob:" not in state
    assert SECRET not in caplog.text and header not in caplog.text
    assert form.code(registry=True).count("ContainerRegistry()") == 1


def launch_with(form, nonce: str, credentials: dict[str, str]) -> None:
    """A Launch press with registry credentials, sent as js/launch_form.js sends it."""
    buffer = json.dumps(credentials).encode()
    form._dispatch_message(form, {"kind": "launch", "nonce": nonce, "spec": form.spec()}, [buffer])


def test_registry_secret_never_in_error_text(sky, caplog):
    caplog.set_level(logging.DEBUG)
    sky.create_reply = (400, f"bad credentials {SECRET}\n")  # a server echoing it back
    form = make_form(sky, image="images.canfar.net/private/thing:1")
    launch_with(form, "e", {"username": "bob", "secret": SECRET})
    with pytest.raises(Exception):  # noqa: B017 - any failure; the text is what matters
        form._launch_future.result(5)
    assert wait_until(lambda: form.error)
    assert SECRET not in form.error and SECRET not in form.status
    assert SECRET not in caplog.text
    # Half a credential, or an over-long one, is refused without echoing it.
    launch_with(form, "h", {"username": "", "secret": SECRET})
    assert form._launch_future.result(5) == []
    assert "registry" in form.field_errors and SECRET not in repr(form.get_state())
    launch_with(form, "l", {"username": "bob", "secret": SECRET * 30})
    assert form._launch_future.result(5) == []
    assert SECRET not in repr(form.get_state()) and SECRET not in caplog.text
    assert len(posts(sky)) == 1


def test_launch_from_python_with_registry_object(sky):
    form = make_form(sky, image="images.canfar.net/private/thing:1")
    ids = form.launch(registry=ContainerRegistry(username="bob", secret=SECRET)).result(5)
    assert ids == ["new00001"]
    assert "x-skaha-registry-auth" in posts(sky)[0].headers
    assert SECRET not in repr(form.get_state())


def test_context_failure_falls_back_to_client_limits(sky):
    sky.fail["context"] = (500, "boom")
    sky.stats_reply = (503, "temporarily unavailable: null\n", {"Retry-After": "0"})
    form = LaunchForm(sky.session(errors="raise"))
    form._ready.result(30)
    assert form.limits == {}
    assert form.load_limits == {}
    form.resources, form.cores, form.ram, form.image = "fixed", 300, 8, "skaha/x"
    assert form.launch().result(5) == []
    assert form.field_errors == {"cores": "Cores must be between 1 and 256."}


def test_repr_and_static_html(sky):
    form = make_form(sky, name="hogg-1", kind="headless", image="skaha/x", cmd="echo", args="<b>")
    assert repr(form).startswith("<LaunchForm: headless 'hogg-1'")
    html = form._static_html()
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "canfar-w" in html


# -- the browser and Python apply the same rules ---------------------------------------------------

PARITY_SPECS = [
    {"name": "ok-1", "kind": "notebook", "image": "skaha/astroml", "resources": "flexible"},
    {"name": "-bad", "kind": "notebook", "image": "ubuntu:latest", "resources": "fixed", "cores": 3,
     "ram": "x", "gpus": 9},
    {"name": "job", "kind": "headless", "image": "a/b/c:1", "resources": "fixed", "cores": 4,
     "ram": 16, "gpus": "2", "cmd": "echo", "args": 'say "hi" é', "env": "A=1\n# c\nB = two",
     "replicas": 3},
    {"name": "j" * 61, "kind": "headless", "image": "p/x", "resources": "flexible", "cmd": "a b",
     "env": "NOPE", "replicas": 10},
    {"name": "d", "kind": "desktop", "image": "p/x", "resources": "fixed", "cores": 999,
     "replicas": 5, "cmd": "x"},
    {"name": "", "kind": "nope", "image": "", "resources": "flexible", "gpus": 0, "replicas": None},
]  # fmt: skip
PARITY_LIMITS = {"cores": {"options": [1, 2, 4, 8]}, "ram": {"options": [1, 2, 4, 8, 16]},
                 "gpus": {"options": [1, 2]}}  # fmt: skip


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_browser_rules_match_python_rules(tmp_path):
    import json
    import subprocess
    from pathlib import Path

    rules = Path(__file__).resolve().parent.parent / "js" / "lib" / "launch_rules.js"
    script = tmp_path / "parity.mjs"
    script.write_text(
        f"import * as r from {json.dumps(rules.as_uri())};\n"
        f"const specs = {json.dumps(PARITY_SPECS)}; const limits = {json.dumps(PARITY_LIMITS)};\n"
        "console.log(JSON.stringify(specs.map((s) => ({errors: r.validateSpec(s, limits),"
        " kwargs: r.createKwargs(s), code: r.pythonCode(s, {registry: s.kind === 'headless'})}))));\n",
        encoding="utf-8",
    )
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=True)
    browser = json.loads(out.stdout)
    for spec, js in zip(PARITY_SPECS, browser, strict=True):
        assert js["errors"] == validate_spec(spec, PARITY_LIMITS), spec
        if not js["errors"]:
            assert js["kwargs"] == create_kwargs(spec), spec
            assert js["code"] == python_code(spec, registry=spec["kind"] == "headless"), spec
