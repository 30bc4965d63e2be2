"""LaunchForm: context-driven choices, inline validation before any request, the launch
itself (exact HTTP), double-click safety, registry secrets kept out of everything."""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import string
from urllib.parse import parse_qsl

import pytest
from widget_fakes import FakeSkaha, send, wait_until

from canfar_widgets import vocabulary
from canfar_widgets.models import ContainerRegistry
from canfar_widgets.vocabulary import as_json
from canfar_widgets.widgets.launch_form import PRIVATE_IMAGE, LaunchForm, default_name
from canfar_widgets.widgets.launch_rules import (
    LABELS,
    NAME_PATTERN,
    check_name,
    create_kwargs,
    launch_notes,
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
    assert message.startswith("Name")
    # Plain words (issue 15 item 5): the rule, never the regex.
    assert vocabulary.NAME_RULE in message
    assert NAME_PATTERN not in message and "^" not in message


def test_validate_spec_mirrors_the_browser_rules():
    limits = {
        "cores": {"options": [1, 2, 4]},
        "ram": {"options": [1, 8]},
        "gpus": {"options": [1, 2]},
    }
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
    assert (
        "too long for 10 replicas"
        in validate_spec({**headless, "name": "a" * 61, "cmd": "", "env": "", "replicas": 10})[
            "name"
        ]
    )


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
        "name": "n",
        "image": "skaha/x",
        "kind": "desktop",
        "gpu": 1,
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
    # In GiB, as PlatformLoad says it ("32Gi" is 32, not 34.36 decimal GB: issue 15 item 14).
    assert form.load_limits == {"cores": 8.0, "ram": pytest.approx(32.0, abs=0.01)}
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


def test_a_form_launch_builds_one_request_and_hands_it_over(sky, monkeypatch):
    # The form validates, builds one CreateRequest and the client posts that very object:
    # no second build on the way (it once went dict -> keywords -> CreateRequest again).
    from canfar_widgets import sessions
    from canfar_widgets.models import CreateRequest

    built: list[CreateRequest] = []
    original = CreateRequest.model_post_init

    def count(self, context):
        built.append(self)
        return original(self, context)

    monkeypatch.setattr(CreateRequest, "model_post_init", count)
    handed: list[object] = []
    # The form launches through launch_replicas (it reports each replica's outcome).
    launch_replicas = sessions.AsyncSession.launch_replicas

    async def spy(self, request, *args, **kwargs):
        handed.append(request)
        return await launch_replicas(self, request, *args, **kwargs)

    monkeypatch.setattr(sessions.AsyncSession, "launch_replicas", spy)
    form = make_form(sky, kind="headless", image="skaha/terminal:1.1.2", cmd="echo", replicas=3)
    ids = form.launch().result(5)
    assert len(ids) == 3 and len(posts(sky)) == 3
    assert len(built) == 1
    assert len(handed) == 1 and handed[0] is built[0]  # the same object, typed, with its replicas
    assert built[0].replicas == 3


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
    from canfar_widgets.widgets.launch_rules import model_errors as _model_errors

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
    {"name": "big", "kind": "notebook", "image": "images.canfar.net/me/own:1", "resources": "fixed",
     "cores": 17, "ram": 3},
    {"name": "big", "kind": "notebook", "image": "skaha/astroml", "resources": "fixed", "cores": 16,
     "ram": 500},
    {"name": "noargs", "kind": "headless", "image": "skaha/astroml", "resources": "flexible",
     "args": "-v 3", "replicas": 1},
]  # fmt: skip
PARITY_LIMITS = {"cores": {"options": [1, 2, 4, 8]}, "ram": {"options": [1, 2, 4, 8, 16]},
                 "gpus": {"options": [1, 2]}}  # fmt: skip
# The real platform's shape: 16 core choices, 28 RAM choices (a list would read like a dump).
MANY_LIMITS = {"cores": {"options": list(range(1, 17))},
               "ram": {"options": [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 26, 28, 30, 32, 36, 40, 44,
                                   48, 56, 64, 80, 92, 112, 128, 140, 160, 192]}}  # fmt: skip
