"""Dashboard: launch form, platform load and the session table on one session.

A stock ``ipywidgets.VBox``: the three widgets keep their own views, and composition is
what ipywidgets already does well in every host. They share one session object, hence
one :class:`~canfar_widgets.widgets._source.SessionSource` and one session feed: the
table and anything else watching the session list poll once.

What the dashboard adds on top, through a small widget of its own (:class:`DashboardFrame`,
``js/dashboard.js``) that renders first:

- **one login banner** for the whole dashboard. Every part hits the same 401/403 when a
  token expired; the source reports it once (``SessionSource.on_auth_change``) and the
  banner says "CANFAR did not accept your login (expired token?). Run `canfar auth login`,
  then press Refresh", while the parts' own copies of that message are hidden;
- **named regions** ("Launch a session", "Platform load", "Sessions"), so a screen reader
  (and a test) can tell the form's Kind from the table's, and the two Refresh buttons apart;
- **activity**: when the window gets focus the polls leave their idle interval at once.

A launch shows up in the table at once: the form and the table share one source, whose
``create()`` refreshes the shared feed, and every launch in the process (a cell's
``Session.create`` too) keeps it fast for a minute (:mod:`canfar_widgets.launches`).

Example:
    >>> from canfar_widgets import Dashboard
    >>> dash = Dashboard()          # Session() from CANFAR_URL/CANFAR_TOKEN/config
    >>> dash                        # form and load on top, the table below
    >>> dash.table.search = "batch"
    >>> dash.form.launch().result()
"""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets
import traitlets

from canfar_widgets.errors import describe_error
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets._html import esc
from canfar_widgets.widgets._source import SessionSource
from canfar_widgets.widgets.launch_form import LaunchForm
from canfar_widgets.widgets.platform_load import PlatformLoad
from canfar_widgets.widgets.session_table import SessionTable

__all__ = ["LOGIN_REFUSED", "Dashboard", "DashboardFrame"]

LOGIN_REFUSED = "CANFAR did not accept your login (expired token?). Run `canfar auth login`, then press Refresh."
"""The one banner a dashboard shows for a 401/403, whichever part met it first."""

# The regions' accessible names, by the class each part carries (js/dashboard.js names them).
REGIONS = {
    "cw-dash-launch": "Launch a session",
    "cw-dash-load": "Platform load",
    "cw-dash-sessions": "Sessions",
}


class DashboardFrame(CanfarWidget):
    """The dashboard's own small widget: the login banner, region names, focus activity.

    Traits (kernel-owned): ``login_error`` (the banner's text; empty when the login is
    accepted), ``login_detail`` (what the platform said, for the banner's details),
    ``regions`` (``{class: accessible name}`` of the dashboard's parts).
    """

    _entry = "dashboard"

    login_error = traitlets.Unicode("").tag(sync=True)
    login_detail = traitlets.Unicode("").tag(sync=True)
    regions = traitlets.Dict().tag(sync=True)

    def __init__(self, dashboard: Dashboard, **kwargs: Any) -> None:
        super().__init__(regions=dict(REGIONS), **kwargs)
        self._attach(dashboard.source.session)
        self._dashboard = dashboard
        self._stop_listening = self.source.on_auth_change(self._auth_changed)
        for part in (dashboard.form, dashboard.load, dashboard.table):
            part._snapshot_parents.append(self)  # a part's change refreshes the snapshot
        if self.source.auth_error is not None:
            self._auth_changed(self.source.auth_error)

    def close(self) -> None:
        """Stop listening to the session's login state, then close."""
        stop = getattr(self, "_stop_listening", None)
        if stop is not None:
            stop()
        super().close()

    def _auth_changed(self, error: BaseException | None) -> None:
        """The source started (error) or stopped (None) meeting a refused login (any thread)."""
        if error is None:
            self._update(login_error="", login_detail="")
        else:
            self._update(login_error=LOGIN_REFUSED, login_detail=self._scrub(describe_error(error)))

    def _on_refresh(self, content: dict[str, Any]) -> None:
        """The banner's Refresh: every part tries again (the token may be fixed now)."""
        self._dashboard.refresh()

    def _on_activity(self, content: dict[str, Any]) -> None:
        """The window got focus: leave the idle intervals at once."""
        self._dashboard._nudge()

    _messages: ClassVar[Messages] = {"refresh": _on_refresh, "activity": _on_activity}

    # The Dashboard's saved snapshot is this frame's (CanfarWidget's mechanism): its view,
    # inside the Dashboard's, hides it while live.
    def _snapshot_html(self) -> str:
        return self._dashboard._html()

    def _snapshot_text(self) -> str:
        return repr(self._dashboard)

    def _summary(self) -> str:
        return self.login_error


