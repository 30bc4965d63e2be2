"""The local platform at the HTTP level: every route, status, exact text and header.

Plain httpx, so what is checked is the wire itself (what any skaha v1 client meets).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from local_support import FORM, TERMINAL
from support import FAST_PLATFORM, wait_for

from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.formats import gson_pretty

pytestmark = pytest.mark.timeout(60)

ID = re.compile(r"^[a-z][a-z0-9]{7}$")
APP_ID = re.compile(r"^[a-z][a-z0-9]{2}$")
ASTROML = "images.canfar.net/skaha/astroml:latest"
DESKTOP = "images.canfar.net/skaha/desktop:1.2.1"
PRIVATE = "images.canfar.net/private/thing:1.0"
OTHER_TOKEN = "other-users-token"
FIELD_ORDER = [
    "id",
    "userid",
    "runAsUID",
    "runAsGID",
    "supplementalGroups",
    "appid",
    "image",
    "type",
    "status",
    "name",
    "startTime",
    "expiryTime",
    "connectURL",
    "requestedRAM",
    "requestedCPUCores",
    "requestedGPUCores",
    "ramInUse",
    "cpuCoresInUse",
    "isFixedResources",
]


def fast_platform(**kw: Any) -> LocalPlatform:
    options: dict[str, Any] = {**FAST_PLATFORM, "start_delay": 0.15, "users": {OTHER_TOKEN: "bob"}}
    options.update(kw)
    return LocalPlatform(**options)


@pytest.fixture
def platform() -> Iterator[LocalPlatform]:
    p = fast_platform()
    p.start()
    try:
        yield p
    finally:
        p.stop()


def create(client: httpx.Client, **params: Any) -> httpx.Response:
    """POST the way the official client does: query string, form content type, empty body."""
    return client.post("session", params=params, headers=FORM)


def new_session(client: httpx.Client, **params: Any) -> str:
    params.setdefault("name", "s")
    params.setdefault("image", TERMINAL)
    r = create(client, **params)
    assert r.status_code == 200, r.text
    return r.text.strip()


def status_of(client: httpx.Client, sid: str) -> str | None:
    r = client.get(f"session/{sid}")
    return r.json()["status"] if r.status_code == 200 else None


def running(client: httpx.Client, sid: str) -> dict[str, Any]:
    wait_for(lambda: status_of(client, sid) == "Running")
    return client.get(f"session/{sid}").json()


def assert_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "text/plain"
    assert r.text == text


# ------------------------------------------------------------------------------- create


def test_create_answers_id_as_plain_text(client: httpx.Client) -> None:
    r = create(client, name="job", image=TERMINAL, cmd="true")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain"
    assert r.text.endswith("\n") and r.text.count("\n") == 1
    assert ID.match(r.text.strip())


def test_create_from_form_body_and_from_query(client: httpx.Client) -> None:
    body = client.post("session", data={"name": "a", "image": TERMINAL, "cmd": "true"})
    query = create(client, name="b", image=TERMINAL, cmd="true")
    assert body.status_code == query.status_code == 200
    multipart = client.post(
        "session", files={"name": (None, "c"), "image": (None, TERMINAL), "cmd": (None, "true")}
    )
    assert multipart.status_code == 200, multipart.text


@pytest.mark.parametrize(
    "headers", [{}, {"Content-Type": "application/json"}, {"Content-Type": "text/plain"}]
)
def test_params_ignored_without_form_content_type(client: httpx.Client, headers: dict) -> None:
    r = client.post("session", params={"name": "a", "image": TERMINAL}, headers=headers)
    assert_error(r, 400, "Missing parameter 'image'\n")


def test_json_body_is_not_read(client: httpx.Client) -> None:
    r = client.post("session", json={"name": "a", "image": TERMINAL})
    assert_error(r, 400, "Missing parameter 'image'\n")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "a"}, "Missing parameter 'image'"),
        ({"name": "a", "image": "  "}, "image is required"),
        (
            {"name": "a", "image": "docker.io/library/ubuntu"},
            "session image 'docker.io/library/ubuntu' must come from one of [images.canfar.net]",
        ),
        ({"name": "a", "image": TERMINAL, "type": "bogus"}, "Invalid session type: bogus"),
        ({"name": "a", "image": TERMINAL, "cores": "99"}, "Invalid value for 'cores': 99"),
        ({"name": "a", "image": TERMINAL, "cores": "x"}, "Invalid value for 'cores': x"),
        ({"name": "a", "image": TERMINAL, "ram": "3"}, "Invalid value for 'ram': 3"),
        ({"image": TERMINAL}, "Missing parameter 'name'"),
        ({"name": " ", "image": TERMINAL}, "Missing parameter 'name'"),
        ({"name": "a_b", "image": TERMINAL}, "name can only contain alpha-numeric chars and '-'"),
        ({"name": "a", "image": TERMINAL, "gpus": "0"}, "Invalid value for 'gpus': 0"),
        ({"name": "a", "image": TERMINAL, "gpus": "1.0"}, "Invalid value for 'gpus': 1.0"),
        (
            {"name": "a", "image": PRIVATE},
            "No authentication provided for unknown or private image.  Use x-skaha-registry-auth "
            "request header with base64Encode(username:secret).",
        ),
    ],
)
def test_create_validation_messages(client: httpx.Client, params: dict, message: str) -> None:
    assert_error(create(client, **params), 400, message + "\n")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"image": "quay.io/x", "type": "bogus", "cores": "99"},
            "session image 'quay.io/x' must come from one of [images.canfar.net]",
        ),
        ({"image": TERMINAL, "type": "bogus", "cores": "99"}, "Invalid session type: bogus"),
        ({"image": TERMINAL, "cores": "99", "ram": "3"}, "Invalid value for 'cores': 99"),
        ({"image": TERMINAL, "ram": "3", "name": "bad name"}, "Invalid value for 'ram': 3"),
        (
            {"image": TERMINAL, "name": "bad name", "gpus": "0"},
            "name can only contain alpha-numeric chars and '-'",
        ),
    ],
)
def test_validation_order(client: httpx.Client, params: dict, message: str) -> None:
    assert_error(create(client, **params), 400, message + "\n")


def test_registry_auth_header_rules(client: httpx.Client) -> None:
    def with_auth(value: str) -> httpx.Response:
        return client.post(
            "session",
            params={"name": "p", "image": PRIVATE, "cmd": "true"},
            headers={**FORM, "X-Skaha-Registry-Auth": value},
        )

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    assert with_auth(b64("bob:s3cret")).status_code == 200
    assert_error(with_auth(b64("bob")), 400, "Invalid input.  Must be in form of username:secret\n")
    assert_error(
        with_auth(b64("a:b:c")), 400, "Invalid input.  Must be in form of username:secret\n"
    )
    assert_error(with_auth(b64(":s3cret")), 400, "username is required.\n")
    assert_error(with_auth(b64("bob: ")), 400, "secret value cannot be empty.\n")
    # images in the public list need no header
    assert create(client, name="q", image=TERMINAL, cmd="true").status_code == 200


def test_type_is_case_insensitive_and_defaults_to_headless(client: httpx.Client) -> None:
    default = new_session(client, cmd="true")
    upper = new_session(client, type=" NoteBook ", image=ASTROML)
    assert client.get(f"session/{default}").json()["type"] == "headless"
    assert client.get(f"session/{upper}").json()["type"] == "notebook"


def test_name_is_stored_lower_case(client: httpx.Client) -> None:
    sid = new_session(client, name="My-Job", cmd="true")
    assert client.get(f"session/{sid}").json()["name"] == "my-job"


@pytest.mark.parametrize("name", ["trail-", "x" * 64])
def test_names_that_are_no_hostname_fail_at_launch(client: httpx.Client, name: str) -> None:
    r = create(client, name=name, image=TERMINAL)
    assert r.status_code == 500
    assert r.headers["content-type"] == "text/plain"
    assert r.text.startswith("unexpected exception: ")


def test_leading_dash_truncates_the_name_label_to_nothing(client: httpx.Client) -> None:
    # The server's label truncation strips "-lead" to "" before Kubernetes sees the hostname.
    assert_error(
        create(client, name="-lead", image=TERMINAL),
        400,
        "canfar.net/name label value cannot be blank\n",
    )


def test_session_limit_counts_active_interactive_only(
    client: httpx.Client, platform: LocalPlatform
) -> None:
    for n in range(5):
        new_session(client, name=f"nb{n}", image=ASTROML, type="notebook")
    r = create(client, name="six", image=ASTROML, type="carta")
    assert_error(
        r, 400, f"User {platform.username} has reached the maximum of 5 active sessions.\n"
    )
    assert create(client, name="batch", image=TERMINAL, cmd="true").status_code == 200
    # another user has their own budget
    r = client.post(
        "session",
        params={"name": "x", "image": ASTROML, "type": "notebook"},
        headers={**FORM, "Authorization": f"Bearer {OTHER_TOKEN}"},
    )
    assert r.status_code == 200


# ------------------------------------------------------------------------------ records


def test_pending_headless_record_omits_unset_fields() -> None:
    with (
        fast_platform(headless_start_delay=30) as p,
        httpx.Client(base_url=p.url + "/", headers={"Authorization": f"Bearer {p.token}"}) as c,
    ):
        sid = new_session(c, name="later", cmd="true")
        r = c.get(f"session/{sid}")
        assert r.headers["content-type"] == "application/json"
        record = r.json()
        assert list(record) == [
            "id",
            "userid",
            "runAsUID",
            "runAsGID",
            "supplementalGroups",
            "image",
            "type",
            "status",
            "name",
            "connectURL",
            "requestedGPUCores",
            "isFixedResources",
        ]
        assert record["status"] == "Pending"
        assert record["connectURL"] == ""
        assert record["requestedGPUCores"] == "0"
        assert record["isFixedResources"] is False
        assert record["userid"] == p.username
        assert record["runAsUID"] == str(os.getuid())
        assert r.text == gson_pretty(record)


def test_fixed_and_flexible_resources(client: httpx.Client) -> None:
    fixed = running(
        client,
        new_session(client, name="f", image=ASTROML, type="notebook", cores="2", ram="4", gpus="1"),
    )
    assert fixed["requestedRAM"] == "4.29"
    assert fixed["requestedCPUCores"] == "2"
    # gpus=1 is checked and accepted, but with GPU scheduling off (a platform without GPUs)
    # the server adds no nvidia.com/gpu limit, so the record shows "0"
    assert fixed["requestedGPUCores"] == "0"
    assert fixed["isFixedResources"] is True
    assert [k for k in FIELD_ORDER if k in fixed] == list(fixed)

    flexible = running(
        client, new_session(client, name="g", image=ASTROML, type="notebook", cores="2.9")
    )
    assert "requestedRAM" not in flexible and "requestedCPUCores" not in flexible
    assert flexible["isFixedResources"] is False

    ram_only = client.get(f"session/{new_session(client, name='h', cmd='true', ram='1')}").json()
    assert ram_only["requestedRAM"] == "1.07" and ram_only["requestedCPUCores"] == "1"

    firefly = client.get(f"session/{new_session(client, name='i', image=ASTROML, type='firefly')}")
    assert firefly.json()["isFixedResources"] is True
    assert firefly.json()["requestedCPUCores"] == "0.100"
    desktop = client.get(
        f"session/{new_session(client, name='j', image=DESKTOP, type='desktop', ram='8')}"
    )
    assert desktop.json()["isFixedResources"] is False


def test_running_interactive_record(client: httpx.Client, platform: LocalPlatform) -> None:
    sid = new_session(client, name="nb", image=ASTROML, type="notebook")
    assert client.get(f"session/{sid}").json()["status"] == "Pending"
    record = running(client, sid)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z", record["startTime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["expiryTime"])
    assert record["connectURL"] == (
        f"{platform.base}/session/notebook/{sid}/lab/tree/home/{platform.username}?token={sid}"
    )


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("desktop", "/session/desktop/{id}/?password={id}&path=session/desktop/{id}/"),
        ("carta", "/session/carta/{id}/"),
        ("contributed", "/session/contrib/{id}/"),
        ("firefly", "/session/firefly/{id}/firefly/"),
    ],
)
def test_connect_url_shapes(
    client: httpx.Client, platform: LocalPlatform, kind: str, path: str
) -> None:
    sid = new_session(client, name="ui", image=ASTROML, type=kind)
    assert client.get(f"session/{sid}").json()["connectURL"] == platform.base + path.format(id=sid)


def test_connect_url_page(client: httpx.Client) -> None:
    sid = new_session(client, name="mynb", image=ASTROML, type="notebook")
    record = running(client, sid)
    page = httpx.get(record["connectURL"])
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert "mynb" in page.text and sid in page.text
    client.delete(f"session/{sid}")
    wait_for(lambda: client.get(f"session/{sid}").status_code == 404)
    assert httpx.get(record["connectURL"]).status_code == 404
    assert httpx.get(record["connectURL"].replace(sid, "zzzzzzzz")).status_code == 404


def test_get_unknown_and_foreign_sessions(client: httpx.Client) -> None:
    assert_error(client.get("session/nosuch00"), 404, "session nosuch00 not found\n")
    theirs = client.post(
        "session",
        params={"name": "b", "image": TERMINAL, "cmd": "true"},
        headers={**FORM, "Authorization": f"Bearer {OTHER_TOKEN}"},
    ).text.strip()
    assert_error(client.get(f"session/{theirs}"), 404, f"session {theirs} not found\n")
    assert client.get(f"session/{theirs}", params={"view": "logs"}).text == ""
    client.delete(f"session/{theirs}")
    with httpx.Client(
        base_url=client.base_url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
    ) as bob:
        assert bob.get(f"session/{theirs}").status_code == 200  # untouched


def test_trailing_slash_quirk(client: httpx.Client) -> None:
    assert_error(client.get("session/"), 404, "session  not found\n")
    sid = new_session(client, name="only", cmd="true")
    assert client.get("session/").json()["id"] == sid  # the server's blank-id lookup


def test_too_many_path_segments(client: httpx.Client) -> None:
    assert_error(client.get("session/a/app/b/c"), 400, "Invalid request: a/app/b/c\n")


# ------------------------------------------------------------------------------ listing


def test_list_is_pretty_json_and_empty_list(client: httpx.Client) -> None:
    r = client.get("session")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.text == "[]"
    new_session(client, name="a", cmd="true")
    new_session(client, name="b", image=ASTROML, type="notebook")
    r = client.get("session")
    assert r.text == gson_pretty(r.json())
    assert len(r.json()) == 2


def test_list_filters(client: httpx.Client) -> None:
    job = new_session(client, name="a", cmd="true")
    nb = new_session(client, name="b", image=ASTROML, type="notebook")
    wait_for(lambda: status_of(client, job) == "Completed")
    running(client, nb)

    def ids(**params: str) -> set[str]:
        return {r["id"] for r in client.get("session", params=params).json()}

    assert ids(type="HEADLESS") == {job}
    assert ids(type="notebook", status="RUNNING") == {nb}
    assert ids(status="completed") == {job}
    assert ids(type="carta") == set()
    assert ids(view="interactive") == {nb}
    assert ids(view="whatever") == {job, nb}


def test_view_all_shows_everyone_reduced(client: httpx.Client, platform: LocalPlatform) -> None:
    new_session(client, name="a", cmd="true")
    client.post(
        "session",
        params={"name": "b", "image": TERMINAL, "cmd": "true"},
        headers={**FORM, "Authorization": f"Bearer {OTHER_TOKEN}"},
    )
    r = client.get("session", params={"view": "all"})
    entries = r.json()
    assert r.text == gson_pretty(entries)
    assert sorted(e["userid"] for e in entries) == sorted([platform.username, "bob"])
    for entry in entries:
        assert set(entry) <= {"userid", "type", "status", "startTime"}
        assert list(entry)[:3] == ["userid", "type", "status"]
    assert len(client.get("session").json()) == 1  # the normal list is the caller's only


def test_list_many_preloaded(client: httpx.Client, platform: LocalPlatform) -> None:
    ids = platform.preload(300)
    listed = client.get("session").json()
    assert {r["id"] for r in listed} == set(ids)
    assert [r["status"] for r in listed] == ["Completed"] * 300


# -------------------------------------------------------------------------- logs/events


def test_logs_and_events_are_plain_text(client: httpx.Client) -> None:
    sid = new_session(client, name="e", cmd="echo", args="hi")
    wait_for(lambda: status_of(client, sid) == "Completed")
    logs = client.get(f"session/{sid}", params={"view": "logs"})
    assert logs.headers["content-type"] == "text/plain"
    assert logs.text == "hi\n"
    events = client.get(f"session/{sid}", params={"view": "events"})
    assert events.headers["content-type"] == "text/plain"
    lines = events.text.splitlines()
    assert events.text.endswith("\n")
    assert re.fullmatch(r"TYPE {5}REASON {6}MESSAGE +FIRST-TIME +LAST-TIME", lines[0])
    reasons = [line.split()[1] for line in lines[1:]]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started", "Completed"]
    assert lines[1].endswith("<none>")  # scheduler events carry no first/last time
    # kubectl alignment: every column starts at the same offset
    start = lines[0].index("FIRST-TIME")
    assert all(re.match(r"(\d{4}-|<none>)", line[start:]) for line in lines[1:])


def test_logs_and_events_of_unknown_session(client: httpx.Client) -> None:
    logs = client.get("session/nosuch00", params={"view": "logs"})
    assert logs.status_code == 200 and logs.text == ""
    assert logs.headers["content-type"] == "text/plain"
    assert_error(
        client.get("session/nosuch00", params={"view": "events"}),
        404,
        "session nosuch00 not found.\n",
    )


def test_interactive_logs_are_canned(client: httpx.Client) -> None:
    sid = new_session(client, name="nb", image=ASTROML, type="notebook")
    running(client, sid)
    assert sid in client.get(f"session/{sid}", params={"view": "logs"}).text


# ------------------------------------------------------------------------ renew/delete


def test_renew_extends_running_interactive(client: httpx.Client, platform: LocalPlatform) -> None:
    sid = new_session(client, name="nb", image=ASTROML, type="notebook")
    before = running(client, sid)["expiryTime"]

    def backdate(store: Any) -> None:  # pretend it started 100 s ago
        record = store.lookup(sid)
        record.start -= 100
        record.touch()

    platform.call(backdate)
    aged = client.get(f"session/{sid}").json()["expiryTime"]
    assert aged < before
    r = client.post(f"session/{sid}", params={"action": "renew"}, headers=FORM)
    assert r.status_code == 200 and r.text == ""
    assert client.get(f"session/{sid}").json()["expiryTime"] >= before > aged
    r = client.post(f"session/{sid}", data={"action": "RENEW"})
    assert r.status_code == 200


def test_renew_leaves_young_headless_unchanged(client: httpx.Client) -> None:
    sid = new_session(client, name="long", cmd="sleep", args="30")
    before = running(client, sid)["expiryTime"]
    assert (
        client.post(f"session/{sid}", params={"action": "renew"}, headers=FORM).status_code == 200
    )
    assert client.get(f"session/{sid}").json()["expiryTime"] == before
    client.delete(f"session/{sid}")


def test_renew_errors(client: httpx.Client, platform: LocalPlatform) -> None:
    r = client.post("session/nosuch00", params={"action": "renew"}, headers=FORM)
    assert r.status_code == 400
    assert r.text.startswith("No active job for user PosixPrincipal [uidNumber=")
    # cadc-util PosixPrincipal.toString: "[uidNumber=<uid>,<default group>,<username>]"
    assert r.text == (
        f"No active job for user PosixPrincipal [uidNumber={os.getuid()},"
        f"{os.getgid()},{platform.username}] with session nosuch00\n"
    )
    done = new_session(client, name="d", cmd="true")
    wait_for(lambda: status_of(client, done) == "Completed")
    assert client.post(f"session/{done}", params={"action": "renew"}, headers=FORM).text.startswith(
        "No active job"
    )
    assert_error(
        client.post(f"session/{done}", params={"action": "stop"}, headers=FORM),
        400,
        "unrecognized action\n",
    )
    assert_error(
        client.post(f"session/{done}", headers=FORM), 400, "Cannot modify an existing session\n"
    )
    # without the form content type the action is not seen at all
    assert_error(
        client.post(f"session/{done}", params={"action": "renew"}),
        400,
        "Cannot modify an existing session\n",
    )


def test_delete(client: httpx.Client) -> None:
    sid = new_session(client, name="nb", image=ASTROML, type="notebook")
    running(client, sid)
    r = client.delete(f"session/{sid}")
    assert r.status_code == 200 and r.text == ""
    assert "content-type" not in r.headers
    assert status_of(client, sid) in ("Terminating", None)
    wait_for(lambda: client.get(f"session/{sid}").status_code == 404)
    assert client.get("session").json() == []
    assert client.delete("session/nosuch00").status_code == 200
    assert client.delete(f"session/{sid}").status_code == 200  # idempotent
    assert_error(client.delete("session"), 400, "Cannot kill all sessions.\n")


def test_finished_sessions_vanish_after_ttl() -> None:
    with (
        fast_platform(finished_ttl=0.2) as p,
        httpx.Client(base_url=p.url + "/", headers={"Authorization": f"Bearer {p.token}"}) as c,
    ):
        sid = new_session(c, name="brief", cmd="true")
        wait_for(lambda: status_of(c, sid) == "Completed")
        wait_for(lambda: c.get(f"session/{sid}").status_code == 404)


def test_interactive_expiry_fails_the_session() -> None:
    with (
        fast_platform(session_expiry=1) as p,
        httpx.Client(base_url=p.url + "/", headers={"Authorization": f"Bearer {p.token}"}) as c,
    ):
        sid = new_session(c, name="short", image=ASTROML, type="carta")
        running(c, sid)
        wait_for(lambda: status_of(c, sid) == "Failed", timeout=5)
        events = c.get(f"session/{sid}", params={"view": "events"}).text
        assert "DeadlineExceeded" in events and "Killing" in events
        # a failed session no longer counts against the limit and cannot be renewed
        assert c.post(f"session/{sid}", params={"action": "renew"}, headers=FORM).status_code == 400


# ------------------------------------------------------------------ image/context/repo


def test_context(client: httpx.Client) -> None:
    r = client.get("context")
    assert r.headers["content-type"] == "application/json"
    assert " " not in r.text and "\n" not in r.text
    ctx = r.json()
    assert ctx["maxInteractiveSessions"] == "5"
    assert ctx["cores"]["options"] == list(range(1, 17))
    assert ctx["memoryGB"]["defaultRequest"] == 4
    assert ctx["gpus"]["options"][0] == 1


def test_images(client: httpx.Client) -> None:
    r = client.get("image")
    assert r.headers["content-type"] == "application/json"
    images = r.json()
    assert r.text == gson_pretty(images)
    assert all(set(i) == {"id", "types", "digest"} for i in images)
    assert PRIVATE not in {i["id"] for i in images}
    headless = client.get("image", params={"type": "headless"}).json()
    assert headless and all("headless" in i["types"] for i in headless)
    assert client.get("image", params={"type": "desktop-app"}).json()
    assert_error(client.get("image", params={"type": "bogus"}), 400, "unknown type: bogus\n")
    assert_error(client.get("image", params={"type": "Headless"}), 400, "unknown type: Headless\n")


def test_repository(client: httpx.Client) -> None:
    r = client.get("repository")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == ["images.canfar.net"]


# ---------------------------------------------------------------------------- stats


def test_stats(client: httpx.Client) -> None:
    empty = client.get("session", params={"view": "stats"})
    assert empty.headers["content-type"] == "application/json"
    stats = empty.json()
    assert empty.text == gson_pretty(stats)
    assert list(stats) == ["cores", "ram"]
    assert stats["cores"]["cpuCoresAvailable"] == float(os.cpu_count() or 1)
    assert stats["cores"]["requestedCPUCores"] == 0.0
    assert stats["cores"]["maxCPUCores"] == {"cpuCores": 8.0, "withRam": "32Gi"}
    assert stats["ram"]["maxRAM"] == {"ram": "32Gi", "withCPUCores": 8.0}
    assert re.fullmatch(r"\d+(\.\d{1,3})?G", stats["ram"]["ramAvailable"])
    assert stats["ram"]["requestedRAM"] == "0G"
    new_session(client, name="nb", image=ASTROML, type="notebook")  # flexible: 1 core, 4 GiB
    new_session(client, name="big", image=ASTROML, type="notebook", cores="2", ram="8")
    stats = client.get("session", params={"view": "stats"}).json()
    assert stats["cores"]["requestedCPUCores"] == 3.0
    assert stats["ram"]["requestedRAM"] == "12.885G"


# ------------------------------------------------------------------------------ auth


def test_authenticated_answers_name_the_user(client: httpx.Client, platform: LocalPlatform) -> None:
    assert client.get("session").headers["x-vo-authenticated"] == platform.username
    r = create(client, name="a")
    assert r.headers["x-vo-authenticated"] == platform.username  # errors after auth too


def test_anonymous_and_wrong_token(platform: LocalPlatform) -> None:
    for path in ("session", "session/abc", "image", "context", "repository"):
        r = httpx.get(f"{platform.url}/{path}")
        assert_error(r, 400, "cannot get group memberships for anonymous\n")
        assert "x-vo-authenticated" not in r.headers
        wrong = httpx.get(f"{platform.url}/{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert wrong.headers["content-type"] == "text/plain"
        assert platform.token not in wrong.text
    basic = httpx.get(f"{platform.url}/session", auth=("user", "pass"))
    assert basic.status_code == 401
    post = httpx.post(f"{platform.url}/session", data={"name": "a", "image": TERMINAL})
    assert post.status_code == 400


def test_anonymous_401_option() -> None:
    with fast_platform(anonymous_status=401) as p:
        r = httpx.get(f"{p.url}/session")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_sso_cookie_is_accepted(platform: LocalPlatform) -> None:
    r = httpx.get(f"{platform.url}/session", cookies={"CADC_SSO": platform.token})
    assert r.status_code == 200


def test_unmapped_paths_are_404(client: httpx.Client, platform: LocalPlatform) -> None:
    auth = {"Authorization": f"Bearer {platform.token}"}
    for path in ("/skaha/v0/session", "/skaha/v0/image", "/skaha/v2/session", "/nothing"):
        r = httpx.get(platform.base + path, headers=auth)
        assert r.status_code == 404


def test_vosi_endpoints(platform: LocalPlatform) -> None:
    caps = httpx.get(f"{platform.base}/skaha/capabilities")
    assert caps.status_code == 200
    assert "http://www.opencadc.org/std/platform#session-1" in caps.text
    assert f"{platform.url}/session" in caps.text
    assert "<vosi:available>true" in httpx.get(f"{platform.base}/skaha/availability").text


# ---------------------------------------------------------------------------- faults


def test_fault_knobs(client: httpx.Client, platform: LocalPlatform) -> None:
    platform.faults.stats_unavailable = True
    r = client.get("session", params={"view": "stats"})
    assert_error(r, 503, "temporarily unavailable: null\n")
    assert r.headers["retry-after"] == "30"
    assert client.get("session").status_code == 200  # only stats is affected
    platform.faults.reset()
    platform.faults.error_rate = 1.0
    codes = {client.get("session").status_code for _ in range(20)}
    assert codes <= {500, 502, 503} and codes
    assert create(client, name="x", image=TERMINAL).status_code >= 500
    platform.faults.error_rate = 0.0
    assert client.get("session").json() == []  # the failed create had no effect
    platform.faults.latency = 0.01
    platform.faults.jitter = 0.01
    assert client.get("session").status_code == 200
    with pytest.raises(ValueError):
        platform.faults.error_rate = 2


def test_slow_start_fault(client: httpx.Client, platform: LocalPlatform) -> None:
    platform.faults.start_delay = 30
    sid = new_session(client, name="slow", image=ASTROML, type="notebook")
    time.sleep(0.3)
    assert status_of(client, sid) == "Pending"
    platform.faults.start_delay = None
    quick = new_session(client, name="quick", image=ASTROML, type="notebook")
    running(client, quick)


def test_unexpected_errors_are_500(client: httpx.Client, platform: LocalPlatform) -> None:
    def boom() -> str:
        raise RuntimeError("boom")

    platform.call(lambda store: setattr(store, "stats", boom))
    # RestServlet.handleUnexpected writes no trailing newline
    assert_error(
        client.get("session", params={"view": "stats"}),
        500,
        "unexpected exception: RuntimeError: boom",
    )


# ---------------------------------------------------------------------- desktop-apps


def test_desktop_apps(client: httpx.Client) -> None:
    desktop = new_session(client, name="desk", image=DESKTOP, type="desktop")
    assert_error(
        client.post(f"session/{desktop}/app", params={"image": TERMINAL}, headers=FORM),
        404,
        f"session {desktop} not found\n",
    )  # not running yet
    running(client, desktop)
    assert_error(
        client.post(f"session/{desktop}/app", headers=FORM), 400, "Missing parameter 'image'\n"
    )
    assert_error(
        client.post(f"session/{desktop}/app", params={"image": TERMINAL, "ram": "3"}, headers=FORM),
        400,
        "Invalid value for 'ram': 3\n",
    )
    r = client.post(
        f"session/{desktop}/app", params={"image": TERMINAL, "cores": "1", "ram": "4"}, headers=FORM
    )
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain"
    appid = r.text.strip()
    assert APP_ID.match(appid)

    app = client.get(f"session/{desktop}/app/{appid}").json()
    assert app["type"] == "desktop-app" and app["id"] == desktop and app["appid"] == appid
    assert app["name"] == "terminal-1-1-2" and app["connectURL"] == ""
    assert int(app["requestedCPUCores"]) == 1 and int(float(app["requestedRAM"])) == 4
    assert list(app)[:6] == ["id", "userid", "runAsUID", "runAsGID", "supplementalGroups", "appid"]

    assert {s["id"] for s in client.get("session").json()} == {desktop}  # apps hidden
    assert [a["appid"] for a in client.get("session", params={"type": "desktop-app"}).json()] == [
        appid
    ]
    assert [a["appid"] for a in client.get("session/anything/app").json()] == [appid]
    assert len(client.get("session", params={"view": "interactive"}).json()) == 2

    assert_error(
        client.get(f"session/{desktop}/app/zzz"),
        404,
        f"desktop app with session {desktop} and app ID zzz was not found\n",
    )
    assert_error(
        client.post(f"session/{desktop}/app/{appid}", params={"image": TERMINAL}, headers=FORM),
        400,
        "Cannot modify an existing app.\n",
    )
    assert_error(client.delete(f"session/{desktop}/app"), 400, "Missing app ID\n")
    assert client.delete(f"session/{desktop}/app/{appid}").status_code == 200
    wait_for(lambda: client.get(f"session/{desktop}/app/{appid}").status_code == 404)

    second = client.post(
        f"session/{desktop}/app", params={"image": TERMINAL}, headers=FORM
    ).text.strip()
    client.delete(f"session/{desktop}")  # deleting the desktop removes its apps
    wait_for(lambda: client.get(f"session/{desktop}/app/{second}").status_code == 404)


def test_desktop_app_type_cannot_be_created_directly(client: httpx.Client) -> None:
    r = create(client, name="a", image=TERMINAL, type="desktop-app")
    assert r.status_code == 500 and r.text.startswith("unexpected exception:")


def test_json_bodies_parse(client: httpx.Client) -> None:
    new_session(client, name="a", cmd="true")
    for path, params in (
        ("session", {}),
        ("session", {"view": "all"}),
        ("image", {}),
        ("repository", {}),
        ("context", {}),
    ):
        json.loads(client.get(path, params=params).text)


def test_unsupported_methods(client: httpx.Client) -> None:
    for method in ("PUT", "PATCH"):
        r = client.request(method, "session")
        assert r.status_code == 405
        assert r.headers["content-type"] == "text/plain"
