"""Pydantic models: what we send, what the server answers, and the saved configuration.

One module per concept; import from here (``canfar_widgets.models``), which stays the
public path:

- :mod:`.create` -- ``CreateRequest``. Requests are strict: it rejects what the server would
  reject (or turn into a 500), with a message that names the field, before anything goes on
  the wire.
- :mod:`.session`, :mod:`.platform`, :mod:`.events` -- ``SessionRecord``; ``Stats``,
  ``Context``, ``Image``; ``Event``/``parse_events``. Answers are tolerant: they accept
  whatever a real or older server sends (``"<none>"``, ``"101Mi"``, ``"Failed
  (DeadlineExceeded)"``, missing keys) and never raise; oddities land in ``anomalies``.
- :mod:`.parsing` -- the tolerant value parsers those records share.
- :mod:`.registry` -- ``ContainerRegistry`` (private-image credentials).
- :mod:`.configuration` -- ``~/.canfar/config.yaml`` as the official ``canfar`` client reads
  and writes it, so a ``canfar login`` is picked up unchanged.

The words (states, kinds, the name rule, limits) live in :mod:`canfar_widgets.vocabulary`.

Example:
    >>> from canfar_widgets.models import CreateRequest, SessionRecord
    >>> CreateRequest(name="job", image="skaha/terminal:1.1.2").image
    'images.canfar.net/skaha/terminal:1.1.2'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canfar_widgets._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover - the names, for type checkers; loaded on first use
    from canfar_widgets.models.configuration import (
        ActiveSelection,
        Configuration,
        ConsoleSettings,
        Credential,
        OIDCCredential,
        Server,
        X509Credential,
        default_certificate_path,
        default_config_path,
        write_yaml_atomic,
    )
    from canfar_widgets.models.create import CreateRequest, normalise_image
    from canfar_widgets.models.events import Event, parse_events
    from canfar_widgets.models.parsing import parse_gigabytes, parse_quantity, parse_time
    from canfar_widgets.models.platform import Context, Image, ResourceOptions, Stats
    from canfar_widgets.models.registry import ContainerRegistry, registry_from_environment
    from canfar_widgets.models.session import SessionRecord
    from canfar_widgets.stacklevel import caller_stacklevel
    from canfar_widgets.vocabulary import KINDS, STATUSES, Kind, Status, server_kind, server_status

# Each name loads its module on first use (PEP 562): a session's first call then imports the
# session model without the configuration, registry, event and create models it does not
# need (~80 ms of a first call; docs/performance.md, "First call").
_WHERE = {
    "ActiveSelection": "canfar_widgets.models.configuration",
    "Configuration": "canfar_widgets.models.configuration",
    "ConsoleSettings": "canfar_widgets.models.configuration",
    "Credential": "canfar_widgets.models.configuration",
    "OIDCCredential": "canfar_widgets.models.configuration",
    "Server": "canfar_widgets.models.configuration",
    "X509Credential": "canfar_widgets.models.configuration",
    "default_certificate_path": "canfar_widgets.models.configuration",
    "default_config_path": "canfar_widgets.models.configuration",
    "write_yaml_atomic": "canfar_widgets.models.configuration",
    "CreateRequest": "canfar_widgets.models.create",
    "normalise_image": "canfar_widgets.models.create",
    "Event": "canfar_widgets.models.events",
    "parse_events": "canfar_widgets.models.events",
    "parse_gigabytes": "canfar_widgets.models.parsing",
    "parse_quantity": "canfar_widgets.models.parsing",
    "parse_time": "canfar_widgets.models.parsing",
    "Context": "canfar_widgets.models.platform",
    "Image": "canfar_widgets.models.platform",
    "ResourceOptions": "canfar_widgets.models.platform",
    "Stats": "canfar_widgets.models.platform",
    "ContainerRegistry": "canfar_widgets.models.registry",
    "registry_from_environment": "canfar_widgets.models.registry",
    "SessionRecord": "canfar_widgets.models.session",
    "caller_stacklevel": "canfar_widgets.stacklevel",
    "KINDS": "canfar_widgets.vocabulary",
    "STATUSES": "canfar_widgets.vocabulary",
    "Kind": "canfar_widgets.vocabulary",
    "Status": "canfar_widgets.vocabulary",
    "server_kind": "canfar_widgets.vocabulary",
    "server_status": "canfar_widgets.vocabulary",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "KINDS",
    "STATUSES",
    "ActiveSelection",
    "Configuration",
    "ConsoleSettings",
    "ContainerRegistry",
    "Context",
    "CreateRequest",
    "Credential",
    "Event",
    "Image",
    "Kind",
    "OIDCCredential",
    "ResourceOptions",
    "Server",
    "SessionRecord",
    "Stats",
    "Status",
    "X509Credential",
    "caller_stacklevel",
    "default_certificate_path",
    "default_config_path",
    "normalise_image",
    "parse_events",
    "parse_gigabytes",
    "parse_quantity",
    "parse_time",
    "registry_from_environment",
    "server_kind",
    "server_status",
    "write_yaml_atomic",
]
