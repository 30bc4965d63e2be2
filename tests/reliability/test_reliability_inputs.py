"""Bad input never crashes parsing or rendering; bad launch specs never reach the platform.

Odd session records, events tables, stats payloads and log texts are served over HTTP
(``httpx.MockTransport``) and go through the whole stack: ``AsyncSession`` -> ``SessionSource``
(models) -> the widget (rows, traits, patches) -> its ``repr`` and static HTML snapshot.
Every widget message and state must stay strict JSON (what ``jupyter_client`` sends:
``allow_nan=False``, UTF-8), and nothing may reach the runner's exception handler or the
ERROR log. ``tests/client/test_models.py`` covers the parsers alone with hypothesis.

The LaunchForm part runs against a ``LocalPlatform`` and counts requests there.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from reliability_support import TERMINAL, RunnerWatch, running_platform, send

from canfar_widgets.models import Image, SessionRecord
from canfar_widgets.sessions import AsyncSession
from canfar_widgets.widgets._traffic import measure_traffic
from canfar_widgets.widgets.events_view import EventsView
from canfar_widgets.widgets.launch_form import LaunchForm
from canfar_widgets.widgets.launch_rules import NAME_PATTERN
from canfar_widgets.widgets.log_viewer import LogViewer
from canfar_widgets.widgets.platform_load import PlatformLoad
from canfar_widgets.widgets.session_table import SORT_COLUMNS, SessionTable, row_of
from canfar_widgets.wire import NO_RETRY

pytestmark = pytest.mark.timeout(300)

BASE = "https://odd.test/skaha/v1/"
TOKEN = "tok-ODD-INPUT-41b7"
SID = "odd00001"

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------

# Lone surrogates (JSON "\\ud800") have their own test below: kept out of these strategies.
odd_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from([
        "", " ", "\x00", "\u202e<b>rtl", "<script>alert(1)</script>", "\ufffd", "\U0010ffff",
        "a" * 3000, "None", "null", "NaN", "-", "∞", "😀" * 5, "line\nbreak", "\r\n", "\t",
    ]),
)  # fmt: skip
numbers = st.one_of(
    st.integers(), st.integers(min_value=10**18, max_value=10**40), st.floats(), st.booleans(),
    st.none(),
)  # fmt: skip
json_junk = st.recursive(
    odd_text | numbers,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3)
    ),
    max_leaves=8,
)
quantities = st.one_of(
    st.from_regex(r"[-+]?[0-9.]{0,8}(e[-+]?[0-9]{1,4})?(m|k|Ki|Mi|Gi|G|Ti|T|E|Ei|Pi|Xi)?",
                  fullmatch=True),
    st.sampled_from(["1e308G", "1e309", "inf", "-inf", "nan", "NaN", "Infinity", "0x10",
                     "9" * 400, "1_000", "4.29", "137.439G", "1Gi", "-1"]),
    odd_text, numbers,
)  # fmt: skip
times = st.one_of(
    st.sampled_from([
        "2026-08-01T17:49Z", "2026-08-01T17:49:57Z", "2026-08-01T17:49:57.123456789+02:00",
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z", "2026-08-01", "17:49", "<none>", "", "yesterday",
        "+275760-09-13T00:00:00Z", "-0001-01-01T00:00:00Z", "2026-08-01T24:00:00Z",
    ]),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    odd_text, numbers,
)  # fmt: skip
statuses = st.one_of(
    st.sampled_from(["Running", "Pending", "Completed", "Failed", "Terminating", "Succeeded",
                     "Error", "Failed (DeadlineExceeded)", "running", "Unknown", ""]),
    odd_text, numbers,
)  # fmt: skip
kinds = st.sampled_from(["headless", "notebook", "desktop", "carta", "firefly", "contributed",
                         "desktop-app", "HEADLESS", ""]) | odd_text | numbers  # fmt: skip
ids = st.one_of(
    st.sampled_from(["abc12345", "def67890", "x", ""]), odd_text, st.integers(), st.none()
)
records = st.one_of(
    st.fixed_dictionaries({}, optional={
        "id": ids, "userid": odd_text, "name": odd_text, "status": statuses, "type": kinds,
        "image": odd_text, "startTime": times, "expiryTime": times, "connectURL": odd_text,
        "requestedRAM": quantities, "requestedCPUCores": quantities,
        "requestedGPUCores": quantities, "ramInUse": quantities, "cpuCoresInUse": quantities,
        "isFixedResources": json_junk, "supplementalGroups": json_junk, "anomalies": json_junk,
        "runAsUID": json_junk, "extraField": json_junk,
    }),
    json_junk,
)  # fmt: skip
listings = st.one_of(
    st.lists(records, max_size=8).map(lambda items: json.dumps(items).encode()),
    json_junk.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"not json", b"[{", b"\xff\xfe\x00", b"[]" * 3, b'[{"id": "a"}, 3]']),
)

# kubectl-like tables with odd cells, plus anything at all.
cells = st.one_of(
    st.sampled_from(["Normal", "Warning", "<none>", "Pulled", "Failed", "BackOff",
                     "2026-08-01T17:49Z", "2026-08-01T17:49:57Z", "9999-12-31T23:59:59Z", ""]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)  # fmt: skip
table_rows = st.lists(st.lists(cells, min_size=0, max_size=7), max_size=6)
events_texts = st.one_of(
    st.tuples(st.booleans(), table_rows, st.integers(1, 4)).map(
        lambda t: "\n".join(
            (
                ["TYPE     REASON      MESSAGE        FIRST-TIME             LAST-TIME"]
                if t[0]
                else []
            )
            + [(" " * t[2]).join(row) for row in t[1]]
        )
    ),
    st.text(max_size=300),
    st.sampled_from(["<none>\n", "", "\n" * 50, "TYPE\n" + "x" * 10000, "\x1b[31mWarning\x1b[0m"]),
)
stats_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "cores": st.fixed_dictionaries({}, optional={
            "requestedCPUCores": quantities, "cpuCoresAvailable": quantities,
            "maxCPUCores": st.fixed_dictionaries({}, optional={"cpuCores": quantities,
                                                               "withRam": quantities}) | json_junk,
        }) | json_junk,
        "ram": st.fixed_dictionaries({}, optional={
            "requestedRAM": quantities, "ramAvailable": quantities,
            "maxRAM": st.fixed_dictionaries({}, optional={"ram": quantities}) | json_junk,
        }) | json_junk,
        "gpu": json_junk, "instances": json_junk,
    }).map(lambda value: json.dumps(value).encode()),
    json_junk.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"temporarily unavailable: null\n", b"{", b"\xff"]),
)  # fmt: skip
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(["30", "0", "-5", "inf", "nan", "1e400", "Infinity", "soon", "",
                     "Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 9999 07:28:00 GMT",
                     "Mon, 01 Jan 0001 00:00:00 GMT", "1_000", " 7 "]),
    st.text(max_size=12),
)  # fmt: skip
stats_replies = st.one_of(
    st.tuples(st.just(200), stats_bodies, st.none()),
    st.tuples(st.sampled_from([500, 502, 503, 504]), stats_bodies, retry_afters),
)
log_texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(["\x1b[31mred\x1b[0m", "\x1b]8;;http://x\x07link\x1b]8;;\x07",
                              "\r", "\n", "\x00", "\ufffd", "<b>", "&amp;", "é", "\x1b[",
                              "line " * 50]), max_size=30).map("".join),
)  # fmt: skip


# -- a platform that answers whatever the example says -------------------------------------------


class OddSkaha:
    """Serves the current example's bodies on every path the widgets read."""

    def __init__(self) -> None:
        self.listing = b"[]"
        self.events = b"<none>\n"
        self.stats: tuple[int, bytes, str | None] = (200, b"{}", None)
        self.logs = b""
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path.removeprefix("/skaha/v1/")
        view = request.url.params.get("view")
        if path == "session" and view == "stats":
            status, body, retry_after = self.stats
            headers = {"Content-Type": "application/json"}
            if retry_after is not None:
                headers["Retry-After"] = retry_after
            return httpx.Response(status, content=body, headers=headers)
        if path == "session":
            return httpx.Response(
                200, content=self.listing, headers={"Content-Type": "application/json"}
            )
        if path == f"session/{SID}" and view == "events":
            return httpx.Response(200, content=self.events, headers={"Content-Type": "text/plain"})
        if path == f"session/{SID}" and view == "logs":
            return httpx.Response(200, content=self.logs, headers={"Content-Type": "text/plain"})
        if path == f"session/{SID}":
            return httpx.Response(200, json={"id": SID, "status": "Running", "type": "headless"})
        return httpx.Response(404, text="not found\n")