PARITY_IMAGES = {
    "notebook": ["skaha/astroml"],
    "headless": ["skaha/astroml", "skaha/terminal:1.1.2"],
}


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_browser_rules_match_python_rules(tmp_path):
    import json
    import subprocess
    from pathlib import Path

    rules = Path(__file__).resolve().parents[2] / "js" / "lib" / "launch_rules.js"
    script = tmp_path / "parity.mjs"
    script.write_text(
        f"import * as r from {json.dumps(rules.as_uri())};\n"
        f"const specs = {json.dumps(PARITY_SPECS)}; const limits = {json.dumps(PARITY_LIMITS)};\n"
        f"const many = {json.dumps(MANY_LIMITS)}; const images = {json.dumps(PARITY_IMAGES)};\n"
        "console.log(JSON.stringify(specs.map((s) => ({errors: r.validateSpec(s, limits),"
        " kwargs: r.createKwargs(s), code: r.pythonCode(s, {registry: s.kind === 'headless'}),"
        " many: r.validateSpec(s, many), notes: r.launchNotes(s, images)}))));\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        ["node", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**__import__("os").environ, "CANFAR_VOCABULARY": as_json()},
    )
    browser = json.loads(out.stdout)
    for spec, js in zip(PARITY_SPECS, browser, strict=True):
        assert js["errors"] == validate_spec(spec, PARITY_LIMITS), spec
        assert js["many"] == validate_spec(spec, MANY_LIMITS), spec
        assert js["notes"] == launch_notes(spec, PARITY_IMAGES), spec
        if not js["errors"]:
            assert js["kwargs"] == create_kwargs(spec), spec
            assert js["code"] == python_code(spec, registry=spec["kind"] == "headless"), spec


# The twins over a generated corpus: every field's edge values, one at a time on valid specs and
# in seeded random combinations, against four shapes of limits. One node run answers them all.
# "\u0663" (Arabic-Indic 3) and "\uff14" (fullwidth 4) are digits to Python, not whole numbers.
_NUMBERS = [None, "", " ", "0", "1", "2", "3", "7", "8", "9", "10", "16", "17", "192", "193",
            "300", "513", "x", "2.5", "-1", " 4 ", "007", "\u0663", "\uff14", 0, 1, 2, 3, 4.0,
            2.5, -1, 99, 600, True]  # fmt: skip
CORPUS_EDGES = {
    "name": ["", "  ", "ok", "-a", "a-", "a_b", "a b", "émile", " pad ", "A9", "j" * 58, "j" * 60,
             "j" * 61, "j" * 62, "j" * 63, "j" * 64, None],
    "kind": [*vocabulary.LAUNCH_KINDS, "desktop-app", "nope", "", None],
    "image": ["", "skaha/astroml", "ubuntu:latest", "a/b/c:1", "a/b/c/d", "a//b", "/a/b", "a/b/",
              "a/b c", " p/x ", "a\tb/c", "images.canfar.net/me/own:1", "skaha/terminal:1.1.2"],
    "resources": ["flexible", "fixed", None],
    "cores": _NUMBERS,
    "ram": _NUMBERS,
    "gpus": _NUMBERS,
    "replicas": _NUMBERS,
    "cmd": ["", "echo", "a b", " echo ", "a\tb", None],
    "args": ["", "-v 3", 'say "hi" é', "{x}", None],
    "env": ["", "A=1", "A=1\n# c\nB = two", "NOPE", "1A=x", "A=b=c", "=x", "A=1\r\nB",
            " # only", "A=1\n\nB=2=3", "_a = {b}", "A-B=1"],
}  # fmt: skip
CORPUS_LIMITS = [
    {},
    PARITY_LIMITS,
    MANY_LIMITS,
    # One choice, none, and nine (just above LIST_AT_MOST: the range and the nearest two).
    {"cores": {"options": [4]}, "ram": {"options": []}, "gpus": {"options": list(range(1, 10))}},
]
_BASES = [
    {"name": "ok", "kind": "notebook", "image": "skaha/astroml", "resources": "fixed", "cores": 2,
     "ram": 8, "gpus": None},
    {"name": "job", "kind": "headless", "image": "skaha/terminal:1.1.2", "resources": "fixed",
     "cores": "4", "ram": "16", "gpus": "1", "cmd": "echo", "args": "-v", "env": "A=1",
     "replicas": "3"},
]  # fmt: skip


