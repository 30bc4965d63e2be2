"""Load the front end: one ES module per widget, with its shared helpers inlined.

Why a tiny inliner instead of a bundler: anywidget evaluates ``_esm`` as one module from a
string (a blob URL), where relative imports cannot resolve; and installing from a fresh
clone must need only Python and pip. So ``js/`` stays plain ES modules that node and the
browser tests can import as they are, and this module joins a widget's entry module with
the helpers it imports from ``./lib/``.

The rules the inliner relies on (kept by every file in ``js/``):

- an entry module imports helpers only as ``import { a, b } from "./lib/name.js";``;
- a helper in ``js/lib/`` may import other helpers as ``from "./name.js"``;
- helpers export only named declarations (``export function``, ``export const``,
  ``export class``); the entry module ends with ``export default { ... }``.

Example:
    >>> source = load_esm("session_table")
    >>> "export default" in source
    True
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

__all__ = ["frontend_dir", "load_css", "load_esm"]

_IMPORT = re.compile(
    r"""^\s*import\s*\{(?P<names>[^}]*)\}\s*from\s*["'](?P<path>\.{1,2}/[^"']+\.js)["'];?\s*$""",
    re.MULTILINE,
)
_EXPORT = re.compile(r"^export\s+(?=(async\s+)?function|const|let|class)", re.MULTILINE)


def frontend_dir() -> Path:
    """The folder holding the ES modules: inside the installed package, or the repo's js/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "js", here.parent / "js"):
        if (candidate / "styles.css").is_file():
            return candidate
    raise FileNotFoundError(
        "canfar-widgets front end not found (expected canfar_widgets/js or js/ beside the package); "
        "reinstall with `pip install canfar-widgets`"
    )


@cache
def load_esm(entry: str) -> str:
    """The ES module source for widget ``entry`` (``js/<entry>.js``) with helpers inlined."""
    root = frontend_dir()
    seen: set[Path] = set()
    chunks: list[str] = []

    def include(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        for match in _IMPORT.finditer(text):
            include((path.parent / match["path"]).resolve())
        body = _IMPORT.sub("", text)
        chunks.append(f"// --- {path.relative_to(root.resolve())}\n{_EXPORT.sub('', body).strip()}\n")

    entry_path = (root / f"{entry}.js").resolve()
    text = entry_path.read_text(encoding="utf-8")
    for match in _IMPORT.finditer(text):
        include((entry_path.parent / match["path"]).resolve())
    chunks.append(f"// --- {entry}.js\n{_IMPORT.sub('', text).strip()}\n")
    return "\n".join(chunks)


@cache
def load_css() -> str:
    """The stylesheet: ``js/styles.css`` (theme, shared parts) then ``js/css/<widget>.css``.

    Every rule is scoped under ``.canfar-w``: anywidget's CSS is global to the page.
    """
    root = frontend_dir()
    parts = [root / "styles.css", *sorted((root / "css").glob("*.css"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in parts if p.is_file())
