"""The user docs say true things: links resolve, and the compatibility table's signatures hold."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
# The methods docs/client-api.md says have the same signature as canfar 1.5.2.
SAME_SIGNATURE = [
    "fetch",
    "stats",
    "info",
    "logs",
    "events",
    "create",
    "destroy",
    "destroy_with",
    "renew",
    "connect",
]
# Deliberate differences, each listed in docs/client-api.md's compatibility table:
# {method: {parameter: (canfar's kind, ours)}}. destroy_with takes kind and status by
# position too, as the skaha 1.6 page writes it (issue 11); keywords still work.
KIND_DIFFERENCES = {
    "destroy_with": {
        "kind": (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD),
        "status": (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD),
    },
}


@pytest.mark.parametrize("page", [*PAGES, "../README.md"])
def test_local_links_and_images_exist(page):
    path = DOCS / page
    text = path.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{page} links to missing {target}"


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    assert [p for p in PAGES if p != "index.md" and f"]({p})" not in index] == []


@pytest.mark.parametrize("cls_name", ["Session", "AsyncSession"])
@pytest.mark.parametrize("method", SAME_SIGNATURE)
def test_same_signature_as_canfar(cls_name, method):
    """Same parameter names, order, kinds and defaults; extra keyword-only ones allowed."""
    canfar_sessions = pytest.importorskip("canfar.sessions")
    from canfar_widgets import sessions

    theirs = inspect.signature(getattr(getattr(canfar_sessions, cls_name), method)).parameters
    ours = inspect.signature(getattr(getattr(sessions, cls_name), method)).parameters
    shared = list(ours)[: len(theirs)]
    assert shared == list(theirs)
    differences = KIND_DIFFERENCES.get(method, {})
    for name, param in theirs.items():
        if name in differences:
            assert (param.kind, ours[name].kind) == differences[name], name
        else:
            assert ours[name].kind == param.kind, name
        assert ours[name].default == param.default, name
    extra = list(ours)[len(theirs) :]
    if method in KIND_DIFFERENCES:  # errors= turned keyword-only in both, after a positional
        assert ours["errors"].kind is inspect.Parameter.KEYWORD_ONLY
    assert all(ours[name].kind is inspect.Parameter.KEYWORD_ONLY for name in extra), extra
