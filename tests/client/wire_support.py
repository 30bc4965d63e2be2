"""What the respx-based client tests share: the test server's address and secrets, one
calling convention for `Session` and `AsyncSession` (`Api`), and builders of what a v1
server sends (`record`) and of what the client sent (`form`, `body_json`).

The pytest fixtures built on these (`api`, `make_api`, `flavour`, `slept`) live in this
folder's `conftest.py`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from canfar_widgets.sessions import AsyncSession, Session

BASE = "https://ws.example.org/skaha/v1/"
TOKEN = "SENTINEL-TOKEN-7f3a9"
REGISTRY_USER = "robot"
REGISTRY_SECRET = "SENTINEL-REGISTRY-SECRET-c41e"


class Api:
    """One calling convention for both clients: ``api.fetch(...)`` returns the result.

    The async flavour runs each call in its own ``asyncio.run`` loop, on purpose: one
    ``AsyncSession`` awaited from many loops must work, since its I/O lives on the runner.
    """

    def __init__(self, flavour: str, **kwargs: Any) -> None:
        self.flavour = flavour
        kwargs.setdefault("url", BASE)
        kwargs.setdefault("token", TOKEN)
        self.client: Session | AsyncSession = (
            Session(**kwargs) if flavour == "sync" else AsyncSession(**kwargs)
        )

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self.flavour == "sync":
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        self.client.close()


def record(
    key: str, status: str = "Running", name: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A session record as a v1 server sends it."""
    return {
        "id": key,
        "userid": "alice",
        "image": "images.canfar.net/skaha/terminal:1.1.2",
        "type": "headless",
        "status": status,
        "name": name or f"job-{key}",
        "connectURL": "",
        "requestedGPUCores": "0",
        "isFixedResources": False,
        **extra,
    }


def form(request) -> list[tuple[str, str]]:
    """The decoded form body of an httpx request, in order."""
    from urllib.parse import parse_qsl

    return parse_qsl(request.content.decode(), keep_blank_values=True)


def body_json(request) -> Any:
    return json.loads(request.content)
