"""Dashboard: launch form, platform load and the session table on one session.

A stock ``ipywidgets.VBox`` (no front end of its own): the three widgets keep their own
views, and composition is what ipywidgets already does well in every host. They share
one session object, hence one :class:`~canfar_widgets.widgets._backend.Backend` and one
session feed: the table and anything else watching the session list poll once.

A launch shows up in the table at once: the dashboard observes the form's
``last_launched`` trait and asks the shared feed for a fresh poll (the new session is
Pending, so the feed then stays on its fast interval until it settles).

Example:
    >>> from canfar_widgets import Dashboard
    >>> dash = Dashboard()          # Session() from CANFAR_URL/CANFAR_TOKEN/config
    >>> dash                        # form and load on top, the table below
    >>> dash.table.search = "batch"
    >>> dash.form.launch().result()
"""

from __future__ import annotations

from typing import Any

import ipywidgets

from canfar_widgets.widgets._backend import Backend
from canfar_widgets.widgets._html import esc

__all__ = ["Dashboard"]


class Dashboard(ipywidgets.VBox):
    """``LaunchForm`` + ``PlatformLoad`` + ``SessionTable`` sharing one session.

    Args:
        session: this package's ``Session``/``AsyncSession`` or an official ``canfar``
            one; default ``Session()`` from the environment / ``~/.canfar/config.yaml``.
        **kwargs: passed to ``ipywidgets.VBox`` (say, ``layout``).

    Attributes:
        form, load, table: the three widgets (use them from Python as usual).
        backend: the shared backend (``backend.feed`` is the shared session poller).
    """

    def __init__(self, session: Any = None, **kwargs: Any) -> None:
        from canfar_widgets.widgets.launch import LaunchForm
        from canfar_widgets.widgets.load import PlatformLoad
        from canfar_widgets.widgets.table import SessionTable

        self.backend = Backend.of(session)
        shared = self.backend.session
        self.form = LaunchForm(shared)
        self.load = PlatformLoad(shared)
        self.table = SessionTable(shared)
        top = ipywidgets.HBox(
            [self.form, self.load],
            layout=ipywidgets.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="12px"),
        )
        super().__init__([top, self.table], **kwargs)
        self.add_class("canfar-w")
        self.add_class("cw-dashboard")
        # A launch shows up in the table at once: the form and the table share one Backend,
        # whose create() refreshes the shared feed (Backend._platform_changed).

    def close(self) -> None:
        """Close the three widgets (stopping their polling) and the layout."""
        for child in (self.form, self.load, self.table):
            child.close()
        for box in self.children:
            if isinstance(box, ipywidgets.Box) and box is not self.table:
                box.close()
        super().close()

    def __repr__(self) -> str:
        return f"<Dashboard: {self.table._summary()}>"

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data)
        data["text/plain"] = repr(self)
        self.table._wait_first()
        parts = [w._static_html() for w in (self.load, self.table)]
        html = "".join(p for p in parts if p)
        if html:
            data["text/html"] = (
                f'<div class="canfar-w" aria-label="{esc("CANFAR dashboard")}">{html}</div>'
            )
        return data, metadata