def launch_corpus(size: int = 1500, seed: int = 0) -> list[dict]:
    """Each edge value on each valid base spec, then ``size`` seeded random combinations."""
    specs = [{**base, field: value} for base in _BASES for field, values in CORPUS_EDGES.items()
             for value in values]  # fmt: skip
    rng = random.Random(seed)
    specs += [{f: rng.choice(v) for f, v in CORPUS_EDGES.items()} for _ in range(size)]
    return specs


def _template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _template_words(template: str) -> str:
    """A template's longest stretch of plain words (what a copy of it would contain)."""
    return max((text for text, *_ in string.Formatter().parse(template)), key=len)


def test_launch_messages_are_plain_templates():
    # Only {name} placeholders: no format spec, conversion, index or "{{", which the browser's
    # one-line format() does not read as str.format does.
    for key, template in vocabulary.LAUNCH_MESSAGES.items():
        for _, field, spec, conversion in string.Formatter().parse(template):
            assert field is None or (field.isidentifier() and not spec and conversion is None), key
        assert "{{" not in template and "}}" not in template, key
    assert json.loads(as_json())["launchMessages"] == vocabulary.LAUNCH_MESSAGES


def test_the_twins_hold_no_message_words_of_their_own():
    # Each rule has one source: a template's words are in vocabulary.py, not in a twin's code
    # (its docstrings and comments may quote them, as examples).
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    python = ast.parse((root / "canfar_widgets/widgets/launch_rules.py").read_text("utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(python)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)}  # fmt: skip
    js = (root / "js/lib/launch_rules.js").read_text("utf-8")
    twins = {
        "launch_rules.py": "\n".join(
            node.value
            for node in ast.walk(python)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            if id(node) not in docstrings
        ),
        "launch_rules.js": re.sub(r"//.*", "", js),
    }
    for key, template in vocabulary.LAUNCH_MESSAGES.items():
        words = _template_words(template)
        if len(words) < 12:  # e.g. " is required.": too short to tell a copy from a comment
            continue
        for path, text in twins.items():
            assert words not in text, f"{path} spells out LAUNCH_MESSAGES[{key!r}]"


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_browser_rules_match_python_rules_on_a_corpus(tmp_path):
    import subprocess
    from pathlib import Path

    from canfar_widgets.widgets.launch_rules import check_image, describe_options

    specs = launch_corpus()
    fields = {key: {f: f"<{f}{{x}}>" for f in _template_fields(t)}
              for key, t in vocabulary.LAUNCH_MESSAGES.items()}  # fmt: skip
    option_lists = [[5], [1, 2], [1, 2, 3], [1, 2, 4, 6, 8, 9, 10], [3, 1, 2, 2], [*range(1, 17)]]
    lib = Path(__file__).resolve().parents[2] / "js" / "lib"
    script = tmp_path / "corpus.mjs"
    script.write_text(
        f"import * as r from {json.dumps((lib / 'launch_rules.js').as_uri())};\n"
        f"import {{ VOCABULARY }} from {json.dumps((lib / 'vocabulary.js').as_uri())};\n"
        "import { readFileSync } from 'node:fs';\n"
        "const data = JSON.parse(readFileSync(process.argv[2], 'utf8'));\n"
        "const out = {specs: data.specs.map((s) => {\n"
        "  const errors = data.limits.map((l) => r.validateSpec(s, l));\n"
        "  const valid = Object.keys(errors[0]).length === 0;\n"
        "  return {errors, notes: r.launchNotes(s, data.images),\n"
        "    kwargs: valid ? r.createKwargs(s) : null,\n"
        "    code: valid ? r.pythonCode(s, {registry: s.kind === 'headless'}) : null};\n"
        "}),\n"
        " env: data.envs.map((e) => [r.parseEnv(e).env, r.parseEnv(e).error]),\n"
        " images: data.imgs.map(r.checkImage), names: data.names.map(r.checkName),\n"
        " options: data.options.map(r.describeOptions),\n"
        " messages: Object.fromEntries(Object.entries(data.fields).map(([k, f]) =>\n"
        "   [k, r.format(VOCABULARY.launchMessages[k], f)]))};\n"
        "console.log(JSON.stringify(out));\n",
        encoding="utf-8",
    )
    data = tmp_path / "corpus.json"
    data.write_text(json.dumps({
        "specs": specs, "limits": CORPUS_LIMITS, "images": PARITY_IMAGES,
        "envs": CORPUS_EDGES["env"], "imgs": CORPUS_EDGES["image"],
        "names": CORPUS_EDGES["name"], "options": option_lists, "fields": fields,
    }), encoding="utf-8")  # fmt: skip
    run = subprocess.run(
        ["node", str(script), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**__import__("os").environ, "CANFAR_VOCABULARY": as_json()},
    )
    browser = json.loads(run.stdout)
    # JSON both ways, so a tuple or a float on one side is not a difference.
    same = lambda a, b: json.loads(json.dumps(a)) == json.loads(json.dumps(b))  # noqa: E731
    differ: list[str] = []
    for spec, js in zip(specs, browser["specs"], strict=True):
        python = [validate_spec(spec, limits) for limits in CORPUS_LIMITS]
        valid = not python[0]
        mine = {
            "errors": python,
            "notes": launch_notes(spec, PARITY_IMAGES),
            "kwargs": create_kwargs(spec) if valid else None,
            "code": python_code(spec, registry=spec["kind"] == "headless") if valid else None,
        }
        differ += [f"{k}: {spec!r}\n  js: {js[k]!r}\n  py: {v!r}" for k, v in mine.items()
                   if not same(js[k], v)]  # fmt: skip
    others = {
        "env": [list(parse_env(e)) for e in CORPUS_EDGES["env"]],
        "images": [check_image(i) for i in CORPUS_EDGES["image"]],
        "names": [check_name(n) for n in CORPUS_EDGES["name"]],
        "options": [describe_options(o) for o in option_lists],
        "messages": {k: t.format(**fields[k]) for k, t in vocabulary.LAUNCH_MESSAGES.items()},
    }
    differ += [f"{k}:\n  js: {browser[k]!r}\n  py: {v!r}" for k, v in others.items()
               if not same(browser[k], v)]  # fmt: skip
    assert not differ, f"{len(differ)} answers differ; the first:\n" + "\n".join(differ[:5])
    # The corpus reaches every message (a corpus that misses one would prove nothing about it).
    said = json.dumps(others) + json.dumps(browser["specs"])
    for key, template in vocabulary.LAUNCH_MESSAGES.items():
        assert _template_words(template) in said, f"the corpus never says LAUNCH_MESSAGES[{key!r}]"


# -- plain words (issue 15 item 5) and notes before a launch (items 2, 6) ---------------------------


def test_resource_errors_say_the_range_not_the_list():
    spec = {
        "name": "ok",
        "kind": "notebook",
        "image": "skaha/astroml",
        "resources": "fixed",
        "cores": 2,
    }
    assert (
        validate_spec({**spec, "ram": 500}, MANY_LIMITS)["ram"]
        == "RAM must be between 1 and 192 GiB."
    )
    assert (
        validate_spec({**spec, "ram": 0}, MANY_LIMITS)["ram"]
        == "RAM must be between 1 and 192 GiB."
    )
    # Inside the range but not offered: the nearest two, never the 28 values.
    assert validate_spec({**spec, "ram": 3}, MANY_LIMITS)["ram"] == (
        "RAM 3 GiB is not offered by the platform: the nearest are 2 and 4 GiB."
    )
    assert (
        validate_spec({**spec, "cores": 17, "ram": 8}, MANY_LIMITS)["cores"]
        == "Cores must be between 1 and 16."
    )
    assert validate_spec({**spec, "ram": 8}, MANY_LIMITS) == {}


def test_launch_notes_warn_about_foreign_images_and_args_without_command():
    images = {
        "desktop": ["images.canfar.net/skaha/desktop:1"],
        "headless": ["skaha/terminal:1.1.2"],
    }
    notes = launch_notes(
        {"kind": "desktop", "image": "images.canfar.net/skaha/astroml:latest"}, images
    )
    assert notes == [
        "images.canfar.net/skaha/astroml:latest is not one of the platform's desktop images: "
        "it may not start as a desktop session."
    ]
    assert (
        launch_notes({"kind": "desktop", "image": "images.canfar.net/skaha/desktop:1"}, images)
        == []
    )
    assert launch_notes({"kind": "desktop", "image": "x"}, {}) == []  # images not loaded: no guess
    job = {"kind": "headless", "image": "skaha/terminal:1.1.2", "args": "-v 3"}
    assert launch_notes(job, images) == [
        "No command: the image's own command gets these arguments (-v 3)."
    ]
    assert launch_notes({**job, "cmd": "python"}, images) == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"cmd": "echo", "args": "$HOME"}, "args", "CANFAR refuses a '$'"),
        ({"cmd": "echo", "args": 'say "hi"'}, "args", "double quote"),
        ({"cmd": "echo", "env": "WHERE=C:\\\\data"}, "env", "backslash"),
        ({"cmd": "echo", "env": "=x"}, "env", "KEY=VALUE"),
    ],
)
def test_what_canfar_would_refuse_is_said_inline_before_any_request(sky, change, field, words):
    # issue 11 section 5: CreateRequest's refusal, on the field it concerns, nothing sent.
    form = make_form(sky)
    spec = {**form.spec(), "kind": "headless", "image": "skaha/terminal:1.1.2", **change}
    send(form, kind="launch", nonce="q", spec=spec, registry=None)
    assert form._launch_future.result(5) == []
    assert words in form.field_errors[field], form.field_errors
    assert form.error == f"Not launched: check {LABELS[field]}." and form.status == ""
    assert posts(sky) == []


