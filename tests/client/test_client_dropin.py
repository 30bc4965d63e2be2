"""Drop-in for canfar 1.5.2 (issue 11 §1-2): the same public scenarios run against both clients.

Each scenario drives the official ``canfar`` Session/AsyncSession and ours side by side on
the same respx routes (the official client through :class:`RespxBridge`, as in
``test_sessions_compat.py``) and asserts the same public outcome: which exception class
*name*, which attributes, which results, and that no request was sent when none may be.
Where this client deliberately differs, the test says so and checks both sides.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import httpx
import pytest
from canfar.sessions import AsyncSession as OfficialAsyncSession
from canfar.sessions import Session as OfficialSession
from pydantic import ValidationError
from test_sessions_compat import RespxBridge
from wire_support import BASE, TOKEN, record

import canfar_widgets
from canfar_widgets.errors import AuthenticationError, CanfarError, NotFound, SessionRequestError
from canfar_widgets.models import SessionRecord
from canfar_widgets.sessions import AsyncSession, Session

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")

IMAGE = "images.canfar.net/skaha/terminal:1.1.2"
LABELS = ["official-sync", "official-async", "ours-sync", "ours-async"]


def make_clients(respx_mock: Any, **kwargs: Any) -> dict[str, Any]:
    # canfar refuses an injected transport with X.509; those clients get none (and a
    # loopback URL, so nothing could leave this machine even if they did send).
    official = {"transport": RespxBridge(respx_mock)} if "token" in kwargs else {}
    return {
        "official-sync": OfficialSession(**official, **kwargs),
        "official-async": OfficialAsyncSession(**official, **kwargs),
        "ours-sync": Session(**kwargs),
        "ours-async": AsyncSession(**kwargs),
    }


def call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    bound = getattr(client, method)
    if isinstance(client, (OfficialAsyncSession, AsyncSession)):
        return asyncio.run(bound(*args, **kwargs))
    return bound(*args, **kwargs)


def raised(client: Any, method: str, *args: Any, **kwargs: Any) -> BaseException:
    with pytest.raises(Exception) as info:  # the class is what the caller compares
        call(client, method, *args, **kwargs)
    return info.value


def status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


@pytest.fixture
def routes(respx_mock):
    respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(text="hi\n")
    respx_mock.get(BASE + "session/zz", params={"view": "logs"}).respond(404, text="nope\n")
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))  # after: it matches any query
    respx_mock.get(BASE + "session/zz").respond(404, text="session zz not found\n")
    respx_mock.delete(BASE + "session/a1").respond(200)
    respx_mock.delete(BASE + "session/zz").respond(404, text="session zz not found\n")
    respx_mock.post(BASE + "session/a1").respond(200)
    respx_mock.post(BASE + "session/zz").respond(400, text="No active job\n")

    def create(request: httpx.Request) -> httpx.Response:
        text = request.url.query.decode() + request.content.decode()
        if "job-2" in text:
            return httpx.Response(
                400, text="session image 'x' must come from one of [images.canfar.net]\n"
            )
        return httpx.Response(200, text="q2w8e4r6\n")

    respx_mock.post(BASE + "session").mock(side_effect=create)
    return respx_mock


# -- errors="raise": SessionRequestError with the same attributes ----------------------------


@pytest.mark.parametrize(
    ("method", "args", "results", "keys"),
    [
        ("info", (["a1", "zz"],), [record("a1")], ["zz"]),
        ("logs", (["zz", "a1"],), {"a1": "hi\n"}, ["zz"]),
        ("destroy", (["a1", "zz"],), {"a1": True, "zz": False}, ["zz"]),
        ("renew", (["a1", "zz"],), {"a1": True, "zz": False}, ["zz"]),
    ],
)
def test_raise_gives_session_request_error_like_canfar(routes, method, args, results, keys):
    clients = make_clients(routes, url=BASE, token=TOKEN)
    for label in LABELS:
        error = raised(clients[label], method, *args, errors="raise")
        assert type(error).__name__ == "SessionRequestError", label
        assert error.operation == method, label
        assert error.results == results, label
        assert list(error.errors) == keys, label
        assert status_of(error.errors[keys[0]]) in (404, 400), label
    ours = raised(clients["ours-sync"], method, *args, errors="raise")
    # ours is also this package's error, and the failed item's own class
    assert isinstance(ours, SessionRequestError) and isinstance(ours, CanfarError)
    assert isinstance(ours, httpx.HTTPStatusError)
    assert canfar_widgets.SessionRequestError is SessionRequestError


def test_create_raise_keys_failures_by_replica_number(routes):
    clients = make_clients(routes, url=BASE, token=TOKEN)
    for label in LABELS:
        error = raised(clients[label], "create", "job", image=IMAGE, replicas=3, errors="raise")
        assert type(error).__name__ == "SessionRequestError", label
        assert (error.operation, error.results, list(error.errors)) == (
            "create",
            ["q2w8e4r6", "q2w8e4r6"],
            [2],
        ), label
        assert status_of(error.errors[2]) == 400


# -- CANFAR_ERRORS: keyword > environment > default ---------------------------------------------


def test_canfar_errors_environment_is_honoured(routes, monkeypatch):
    monkeypatch.setenv("CANFAR_ERRORS", "raise")
    clients = make_clients(routes, url=BASE, token=TOKEN)
    for label in LABELS:
        assert clients[label].errors == "raise", label
        assert type(raised(clients[label], "info", ["zz"])).__name__ == "SessionRequestError"
        assert call(clients[label], "info", ["zz"], errors="ignore") == [], label  # call beats env
    kept = make_clients(routes, url=BASE, token=TOKEN, errors="ignore")
    for label in LABELS:
        assert kept[label].errors == "ignore", label  # the keyword beats the environment


def test_a_bad_canfar_errors_value_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CANFAR_ERRORS", "loudly")
    with pytest.raises(ValueError, match="CANFAR_ERRORS must be 'ignore' or 'raise'"):
        Session(url=BASE, token=TOKEN)


# -- bad literals: pydantic's ValidationError naming the allowed values, before any request ----


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"kind": "laptop"}, "'notebook'"),
        ({"status": "Sleeping"}, "'Running'"),
        ({"kind": 3}, "'headless'"),
    ],
)
def test_bad_fetch_literals_raise_validation_error(respx_mock, kwargs, named):
    clients = make_clients(respx_mock, url=BASE, token=TOKEN)
    for label in LABELS:
        error = raised(clients[label], "fetch", **kwargs)
        assert isinstance(error, ValidationError) and isinstance(error, ValueError), label
        assert named in str(error), label
        assert next(iter(kwargs)) in str(error), label
    assert respx_mock.calls.call_count == 0


def test_bad_view_raises_validation_error(api, respx_mock):
    with pytest.raises(ValidationError, match="'all', 'interactive'"):
        api.fetch(view="everything")
    assert respx_mock.calls.call_count == 0


# -- a saved X.509 login without its certificate: an authentication error, nothing sent ---------


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("info", ("a1",), {}),
        ("create", ("job",), {"image": IMAGE}),
        ("destroy", ("a1",), {}),
        ("fetch", (), {}),
        ("logs", ("a1",), {}),
    ],
)
def test_missing_certificate_raises_before_any_request(respx_mock, method, args, kwargs):
    # Default configuration: the CADC X.509 login with ~/.ssl/cadcproxy.pem, which is absent.
    clients = make_clients(respx_mock, url="http://127.0.0.1:9/skaha/v1")
    for label in LABELS:
        error = raised(clients[label], method, *args, **kwargs)
        assert type(error).__name__ in ("AuthRequiredError", "AuthenticationError"), label
    ours = raised(clients["ours-async"], method, *args, **kwargs)
    assert isinstance(ours, AuthenticationError)
    assert "canfar auth login" in str(ours) and ".ssl/cadcproxy.pem" in str(ours)
    assert respx_mock.calls.call_count == 0
    assert "auth='none'" in repr(clients["ours-sync"])  # building the client still works


def test_missing_certificate_with_ignore_still_raises(respx_mock):
    # Not an item failure: errors="ignore" would otherwise turn "not logged in" into [].
    with pytest.raises(AuthenticationError):
        Session(errors="ignore").info(["a1", "b2"])
    assert respx_mock.calls.call_count == 0


# -- verbose=True: stdout here, the canfar.sessions logger there (a documented difference) ------


def test_verbose_prints_to_stdout_where_canfar_logs(routes, capsys, caplog):
    clients = make_clients(routes, url=BASE, token=TOKEN)
    with caplog.at_level(logging.INFO, logger="canfar.sessions"):
        for label in LABELS:
            assert call(clients[label], "logs", "a1", verbose=True) is None, label
    printed = capsys.readouterr().out
    assert printed.count("── Session a1 ──\nhi\n") == 2  # ours, sync and async
    logged = [r.getMessage() for r in caplog.records if r.name == "canfar.sessions"]
    assert any("hi" in message for message in logged)  # theirs


# -- seed examples: records wherever ids are (issue 11 §2) --------------------------------------


def test_connect_accepts_what_fetch_returned(make_api, respx_mock, monkeypatch):
    import webbrowser

    api = make_api()
    url = "https://example.org/session/notebook/a1/lab"
    running = [record("a1", connectURL=url, type="notebook")]
    respx_mock.get(BASE + "session").respond(json=running)
    respx_mock.get(BASE + "session/a1").respond(json=running[0])
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open_new_tab", opened.append)
    api.connect(api.fetch(kind="notebook", status="Running"))  # the seed document's example
    assert opened == [url]


@pytest.mark.parametrize("method", ["info", "logs", "events", "destroy", "renew", "wait"])
def test_every_method_accepts_records_dicts_and_models(api, respx_mock, method):
    respx_mock.get(url__regex=r".*/session/(a1|b2)\?view=.*").respond(text="x\n")
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    respx_mock.get(BASE + "session/b2").respond(json=record("b2"))
    respx_mock.delete(url__regex=r".*/session/(a1|b2)$").respond(200)
    respx_mock.post(url__regex=r".*/session/(a1|b2)$").respond(200)
    model = SessionRecord.model_validate(record("b2"))
    by_records = getattr(api, method)([record("a1"), model])
    by_ids = getattr(api, method)(["a1", "b2"])
    assert by_records == by_ids
    assert getattr(api, method)(record("a1")) == getattr(api, method)("a1")  # one record alone
    with pytest.raises(ValueError, match="without an 'id'"):
        getattr(api, method)([{"name": "no id"}])


@pytest.mark.parametrize("keyword", ["id", "session_id"])
@pytest.mark.parametrize("method", ["info", "logs", "destroy"])
def test_old_id_keywords_work_with_a_deprecation_warning(api, respx_mock, keyword, method):
    respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(text="x\n")
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    respx_mock.delete(BASE + "session/a1").respond(200)
    with pytest.warns(
        DeprecationWarning, match=rf"{method}\({keyword}=...\) is deprecated: .* named ids"
    ) as seen:
        result = getattr(api, method)(**{keyword: "a1"})
    assert result == getattr(api, method)("a1")
    if api.flavour == "sync":
        assert seen[0].filename == __file__  # points at the caller's line
    else:

        async def user_code() -> None:
            await getattr(api.client, method)(**{keyword: "a1"})

        with pytest.warns(DeprecationWarning) as seen:
            asyncio.run(user_code())
        assert seen[0].filename == __file__  # the awaiting line
    with pytest.raises(TypeError, match="got the sessions twice"):
        getattr(api, method)("a1", id="a1")


def test_short_create_warns_how_many_and_why(api, respx_mock):
    respx_mock.post(BASE + "session").respond(
        400, text="session image 'images.canfar.net/skaha/base-notebook:latest' is not known\n"
    )
    with pytest.warns(
        Warning,
        match=r"launched 0 of 3 sessions \('test'\): replica 1/3: BadRequest 400: "
        r"session image .* is not known",
    ):
        ids = api.create(
            name="test",
            image="images.canfar.net/skaha/base-notebook:latest",
            cores=2,
            ram=8,
            gpu=1,
            kind="headless",
            cmd="env",
            env={"KEY": "VALUE"},
            replicas=3,
        )
    assert ids == []


def test_a_full_create_does_not_warn(api, respx_mock):
    respx_mock.post(BASE + "session").respond(text="q2w8e4r6\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert api.create("ok", image=IMAGE, replicas=2) == ["q2w8e4r6", "q2w8e4r6"]


# -- fetch(view=...) ------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["all", "interactive"])
def test_fetch_view(api, respx_mock, view):
    rows = [
        {
            "userid": "alice",
            "type": "notebook",
            "status": "Running",
            "startTime": "2026-12-01T10:00:00Z",
        }
    ]
    route = respx_mock.get(BASE + "session").respond(json=rows)
    assert api.fetch(view=view) == rows
    assert list(route.calls.last.request.url.params.multi_items()) == [("view", view)]


# -- destroy_with: positional form, lists of statuses, no silent "every status" -------------------


def _listing(respx_mock):
    rows = {
        "Completed": [record("c1", "Completed", name="scan-1")],
        "Failed": [record("f1", "Failed", name="scan-2")],
        "Running": [record("r1", "Running", name="scan-3")],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        status = request.url.params.get("status")
        found = rows.get(status, []) if status else [r for group in rows.values() for r in group]
        return httpx.Response(200, json=found)

    listing = respx_mock.get(BASE + "session").mock(side_effect=answer)
    deletes = respx_mock.delete(url__regex=r".*/session/\w\d$").respond(200)
    return listing, deletes


def test_destroy_with_a_list_of_statuses_is_one_call(api, respx_mock):
    _, deletes = _listing(respx_mock)
    assert api.destroy_with("scan-", "headless", ["Completed", "Failed"]) == {
        "c1": True,
        "f1": True,
    }
    assert sorted(c.request.url.path.rsplit("/", 1)[1] for c in deletes.calls) == ["c1", "f1"]


def test_destroy_with_status_none_is_refused_and_any_is_explicit(api, respx_mock):
    listing, deletes = _listing(respx_mock)
    with pytest.raises(ValueError, match="status='any'"):
        api.destroy_with("scan-", status=None)
    with pytest.raises(ValueError, match="status='any'"):
        api.destroy_with("scan-", "headless", None)
    assert respx_mock.calls.call_count == 0  # refused before any request: nothing deleted
    assert api.destroy_with("scan-", status="any") == {"c1": True, "f1": True, "r1": True}
    assert "status" not in listing.calls.last.request.url.params
    assert deletes.call_count == 3


def test_destroy_with_keeps_canfars_default_and_rejects_bad_words(api, respx_mock):
    listing, _ = _listing(respx_mock)
    assert api.destroy_with("scan-") == {"c1": True}  # status="Completed", as canfar
    with pytest.raises(ValidationError, match="status"):
        api.destroy_with("scan-", status=["Completed", "Sleeping"])
    assert listing.call_count == 1


def test_raise_error_is_still_caught_as_the_items_class(make_api, respx_mock):
    # Code written for this package before issue 11 caught the item's error class.
    respx_mock.get(BASE + "session/zz").respond(404, text="session zz not found\n")
    api = make_api(errors="raise")
    with pytest.raises(NotFound) as info:
        api.info("zz")
    assert info.value.message == "session zz not found" and info.value.status_code == 404
    assert isinstance(info.value, SessionRequestError)
    assert "info encountered 1 failure: zz: NotFound" in str(info.value)