class Dashboard(ipywidgets.VBox):
    """``LaunchForm`` + ``PlatformLoad`` + ``SessionTable`` sharing one session.

    Args:
        session: this package's ``Session``/``AsyncSession`` or an official ``canfar``
            one; default ``Session()`` from the environment / ``~/.canfar/config.yaml``.
        **kwargs: passed to ``ipywidgets.VBox`` (say, ``layout``).

    Attributes:
        form, load, table: the three widgets (use them from Python as usual).
        frame: the :class:`DashboardFrame` (login banner, region names).
        source: the shared :class:`SessionSource` (``source.feed`` is the shared session poller).
    """

    def __init__(self, session: Any = None, **kwargs: Any) -> None:
        self.source = SessionSource.of(session)
        shared = self.source.session
        self.form = LaunchForm(shared)
        self.load = PlatformLoad(shared)
        self.table = SessionTable(shared)
        self.form.add_class("cw-dash-launch")
        self.load.add_class("cw-dash-load")
        self.table.add_class("cw-dash-sessions")
        self.frame = DashboardFrame(self)
        top = ipywidgets.HBox(
            [self.form, self.load],
            layout=ipywidgets.Layout(
                flex_flow="row wrap", align_items="flex-start", grid_gap="12px"
            ),
        )
        super().__init__([self.frame, top, self.table], **kwargs)
        self.add_class("canfar-w")
        self.add_class("cw-dashboard")

    def refresh(self) -> None:
        """Every part reads again: the session list, the platform load, the form's options."""
        self.source.feed.resume()
        self.source.feed.refresh_now()
        self.load.refresh()
        reload_form = getattr(self.form, "_load_form", None)
        if callable(reload_form) and not self.form.limits:
            self.form._spawn(reload_form(), action="Loading the form")

    def _nudge(self) -> None:
        self.source.feed.nudge()
        self.load.poller.nudge()

    def close(self) -> None:
        """Close the widgets (stopping their polling) and the layout."""
        for child in (self.frame, self.form, self.load, self.table):
            child.close()
        for box in self.children:
            if isinstance(box, ipywidgets.Box) and box is not self.table:
                box.close()
        super().close()

    def __repr__(self) -> str:
        if self.frame.login_error:
            return f"<Dashboard: {self.frame.login_error}>"
        return f"<Dashboard: {self.table._summary()}>"

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data)
        self.table._wait_first()  # first: the words and the HTML then tell the same state
        data["text/plain"] = repr(self)
        html = self._html()
        if html:
            data["text/html"] = html
        return data, metadata

    def _ipython_display_(self) -> None:
        """In a kernel: the live Dashboard, then its saved snapshot that follows the state.

        The same two outputs as every other widget (``CanfarWidget._ipython_display_``),
        through the frame: an ipywidgets box has no snapshot of its own.
        """
        self.frame._display_with_snapshot(self._repr_mimebundle_())

    def _html(self) -> str:
        """The static HTML of the load and the table, under the login banner if any."""
        parts = [w._static_html() for w in (self.load, self.table)]
        html = "".join(p for p in parts if p)
        if self.frame.login_error:
            html = (
                f'<div role="alert" style="font-weight:600">{esc(self.frame.login_error)}</div>'
                + html
            )
        if not html:
            return ""
        return f'<div class="canfar-w" aria-label="{esc("CANFAR dashboard")}">{html}</div>'