def test_private_image_refusal_in_plain_words(sky):
    sky.create_reply = (
        400,
        "No authentication provided for unknown or private image.  Use "
        "x-skaha-registry-auth request header with base64Encode(username:secret).\n",
    )
    form = make_form(sky, image="images.canfar.net/someone/private:1")
    send(form, kind="launch", nonce="p", spec=form.spec(), registry=None)
    assert form._launch_future.result(5) == []
    assert form.field_errors == {"image": PRIVATE_IMAGE}
    assert "Private image registry" in PRIVATE_IMAGE
    # Said once (the field says what to do, the alert points at it), never the header's name.
    assert form.error == "Not launched: check Image." and form.status == ""
    assert "x-skaha" not in form.error + form.status + json.dumps(form.field_errors)


# -- safe create through the form (issue 11 section 3) -----------------------------------------------


def lose_answers(sky, *, create: bool):
    """Each POST reaches the platform (which creates the session when ``create``), then its
    answer is lost as a read timeout."""
    import httpx

    def on_request(request):
        if request.method == "POST":
            if create:
                sky.add(
                    f"lost{len(sky.sessions):03d}",
                    status="Pending",
                    name=dict(parse_qsl(request.content.decode()))["name"],
                )
            raise httpx.ReadTimeout("the answer was lost", request=request)

    sky.on_request = on_request


