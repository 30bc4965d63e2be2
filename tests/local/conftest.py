"""Fixtures of the local-platform tests: a fast platform (the root ``make_platform``, with
:data:`support.FAST_PLATFORM`) and an authorised HTTP client of it. A module whose tests are
about one setting overrides ``platform`` with ``make_platform(<that setting>)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from local_support import authorized_client

from canfar_widgets.local import LocalPlatform


@pytest.fixture
def platform(make_platform: Callable[..., LocalPlatform]) -> LocalPlatform:
    return make_platform()


@pytest.fixture
def client(platform: LocalPlatform) -> Iterator[httpx.Client]:
    with authorized_client(platform) as c:
        yield c
