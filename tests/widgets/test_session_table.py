"""SessionTable: rows from the shared feed, patches not resyncs, actions, errors, repr."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from widget_fakes import BASE, TOKEN, FakeSkaha, send, wait_until

from canfar_widgets.widgets._traffic import measure_traffic
from canfar_widgets.widgets.session_table import SessionTable, row_of

pytestmark = pytest.mark.usefixtures("fresh_widgets")


@pytest.fixture
def sky() -> FakeSkaha:
    sky = FakeSkaha()
    sky.add("nb000001", status="Running", kind="notebook", name="analysis")
    sky.sessions["nb000001"].update(
        connectURL="https://canfar.test/session/notebook/nb000001/lab",
        requestedCPUCores="2", requestedRAM="8G", cpuCoresInUse="0.5", ramInUse="1Gi",
        expiryTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800)),
    )  # fmt: skip
    sky.add("job00001", status="Pending", kind="headless", name="batch-1")
    sky.add("job00002", status="Completed", kind="headless", name="batch-2")
    return sky


@pytest.fixture
def table(sky):
    widgets: list[SessionTable] = []

    def make(**kwargs: Any) -> SessionTable:
        session = kwargs.pop("session", None) or sky.session()
        w = SessionTable(session=session, **kwargs)
        widgets.append(w)
        return w

    yield make
    for w in widgets:
        w.close()


def session_gets(sky: FakeSkaha) -> int:
    return sum(1 for r in sky.made("GET", "session") if "view" not in r.url.params)


def loaded(t: SessionTable) -> SessionTable:
    send(t, kind="snapshot", have=0)  # a view is on screen (patches are for views)
    t.refresh().result(5)
    assert wait_until(lambda: t.last_updated > 0)
    return t


def test_rows_come_from_the_platform(sky, table):
    t = loaded(table())
    assert {r.id for r in t.records} == {"nb000001", "job00001", "job00002"}
    send(t, kind="snapshot", have=0)
    assert t.rows_version >= 1
    rows = {r["id"]: r for r in t.rows}
    nb = rows["nb000001"]
    assert nb["name"] == "analysis" and nb["kind"] == "notebook" and nb["status"] == "Running"
    assert nb["url"].endswith("/lab")
    assert (nb["cpu_req"], nb["cpu_used"]) == (2.0, 0.5)
    assert nb["ram_req"] == round(8e9 / 2**30, 3)  # GiB, the form's unit; reported as "8" GB
    assert nb["image_short"] == "terminal:1.1.2"
    assert 1700 < nb["expiry"] - time.time() <= 1800
    assert rows["job00002"]["finished"] is True
    assert t.error == ""


def test_quiet_refresh_sends_nothing_and_a_change_sends_one_small_patch(sky, table):
    t = loaded(table())
    with measure_traffic(t) as quiet:
        t.refresh().result(5)
        time.sleep(0.05)
    assert quiet.count == 0

    sky.sessions["job00001"]["status"] = "Running"
    with measure_traffic(t) as change:
        t.refresh().result(5)
        assert wait_until(lambda: change.custom())
    patches = change.custom()
    assert len(patches) == 1
    patch = patches[0]
    assert patch["kind"] == "patch"
    assert [r["id"] for r in patch["upsert"]] == ["job00001"] and patch["remove"] == []
    assert patch["upsert"][0]["status"] == "Running"
    assert change.bytes <= 2048

    del sky.sessions["job00002"]
    with measure_traffic(t) as gone:
        t.refresh().result(5)
        assert wait_until(lambda: gone.custom())
    assert gone.custom()[0]["remove"] == ["job00002"]
    assert gone.custom()[0]["version"] == patch["version"] + 1


def test_snapshot_protocol(sky, table):
    t = loaded(table())
    version = t._version
    with measure_traffic(t) as meter:
        send(t, kind="snapshot", have=version)  # view is current: nothing to send
    assert meter.count == 0
    with measure_traffic(t) as meter:
        send(t, kind="snapshot", have=0)  # a new view: full list through the traits
    assert meter.updates()[0]["rows_version"] == version
    assert len(meter.updates()[0]["rows"]) == 3
    with measure_traffic(t) as meter:
        send(t, kind="snapshot", have=0)  # traits current, but that view lost them: resend
    assert meter.updates() and meter.updates()[0]["rows_version"] == version


def test_two_tables_on_one_session_poll_once(sky, table):
    session = sky.session()
    a, b = table(session=session), table(session=session)
    assert a.feed is b.feed
    loaded(a)
    assert wait_until(lambda: b.last_updated > 0 and len(b.records) == 3)
    before = session_gets(sky)
    a.refresh().result(5)
    assert session_gets(sky) == before + 1
    assert wait_until(lambda: b.last_updated >= a.last_updated)


def test_notify_me_keeps_a_hidden_table_polling(sky, table):
    # A background tab reports its views hidden, which pauses polling; with "Notify me" on
    # the sessions must still be followed, or "is Running" / "expires in an hour" could
    # never be announced there.
    t = loaded(table())
    t.feed.fast = t.feed.slow = t.feed.idle = 0.05
    [sub] = t._subscriptions  # its share of the session's feed
    send(t, kind="visibility", visible=True, view="v1")
    send(t, kind="visibility", visible=False, view="v1")
    assert not sub.visible  # nobody looks and nobody asked: no polling
    t.notify = True  # what the "Notify me" click sets
    assert sub.visible
    before = session_gets(sky)
    assert wait_until(lambda: session_gets(sky) >= before + 2)
    send(t, kind="visibility", visible=True, view="v1")
    send(t, kind="visibility", visible=False, view="v1")
    assert sub.visible  # a view going hidden again does not undo "Notify me"
    t.notify = False
    assert not sub.visible
    time.sleep(0.1)
    paused = session_gets(sky)
    time.sleep(0.25)
    assert session_gets(sky) == paused
    t.close()


def test_polling_pauses_while_hidden_and_stops_on_close(sky, table):
    t = loaded(table())
    t.feed.fast = t.feed.slow = 0.05
    time.sleep(0.2)
    hidden = session_gets(sky)
    time.sleep(0.2)
    assert session_gets(sky) == hidden  # no view visible: no polling
    send(t, kind="visibility", visible=True, view="v1")
    assert wait_until(lambda: session_gets(sky) >= hidden + 3)
    send(t, kind="visibility", visible=False, view="v1")
    time.sleep(0.1)
    paused = session_gets(sky)
    time.sleep(0.25)
    assert session_gets(sky) == paused
    send(t, kind="visibility", visible=True, view="v1")
    assert wait_until(lambda: session_gets(sky) > paused)
    t.close()
    assert wait_until(lambda: not t.feed.running)
    stopped = session_gets(sky)
    time.sleep(0.25)
    assert session_gets(sky) == stopped


def test_fast_while_pending_slow_when_stable(sky, table):
    t = loaded(table())
    assert t.feed.interval() == 2.0  # job00001 is Pending
    sky.sessions["job00001"]["status"] = "Running"
    t.refresh().result(5)
    assert t.feed.interval() == 2.0  # a headless job runs: seen while it runs (issue 15, item 9)
    sky.sessions["job00001"]["status"] = "Completed"
    t.refresh().result(5)
    assert t.feed.interval() == 15.0


def test_errors_keep_the_last_rows(sky, table):
    t = loaded(table())
    send(t, kind="snapshot", have=0)
    rows = list(t.rows)
    sky.fail["session"] = (500, "database on fire")
    with pytest.raises(httpx.HTTPStatusError):
        t.refresh().result(5)
    assert wait_until(lambda: t.error)
    assert "database on fire" in t.error and "500" in t.error
    assert len(t.records) == 3 and t.rows == rows
    html = t._repr_mimebundle_()[0]["text/html"]
    assert "database on fire" in html and "analysis" in html
    del sky.fail["session"]
    t.refresh().result(5)
    assert wait_until(lambda: t.error == "")


@pytest.mark.parametrize("code", [401, 403])
def test_auth_error_stops_polling(sky, table, code):
    t = loaded(table())
    t.feed.fast = t.feed.slow = 0.03
    sky.fail["session"] = (code, "token expired")
    send(t, kind="visibility", visible=True, view="v")
    with pytest.raises(httpx.HTTPStatusError):
        t.refresh().result(5)
    assert wait_until(lambda: t.feed.auth_stopped and t.error)
    assert "press Refresh" in t.error
    calls = session_gets(sky)
    time.sleep(0.3)
    assert session_gets(sky) == calls  # no retry storm
    del sky.fail["session"]
    send(t, kind="refresh")  # the button: polls again and resumes
    assert wait_until(lambda: t.error == "" and not t.feed.auth_stopped)


def test_refresh_button_updates_time_and_busy(sky, table):
    t = loaded(table())
    first = t.last_updated
    time.sleep(0.02)
    with measure_traffic(t) as meter:
        send(t, kind="refresh")
        assert wait_until(lambda: t.last_updated > first and not t.busy)
    sent = {k for u in meter.updates() for k in u}
    assert {"busy", "last_updated"} <= sent


def test_delete_and_renew(sky, table):
    t = loaded(table())
    send(t, kind="delete", ids=["job00002"])
    assert wait_until(lambda: t.status == "Deleted 1 session.")
    assert sky.made("DELETE", "session/job00002")
    assert wait_until(lambda: "job00002" not in {r.id for r in t.records})
    assert t.pending == {}
    send(t, kind="renew", ids=["nb000001", "job00001"])
    assert wait_until(lambda: t.status == "Renewed 2 sessions.")
    assert len(sky.made("POST", "session/nb000001")) == 1


def test_failed_delete_shows_error(sky, table):
    t = loaded(table())
    future = t.delete(["gone0000"])
    assert future.result(5) == {"gone0000": False}
    assert "Could not delete gone0000" in t.error
    assert t.pending == {}


def test_pending_marks_rows_while_acting(sky, table):
    t = loaded(table())
    seen: list[dict[str, str]] = []
    t.observe(lambda change: seen.append(dict(change["new"])), names="pending")
    t.delete("job00001").result(5)
    assert {"job00001": "Deleting…"} in seen and t.pending == {}


def test_static_html_is_a_real_table_without_js(sky, table):
    t = loaded(table(hide_finished=True))
    data, _ = t._repr_mimebundle_()
    html = data["text/html"]
    assert "<table" in html and '<th scope="col"' in html and "<caption" in html
    assert "analysis" in html and "batch-1" in html
    assert "batch-2" not in html  # a finished headless job, never seen running: hidden
    assert "<script" not in html
    assert "var(--jp-" in html
    assert 'class="canfar-w' in html
    assert data["text/plain"].startswith("<SessionTable: 3 sessions")
    t.hide_finished = False
    t.search = "batch"
    html = t._static_html()
    assert "batch-2" in html and "analysis" not in html
    t.kind_filter, t.search, t.status_filter = "notebook", "", "Running"
    assert "analysis" in t._static_html() and "batch-1" not in t._static_html()


def test_repr_waits_briefly_for_the_first_poll(sky, table):
    t = table()
    html = t._repr_mimebundle_()[0]["text/html"]
    assert "analysis" in html


def test_static_html_colours_every_state_the_vocabulary_has():
    from canfar_widgets.vocabulary import STATES
    from canfar_widgets.widgets import _html

    assert set(_html.STATE_COLOURS) == set(STATES)  # no dead words, none missing


def test_no_secret_in_state_repr_or_html(sky, table):
    sky.fail["session"] = (500, f"bad token {TOKEN}")
    t = table()
    with pytest.raises(httpx.HTTPStatusError):
        t.refresh().result(5)
    assert wait_until(lambda: t.error)
    assert "***" in t.error
    state = json.dumps(t.get_state(), default=str)
    for text in (state, repr(t), t._static_html(), str(t._repr_mimebundle_()[0])):
        assert TOKEN not in text


def test_session_none_uses_environment(monkeypatch, respx_mock):
    monkeypatch.setenv("CANFAR_URL", BASE)
    monkeypatch.setenv("CANFAR_TOKEN", TOKEN)
    respx_mock.get(BASE + "session").mock(
        return_value=httpx.Response(
            200, json=[{"id": "env00001", "status": "Running", "name": "e"}]
        )
    )
    from canfar_widgets import SessionTable as Exported

    t = Exported()
    try:
        t.refresh().result(5)
        assert [r.id for r in t.records] == ["env00001"]
    finally:
        t.close()


def test_filters_and_selection_are_traits(sky, table):
    t = table(kind_filter="headless", hide_finished=False, sort_by="name", sort_desc=False)
    loaded(t)
    assert (t.kind_filter, t.hide_finished, t.sort_by) == ("headless", False, "name")
    assert "batch-2" in t._static_html()
    t.selected = ["job00001"]
    state = t.get_state()
    assert state["selected"] == ["job00001"]


def test_row_of_handles_sparse_records():
    from canfar_widgets.models import SessionRecord

    row = row_of(SessionRecord.model_validate({"id": "x"}))
    assert row["status"] == "Unknown" and row["start"] is None and row["cpu_req"] is None


def test_thousand_sessions_quiet_refresh_is_cheap(table):
    big = FakeSkaha()
    for i in range(1000):
        big.add(f"s{i:07d}", status="Running", kind="headless", name=f"job-{i}")
    t = table(session=big.session())
    loaded(t)
    source, records = t.source, t.records
    assert len(records) == 1000
    # Time the kernel-side work of a quiet poll: parse (cached) + diff, without the network.
    raw = list(big.sessions.values())
    start = time.perf_counter()
    same = source._cached_records([dict(r) for r in raw])
    with measure_traffic(t) as meter:
        t._on_feed(same, None)
    elapsed = time.perf_counter() - start
    assert meter.count == 0
    assert elapsed < 0.05  # generous for CI; typically ~2 ms
    raw[10] = dict(raw[10], status="Terminating")
    changed = source._cached_records([dict(r) for r in raw])
    with measure_traffic(t) as meter:
        t._on_feed(changed, None)
    assert len(meter.custom()) == 1 and meter.bytes <= 2048


@pytest.mark.parametrize(
    ("view", "cls_path"),
    [
        ("logs", "canfar_widgets.widgets.log_viewer.LogViewer"),
        ("events", "canfar_widgets.widgets.events_view.EventsView"),
    ],
)
def test_logs_and_events_open_inline_under_the_row(sky, table, view, cls_path):
    module, _, name = cls_path.rpartition(".")
    cls = getattr(pytest.importorskip(module), name)
    t = loaded(table())
    send(t, kind="detail", id="nb000001", view=view)
    child = t.detail
    assert isinstance(child, cls)
    assert (t.detail_id, t.detail_kind) == ("nb000001", view)
    assert child.source is t.source if getattr(child, "source", None) else True
    state = t.get_state()
    assert state["detail"] == f"anywidget:{child.model_id}"  # the front end asks its host for it
    send(t, kind="detail", id="nb000001", view=view)  # the same button again closes it
    assert t.detail is None and t.detail_id == "" and child.comm is None


def test_switching_detail_closes_the_previous_child(sky, table):
    pytest.importorskip("canfar_widgets.widgets.log_viewer")
    pytest.importorskip("canfar_widgets.widgets.events_view")
    t = loaded(table())
    logs = t.show_logs("nb000001")
    events = t.show_events("job00001")
    assert t.detail is events and logs.comm is None
    t.close()
    assert events.comm is None


def test_an_action_error_outlives_the_next_poll_but_not_refresh(sky, table):
    t = loaded(table())
    t.delete(["gone0000"]).result(5)
    t.refresh().result(5)
    time.sleep(0.05)
    assert "Could not delete gone0000" in t.error
    send(t, kind="refresh")  # the person pressed Refresh: acknowledged
    assert wait_until(lambda: t.error == "")


def test_against_the_local_platform():
    """The real stack end to end: create sessions, see rows, renew, delete."""
    from canfar_widgets.local import LocalPlatform

    with LocalPlatform(start_delay=0.2, terminating_delay=0.1) as platform:
        session = platform.session()
        t = SessionTable(session, hide_finished=False)
        try:
            ids = session.create(
                "it-nb", image="images.canfar.net/skaha/astroml:latest", kind="notebook"
            )
            ids += session.create(
                "it-job", image="images.canfar.net/skaha/terminal:1.1.2", cmd="sleep", args="30"
            )
            t.refresh().result(10)
            assert {r.id for r in t.records} >= set(ids)
            assert t.feed.interval() == 2.0  # something is Pending: fast polling
            assert wait_until(
                lambda: (
                    t.refresh().result(10)
                    and all(r.state == "Running" for r in t.records if r.id in ids)
                ),
                timeout=15,
            )
            send(t, kind="snapshot", have=-1)
            rows = {r["id"]: r for r in t.rows}
            assert rows[ids[0]]["url"] and rows[ids[0]]["kind"] == "notebook"
            before = rows[ids[0]]["expiry"]
            time.sleep(1.1)  # expiry has 1 s resolution
            assert t.renew([ids[0]]).result(10) == {ids[0]: True}
            t.refresh().result(10)
            send(t, kind="snapshot", have=-1)
            assert {r["id"]: r for r in t.rows}[ids[0]]["expiry"] > before
            assert t.delete(ids).result(10) == dict.fromkeys(ids, True)
            assert wait_until(
                lambda: (
                    not set(ids)
                    & {r.id for r in t.refresh().result(10) if r.state != "Terminating"}
                ),
                timeout=15,
            )
            assert (
                platform.token
                not in json.dumps(t.get_state(), default=str) + repr(t) + t._static_html()
            )
        finally:
            t.close()
            session.close()


# -- the table as a person uses it (issue 15 items 9-11, 13; issue 16 first-render bytes) --


def test_hide_finished_is_off_by_default_and_a_job_seen_running_stays(sky, table):
    t = loaded(table())
    assert t.hide_finished is False
    assert "batch-2" in t._static_html()  # finished before the table saw it: shown by default
    t.hide_finished = True
    assert "batch-2" not in t._static_html()
    # batch-1 was Pending when the table saw it: when it completes it stays in sight.
    sky.sessions["job00001"]["status"] = "Completed"
    t.refresh().result(5)
    send(t, kind="snapshot", have=0)
    rows = {r["id"]: r for r in t.rows}
    assert rows["job00001"]["finished"] and rows["job00001"]["watched"] is True
    assert rows["job00002"]["watched"] is False
    html = t._static_html()
    assert "batch-1" in html and "batch-2" not in html


def test_names_sort_naturally(table):
    from canfar_widgets.widgets.session_table import natural_key

    sky = FakeSkaha()
    for i, name in enumerate(["job-10", "job-2", "job-1", "Job-11", "job-1b"]):
        sky.add(f"id{i:06d}", status="Running", kind="headless", name=name)
    t = loaded(table(session=sky.session(), sort_by="name", sort_desc=False))
    html = t._static_html()
    order = sorted(
        ["job-10", "job-2", "job-1", "Job-11", "job-1b"], key=lambda n: html.index(f">{n}<")
    )
    assert order == ["job-1", "job-1b", "job-2", "job-10", "Job-11"]
    assert natural_key("a10") > natural_key("a9") and natural_key("") == ("",)


def test_an_action_message_is_said_once_and_cleared(sky, table, monkeypatch):
    from canfar_widgets.widgets import session_table

    monkeypatch.setattr(session_table, "STATUS_SECONDS", 0.3)
    t = loaded(table())
    seen: list[str] = []
    t.observe(lambda change: seen.append(change["new"]), names="status")
    t.delete("job00002").result(5)
    assert "Deleted 1 session." in seen
    assert wait_until(lambda: t.status == "")  # "Deleted 1 session." does not linger
    # A failure is said once, in the alert; the status line does not repeat it.
    t.delete("gone0000").result(5)
    assert "Could not delete gone0000" in t.error and t.status == ""
    # The next event replaces it.
    t.renew("nb000001").result(5)
    assert t.error == "" and t.status == "Renewed 1 session."


def test_renew_publishes_the_new_expiry(sky, table):
    t = loaded(table())
    send(t, kind="snapshot", have=0)
    before = {r["id"]: r for r in t.rows}["nb000001"]["expiry"]
    new_expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4 * 3600))

    def renew_moves_expiry(request):  # as the platform does: a renew moves the expiry
        if request.method == "POST" and request.url.path.endswith("/session/nb000001"):
            sky.sessions["nb000001"]["expiryTime"] = new_expiry

    sky.on_request = renew_moves_expiry
    assert t.renew("nb000001").result(5) == {"nb000001": True}
    assert wait_until(lambda: "nb000001" in t.renewed)
    assert t.renewed["nb000001"] > before + 3600
    assert abs(t.renewed["nb000001"] - (time.time() + 4 * 3600)) < 5


def test_first_render_sends_the_rows_once(sky, table):
    """A table shown after its first poll sends the rows as one snapshot, not a patch too."""
    t = table()
    with measure_traffic(t) as meter:
        t.refresh().result(5)
        assert wait_until(lambda: t.last_updated > 0)
        send(t, kind="snapshot", have=0)  # the view renders and asks
    assert meter.custom() == []
    assert [len(u["rows"]) for u in meter.updates() if "rows" in u] == [3]
    # Once a view has rows, changes travel as patches again.
    sky.sessions["job00001"]["status"] = "Running"
    with measure_traffic(t) as change:
        t.refresh().result(5)
        assert wait_until(lambda: change.custom())
    assert [r["id"] for r in change.custom()[0]["upsert"]] == ["job00001"]


def test_the_static_empty_state_says_what_is_hidden_and_why(sky, table):
    t = loaded(table(hide_finished=True, search="batch-2"))
    html = t._static_html()
    assert (
        "1 finished job is hidden by “Hide finished”" in html
        and "batch-2" not in html.split("</caption>")[1].split("No sessions")[0]
    )
    t.search, t.kind_filter = "", "desktop"
    assert "3 sessions do not match the kind, status or search filter" in t._static_html()