@pytest.fixture(scope="module")
def sky():
    return OddSkaha()


@pytest.fixture(scope="module")
def session(sky):
    client = AsyncSession(url=BASE, token=TOKEN, transport=httpx.MockTransport(sky.handle))
    client._wire.retry = NO_RETRY  # each example is one answer, not a retry sequence
    try:
        yield client
    finally:
        client.close()


def strict_json(value: Any) -> None:
    """What jupyter_client's packer needs: no NaN/inf, encodable as UTF-8 (surrogateescape)."""
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf8", errors="surrogateescape")


def rendered(widget: Any) -> str:
    """Everything a person or a notebook file gets from a widget, checked for crashes."""
    html = widget._static_html()
    assert isinstance(html, str) and html.startswith('<div class="canfar-w')
    assert "<script" not in html.lower()  # every value was escaped
    bundle = widget._repr_mimebundle_()
    assert bundle is not None
    data, _ = bundle
    strict_json(data)
    strict_json(widget.get_state())
    assert repr(widget).startswith("<")
    return html


def wait(future: Any) -> None:
    """Wait for a widget's work; a failure is fine (it must be *shown*), a hang is not."""
    concurrent.futures.wait([future], timeout=10)
    assert future.done(), "the widget's work hung"


# -- rendering ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(session):
    widget = SessionTable(session, hide_finished=False)
    try:
        yield widget
    finally:
        widget.close()


