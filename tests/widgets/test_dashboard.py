"""Dashboard: three widgets on one session; a launch shows up in the table at once."""

from __future__ import annotations

import json

import pytest
import test_widget_base
from widget_fakes import TOKEN, FakeSkaha, send, wait_until

try:  # the dashboard composes widgets written alongside it
    import canfar_widgets.widgets.launch_form
    import canfar_widgets.widgets.platform_load  # noqa: F401
except (ImportError, OSError) as err:  # pragma: no cover - only while those are unfinished
    pytest.skip(f"LaunchForm/PlatformLoad unavailable: {err}", allow_module_level=True)


from canfar_widgets.runner import get_runner

pytestmark = pytest.mark.usefixtures("fresh_widgets")

# A kernel's display() and update_display(), as test_widget_base records them.
main_loop = test_widget_base.main_loop
shown = test_widget_base.shown


@pytest.fixture
def dash():
    from canfar_widgets import Dashboard

    sky = FakeSkaha()
    sky.add("nb000001", status="Running", kind="notebook", name="analysis")
    d = Dashboard(sky.session())
    d.sky = sky
    yield d
    d.close()


def test_one_session_one_feed(dash):
    assert dash.form.source is dash.table.source is dash.source
    assert dash.table.feed is dash.source.feed
    assert dash.children[-1] is dash.table
    assert "canfar-w" in dash._dom_classes


def test_launch_appears_in_the_table_promptly(dash):
    table = dash.table
    table.refresh().result(5)
    assert {r.id for r in table.records} == {"nb000001"}
    form = dash.form
    form.kind, form.image, form.name = "headless", "images.canfar.net/skaha/terminal:1.1.2", "job"
    form.cmd = "echo"
    ids = form.launch().result(10)
    assert ids
    # No wait for the 15 s tick: the dashboard asked the feed to poll right after launch.
    assert wait_until(lambda: set(ids) <= {r.id for r in table.records}, timeout=3)


def test_close_stops_every_poller(dash):
    send(dash.table, kind="visibility", visible=True, view="v")
    feed = dash.table.feed
    listeners = len(dash.source._auth_listeners)
    dash.close()
    assert wait_until(lambda: not feed.running)
    assert len(dash.source._auth_listeners) == listeners - 1  # the banner stopped listening


def test_repr_has_text_and_static_html_without_secrets(dash):
    dash.table.refresh().result(5)
    data, _ = dash._repr_mimebundle_()
    assert data["text/plain"].startswith("<Dashboard:")
    assert "<table" in data["text/html"] and "analysis" in data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in data
    for text in (json.dumps(data, default=str), repr(dash)):
        assert TOKEN not in text


def test_separate_form_and_table_on_one_session_stay_in_step():
    """No Dashboard: a LaunchForm and a SessionTable built apart still share one feed."""
    from canfar_widgets import LaunchForm, SessionTable

    sky = FakeSkaha()
    session = sky.session()
    table, form = SessionTable(session), LaunchForm(session)
    try:
        table.refresh().result(5)
        polls = table.feed.polls
        form.kind, form.image, form.name = (
            "headless",
            "images.canfar.net/skaha/terminal:1.1.2",
            "solo",
        )
        form.cmd = "echo"
        ids = form.launch().result(10)
        # Well inside the 15 s slow interval: the launch itself asked the shared feed to poll.
        assert wait_until(lambda: set(ids) <= {r.id for r in table.records}, timeout=3)
        assert table.feed.polls > polls
    finally:
        form.close()
        table.close()


def _refuse_login(sky):
    for key in ("session", "context", "image", "session?view=stats"):
        sky.fail[key] = (401, "token expired")


def test_a_refused_login_gives_one_banner_for_the_whole_dashboard():
    """Issue 15, item 12: one message for the dashboard, not six copies of the 401."""
    from canfar_widgets import Dashboard
    from canfar_widgets.widgets.dashboard import LOGIN_REFUSED

    sky = FakeSkaha()
    _refuse_login(sky)
    dash = Dashboard(sky.session(retries=False))
    try:
        assert wait_until(lambda: dash.frame.login_error == LOGIN_REFUSED)
        assert "canfar auth login" in LOGIN_REFUSED and "press Refresh" in LOGIN_REFUSED
        assert "401" in dash.frame.login_detail and TOKEN not in dash.frame.login_detail
        assert wait_until(lambda: dash.load.login_refused)
        # The load says it once itself (no alert and no status copy beside its banner) and
        # says what it could not load; the parts' copies are hidden by the frame (CSS).
        assert dash.load.error == "" and dash.load.status == ""
        assert wait_until(lambda: dash.load.cpu_text == "CPU: not loaded")
        assert repr(dash) == f"<Dashboard: {LOGIN_REFUSED}>"
        html = dash._repr_mimebundle_()[0]["text/html"]
        assert html.count(LOGIN_REFUSED.replace("`", "&#x60;")) + html.count(LOGIN_REFUSED) == 1
        # Login fixed: Refresh in the banner reads everything again and the banner goes.
        sky.fail.clear()
        polls = dash.source.feed.polls
        send(dash.frame, kind="refresh")
        assert wait_until(lambda: dash.frame.login_error == "")
        assert dash.source.feed.polls > polls and not dash.source.feed.auth_stopped
        assert wait_until(lambda: dash.load.cpu_text.startswith("CPU: 12.5 of 64"))
        assert wait_until(lambda: dash.form.limits != {})
    finally:
        dash.close()