def quick_looks(form):
    from canfar_widgets.reconcile import Reconcile

    form.source.session.reconcile = Reconcile(looks=2, delay=0.05)


def test_a_lost_answer_found_by_name_is_shown_as_launched(sky):
    form = make_form(sky, kind="headless", image="skaha/terminal:1.1.2", cmd="echo", name="found-1")
    quick_looks(form)
    lose_answers(sky, create=True)
    ids = form.launch().result(10)
    assert ids == ["lost000"]
    assert form.status == (
        "Launched 1 session (the platform's answer was lost; found it by name): lost000"
    )
    assert form.error == "" and form.unknown_outcome == {} and form.last_launched == ["lost000"]
    assert len(posts(sky)) == 1  # never sent again


def test_an_unknown_outcome_holds_the_same_spec_and_look_again_finds_it(sky):
    form = make_form(sky, kind="headless", image="skaha/terminal:1.1.2", cmd="echo", name="maybe-1")
    quick_looks(form)
    lose_answers(sky, create=False)
    assert form.launch().result(10) == []
    assert form.unknown_outcome["names"] == ["maybe-1"]
    assert "Outcome unknown" in form.error and "Look again" in form.error
    assert "ReadTimeout" in form.error
    assert len(posts(sky)) == 1
    # The natural retry (a second click on the same spec) is refused: no duplicate.
    sky.on_request = None
    send(form, kind="launch", nonce="again", spec=form.spec(), registry=None)
    assert form._launch_future is not None
    assert wait_until(lambda: form.error.startswith("Not launched again"))
    assert "Look again" in form.error
    assert wait_until(lambda: form.done_nonce == "again")
    assert len(posts(sky)) == 1
    # Looking again before it appeared: still unknown, still held.
    assert form.look_again().result(5) == []
    assert form.error.startswith("Still not found") and form.unknown_outcome["names"] == ["maybe-1"]
    # The platform had made it after all (a slow image pull): "Look again" finds it by name.
    sky.add("late0001", status="Pending", name="maybe-1")
    send(form, kind="look_again")
    assert wait_until(lambda: form.unknown_outcome == {})
    assert (
        form.status
        == "Launched 1 session (the platform's answer was lost; found it by name): late0001"
    )
    assert form.error == "" and form.last_launched == ["late0001"]
    # Found: the hold is over, a deliberate new launch of the same spec goes out.
    send(form, kind="launch", nonce="new", spec=form.spec(), registry=None)
    assert form._launch_future.result(5) == ["new00001"]
    assert len(posts(sky)) == 2