@EXAMPLES
@given(body=listings, search=st.sampled_from(["", "a", "<", "\x00"]), hide=st.booleans())
def test_session_table_survives_any_listing(sky, table, body, search, hide):
    sky.listing = body
    with RunnerWatch() as watch, measure_traffic(table) as meter:
        wait(table.refresh())
        send(table, kind="snapshot", have=-1)  # the rows trait as a new view would get it
        table.search, table.hide_finished = search, hide
        for column in SORT_COLUMNS:
            for desc in (False, True):
                table.sort_by, table.sort_desc = column, desc
                rendered(table)
    for message in meter.messages:
        strict_json(message)
    assert isinstance(table.error, str)
    assert watch.problems() == []
    # Rows are built for every record that has an id, whatever else it holds.
    for record in table.records:
        row = row_of(record)
        strict_json(row)
        assert row["id"] == record.id


@EXAMPLES
@given(st.lists(records, max_size=6))
@example([{"requestedRAM": 1.797693134862316e299}])  # CI found it: GB -> GiB overflowed to inf
def test_row_building_never_raises(items):
    for item in items:
        record = SessionRecord.model_validate(item)
        row = row_of(record)
        strict_json(row)
        assert row["status"] in (
            "Pending",
            "Running",
            "Terminating",
            "Completed",
            "Failed",
            "Unknown",
        )


@pytest.fixture(scope="module")
def events_view(session):
    widget = EventsView([SID], session)
    try:
        yield widget
    finally:
        widget.close()


@EXAMPLES
@given(text=events_texts)
def test_events_view_survives_any_events_text(sky, events_view, text):
    sky.events = text.encode("utf-8", "surrogatepass")
    with RunnerWatch() as watch:
        wait(events_view.refresh())
        rendered(events_view)
        events_view.warnings()
    assert watch.problems() == []
    assert SID in events_view.events or SID in events_view.problems


@EXAMPLES
@given(reply=stats_replies)
def test_platform_load_survives_any_stats_answer(sky, session, reply):
    sky.stats = reply
    with RunnerWatch() as watch:
        load = PlatformLoad(session, interval=3600)
        try:
            wait(load._initial)
            html = rendered(load)
            if reply[0] == 200:
                assert load.unavailable == "" or "unavailable" in html.lower()
            else:
                assert load.unavailable  # shown, not silently stale
                assert load.retry_at == 0.0 or load.retry_at > 0
        finally:
            load.close()
    assert watch.problems() == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=log_texts)
def test_log_viewer_survives_any_log_text(sky, session, text):
    sky.logs = text.encode("utf-8", "surrogatepass")
    with RunnerWatch() as watch:
        viewer = LogViewer([SID], session, follow=False)
        try:
            wait(viewer._initial)
            html = rendered(viewer)
            assert not re.search(r"\x1b\[[0-9;]*m", html)  # colour codes are stripped
        finally:
            viewer.close()
    assert watch.problems() == []