def test_after_a_refused_login_nothing_says_loading_for_ever():
    """Issue 15, item 12: the table and the form say "Not loaded" (the banner says why),
    not "Loading sessions..." / "Loading images..." for ever; a fixed login loads them."""
    from canfar_widgets import Dashboard

    sky = FakeSkaha()
    _refuse_login(sky)
    dash = Dashboard(sky.session(retries=False))
    try:
        assert wait_until(lambda: dash.table.error != "")
        html = dash.table._static_html()
        assert "Not loaded." in html and "Loading sessions" not in html
        assert wait_until(lambda: dash.form.kind in dash.form.images_failed)
        assert dash.form.kind not in dash.form.images
        sky.fail.clear()
        send(dash.frame, kind="refresh")
        assert wait_until(lambda: dash.form.kind in dash.form.images)
        assert dash.form.images_failed == []
        assert wait_until(lambda: "Not loaded." not in dash.table._static_html())
    finally:
        dash.close()


def test_parts_are_named_regions(dash):
    """Issue 15, item 18: the front end names each part (js/dashboard.js reads `regions`)."""
    assert dash.children[0] is dash.frame
    assert set(dash.frame.regions.values()) == {"Launch a session", "Platform load", "Sessions"}
    for cls, widget in (("cw-dash-launch", dash.form), ("cw-dash-load", dash.load),
                        ("cw-dash-sessions", dash.table)):  # fmt: skip
        assert cls in widget._dom_classes and cls in dash.frame.regions


def test_idle_dashboard_makes_at_most_two_requests_a_minute(dash):
    """Idle Dashboard (issue 16): after a few unchanged polls, <= 2 requests/min in all."""
    dash.sky.sessions["nb000001"]["status"] = "Running"
    for widget in (dash.form, dash.load, dash.table):
        send(widget, kind="visibility", visible=True, view="v")
    feed, stats = dash.source.feed, dash.load.poller
    runner = get_runner()
    for _ in range(4):  # four periodic polls, as the loop makes them (no fake timers needed)
        runner.run(feed._poll_once(runner.loop))
        runner.run(stats._poll_once(runner.loop))
    assert feed.unchanged >= 3 and stats.unchanged >= 3
    per_minute = 60 / feed.interval() + 60 / stats.interval()
    assert per_minute <= 2
    # The window gets focus: both leave idle at once.
    send(dash.frame, kind="activity")
    assert feed.interval() == 15.0 and stats.interval() == 30.0


def test_focus_after_idle_polls_at_once_when_the_value_is_old(dash):
    feed = dash.source.feed
    feed.refresh_now().result(5)
    feed.updated -= 120  # as if the last poll was two minutes ago
    polls = feed.polls
    send(dash.frame, kind="activity")
    assert wait_until(lambda: feed.polls > polls)


def test_in_a_kernel_the_dashboard_has_a_saved_snapshot_that_follows_the_state(shown):
    """Issue 15, item 19: the Dashboard gets the other widgets' two outputs (live view +
    snapshot under a display id), its frame's view hiding the snapshot while live."""
    from canfar_widgets import Dashboard
    from canfar_widgets.widgets.dashboard import DashboardFrame

    sky = FakeSkaha()
    dash = Dashboard(sky.session())
    DashboardFrame.snapshot_interval = 0.2
    try:
        dash._ipython_display_()
        (_, view, none_id), (_, snap, display_id) = shown
        assert view["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.model_id
        assert "text/html" not in view and none_id is None and display_id
        assert f'data-canfar-snapshot="{dash.frame._snapshot_id}"' in snap["text/html"]
        assert snap["text/plain"] == repr(dash)
        sky.add("s9later", name="later-job")  # a part's change (the table's rows) refreshes it
        dash.source.feed.refresh_now()
        assert wait_until(
            lambda: shown[-1][0] == "update" and "later-job" in shown[-1][1]["text/html"]
        )
        assert shown[-1][2] == display_id
    finally:
        del DashboardFrame.snapshot_interval
        dash.close()
