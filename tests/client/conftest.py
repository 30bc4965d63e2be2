"""Fixtures of the client tests: both flavours of the client (`api`, `make_api`,
`flavour`) and retry delays recorded instead of slept (`slept`).

Modules that must not see the user's configuration or `CANFAR_*` variables say so with
``pytestmark = pytest.mark.usefixtures("clean_home")`` (the fixture is in the root conftest).
"""

from __future__ import annotations

from typing import Any

import pytest
from wire_support import Api

from canfar_widgets.wire import Wire


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """Retries record their delays here instead of sleeping them."""
    delays: list[float] = []

    async def fake_sleep(self: Wire, seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(Wire, "_sleep", fake_sleep)
    return delays


@pytest.fixture(params=["sync", "async"])
def flavour(request) -> str:
    return request.param


@pytest.fixture
def make_api(flavour):
    made: list[Api] = []

    def make(**kwargs: Any) -> Api:
        api = Api(flavour, **kwargs)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api) -> Api:
    return make_api()