def test_lone_surrogates_from_json_do_not_poison_widget_state(sky, session):
    """JSON may escape half a UTF-16 pair ("\\ud800"); such a text cannot be sent as UTF-8.

    A kernel would fail to send the table's state (jupyter_client encodes messages as UTF-8),
    so the models replace the broken character with U+FFFD.
    """
    sky.listing = (
        b'[{"id": "sur00001", "name": "half \\ud83d pair", "status": "Running",'
        b' "image": "images.canfar.net/x/\\udcff:1", "type": "headless"}]'
    )
    table = SessionTable(session, hide_finished=False)
    try:
        wait(table.refresh())
        send(table, kind="snapshot", have=-1)
        html = rendered(table)
        [record] = table.records
        assert record.name == "half \ufffd pair" and "\ufffd" in html
        assert record.anomalies
    finally:
        table.close()
    image = Image.model_validate({"id": "images.canfar.net/x/\ud800:1", "types": ["\udcff"]})
    strict_json(image.model_dump())


# -- the launch form refuses bad specs before any request ----------------------------------------

RAM_OPTIONS = [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 26, 28, 30, 32, 36, 40, 44, 48, 56, 64,
               80, 92, 112, 128, 140, 170, 192]  # fmt: skip


@pytest.fixture(scope="module")
def launch_setup():
    with running_platform() as platform:
        client = platform.session()
        form = LaunchForm(client, kind="headless", image=TERMINAL, cmd="true")
        try:
            form._ready.result(30)
            for future in list(form._images_futures.values()):
                future.result(30)
            assert form.limits["cores"]["options"] == list(range(1, 17))
            assert form.limits["ram"]["options"][:3] == [1, 2, 4]
            yield platform, form
        finally:
            form.close()
            client.close()


_nonces = itertools.count()


def refused(platform, form, spec: dict[str, Any]) -> dict[str, str]:
    """Send ``spec`` as the front end would; assert nothing reached the platform."""
    before = platform.request_count()
    send(form, kind="launch", nonce=f"bad-{next(_nonces)}", spec=spec, registry=None)
    assert form._launch_future.result(10) == []
    assert form.error.startswith("Not launched: check")
    assert platform.request_count() == before
    return dict(form.field_errors)


def valid_spec(form) -> dict[str, Any]:
    return {**form.spec(), "name": "ok-name", "kind": "notebook", "image": TERMINAL,
            "resources": "fixed", "cores": 2, "ram": 8, "gpus": None, "replicas": 1}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.one_of(
        st.text(max_size=80),
        st.from_regex(r"[a-z0-9-]{0,70}", fullmatch=True),
        st.sampled_from(
            ["", " ", "-a", "a-", "a_b", "émile", "a" * 64, "a.b", "A B", "\x00", None, 7]
        ),
    )
)
def test_launch_form_rejects_bad_names_before_any_request(launch_setup, name):
    platform, form = launch_setup
    assume(not re.fullmatch(NAME_PATTERN, str(name if name is not None else "").strip()))
    errors = refused(platform, form, {**valid_spec(form), "name": name})
    assert "name" in errors and errors["name"].startswith("Name ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bad=st.one_of(
        st.tuples(st.just("cores"), st.integers().filter(lambda n: not 1 <= n <= 16)),
        st.tuples(
            st.just("cores"),
            st.floats(allow_nan=False).filter(lambda f: not (f.is_integer() and 1 <= f <= 16)),
        ),
        st.tuples(st.just("ram"), st.integers().filter(lambda n: n not in RAM_OPTIONS)),
        st.tuples(st.just("gpus"), st.integers(min_value=29) | st.integers(max_value=-1)),
        st.tuples(
            st.sampled_from(["cores", "ram"]),
            st.sampled_from(["", "two", "1.5", "-1", "1e3", " ", None, [], {}, True]),
        ),
        st.tuples(st.just("replicas"), st.integers().filter(lambda n: not 1 <= n <= 512)),
    )
)
def test_launch_form_rejects_out_of_range_resources_before_any_request(launch_setup, bad):
    platform, form = launch_setup
    field, value = bad
    spec = {**valid_spec(form), field: value}
    if field == "replicas":
        spec.update(kind="headless", cmd="true")
    errors = refused(platform, form, spec)
    assert field in errors, errors