def test_the_hold_is_for_the_same_spec_only_and_for_a_few_seconds(sky, monkeypatch):
    form = make_form(sky, kind="headless", image="skaha/terminal:1.1.2", cmd="echo", name="held-1")
    quick_looks(form)
    lose_answers(sky, create=False)
    form.launch().result(10)
    sky.on_request = None
    form.name = "other-1"  # another spec is another launch
    assert form.launch().result(5) == ["new00001"]
    form.name = "held-1"
    assert form.launch().result(5) == []  # still held
    monkeypatch.setattr(LaunchForm, "hold_seconds", 0.0)
    form._held = (form._held[0], 0.0, form._held[2])  # the few seconds are over
    assert form.launch().result(5) == ["new00002"]
    assert len(posts(sky)) == 3


def test_form_notes_use_the_platforms_images(sky):
    form = make_form(sky, kind="carta", image="images.canfar.net/skaha/astroml:latest")
    assert wait_until(lambda: "carta" in form.images)
    assert form.notes() == [
        "images.canfar.net/skaha/astroml:latest is not one of the platform's carta images: "
        "it may not start as a carta session."
    ]
    form.image = "images.canfar.net/skaha/carta:4.0"
    assert form.notes() == []


def test_the_form_names_its_ram_unit_as_gib_everywhere():
    """Issue 15, item 14: the form's labels, hints and messages say GiB, as PlatformLoad's
    numbers beside it do (widgets/capacity.py); the server still gets whole GiB ("G")."""
    from pathlib import Path

    from canfar_widgets.widgets.launch_rules import LABELS

    assert LABELS["ram"] == "RAM (GiB)"
    root = Path(__file__).resolve().parents[2]
    for path in (
        "js/launch_form.js",
        "js/lib/launch_rules.js",
        "canfar_widgets/widgets/launch_rules.py",
        "canfar_widgets/vocabulary.py",  # where the messages' words live
    ):
        text = (root / path).read_text().replace("memoryGB", "")
        assert not re.search(r"\bGB\b", text), f"{path} names decimal GB"
