"""Load the front end: one ES module per widget, its helpers inlined, each in its own scope.

Why a tiny inliner instead of a bundler: anywidget evaluates ``_esm`` as one module from a
string (a blob URL), where relative imports cannot resolve; and installing from a fresh
clone must need only Python and pip. So ``js/`` stays plain ES modules that node can import
as they are, and this module joins a widget's entry module with the helpers it imports.

How a helper is inlined: its body runs inside a function, whose result is the helper's
exports; an import becomes a destructuring of that result. So ::

    // js/lib/dom.js                       // what the browser gets
    let counter = 0;                       const __lib_dom = (() => {
    export function uid() { ... }            let counter = 0;
                                             function uid() { ... }
    // js/session_table.js                   return { uid };
    import { uid } from "./lib/dom.js";    })();
                                           const { uid } = __lib_dom;

Private names (``counter``) stay private to their helper, as they are under node.

The rules every file in ``js/`` keeps (tests/widgets/test_js.py checks the result parses):

- imports of helpers are written ``import { a, b as c } from "./lib/name.js";`` (entries)
  or ``from "./name.js"`` (a helper importing another), one statement per line;
- a helper exports only named declarations (``export function``, ``export async function``,
  ``export const``, ``export let``, ``export class``), nothing else;
- an entry module ends with ``export default { ... }``; the loader wraps that object with
  ``js/lib/snapshot.js``'s ``withSnapshot`` (each view hides the widget's saved snapshot);
- ``js/lib/vocabulary.js`` is generated: the loader serves
  ``export const VOCABULARY = <canfar_widgets.vocabulary, as JSON>;`` in its place, so the
  platform's words (states, kinds, the name rule, limits) are defined once, in Python.
  Node (the JS unit tests) reads the same JSON from the ``CANFAR_VOCABULARY`` environment
  variable, which tests/widgets/test_js.py sets.

Development: with ``ANYWIDGET_HMR=1`` and the package not installed in site-packages,
widgets get their module as a live value that is rebuilt when a file in ``js/`` changes,
and open views reload (anywidget's hot module replacement), without restarting the kernel.

Example:
    >>> source = load_esm("session_table")
    >>> "export default" in source
    True
"""

from __future__ import annotations

import logging
import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from canfar_widgets.vocabulary import as_json

__all__ = ["frontend_dir", "live_css", "live_esm", "load_css", "load_esm"]

_IMPORT = re.compile(
    r"""^[ \t]*import\s*\{(?P<names>[^}]*)\}\s*from\s*["'](?P<path>\.{1,2}/[^"']+\.js)["'];?[ \t]*$""",
    re.MULTILINE,
)
_EXPORT = re.compile(
    r"^export\s+(?:(?:async\s+)?function\*?|const|let|class)\s+(?P<name>[A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_EXPORT_KEYWORD = re.compile(r"^export\s+(?=(?:async\s+)?function|const|let|class)", re.MULTILINE)
VOCABULARY_HELPER = "lib/vocabulary.js"

log = logging.getLogger("canfar_widgets.widgets")


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
    root = frontend_dir().resolve()
    scopes: dict[Path, str] = {}  # helper path -> the constant holding its exports
    chunks: list[str] = []

    def imports(text: str, here: Path) -> str:
        """``text`` with each helper import replaced by a destructuring of its scope."""

        def replace(match: re.Match[str]) -> str:
            scope = include((here.parent / match["path"]).resolve())
            names = [n.strip() for n in match["names"].split(",") if n.strip()]
            bindings = ", ".join(n.replace(" as ", ": ") for n in names)
            return f"const {{ {bindings} }} = {scope};"

        return _IMPORT.sub(replace, text)

    def include(path: Path) -> str:
        if path in scopes:
            return scopes[path]
        relative = path.relative_to(root).as_posix()
        scope = "__" + re.sub(r"\W", "_", relative.removesuffix(".js"))
        scopes[path] = scope
        if relative == VOCABULARY_HELPER:
            text = f"export const VOCABULARY = Object.freeze({as_json()});\n"
        else:
            text = path.read_text(encoding="utf-8")
        names = [m["name"] for m in _EXPORT.finditer(text)]
        body = _EXPORT_KEYWORD.sub("", imports(text, path)).strip()
        chunks.append(
            f"// --- {relative}\nconst {scope} = (() => {{\n{body}\nreturn {{ {', '.join(names)} }};\n}})();\n"
        )
        return scope

    entry_path = (root / f"{entry}.js").resolve()
    body = imports(_with_base_view(entry_path.read_text(encoding="utf-8")), entry_path).strip()
    chunks.append(f"// --- {entry}.js\n{body}\n")
    return "\n".join(chunks)


_DEFAULT = re.compile(r"^export default\b", re.MULTILINE)


def _with_base_view(text: str) -> str:
    """An entry whose default export is wrapped by ``js/lib/snapshot.js``'s ``withSnapshot``.

    What every widget view does beyond its own code (hide its saved snapshot while it
    shows) lives there once, instead of in each entry.
    """
    if not _DEFAULT.search(text):
        return text
    text = _DEFAULT.sub("const __canfar_view =", text, count=1)
    return (
        'import { withSnapshot as __withSnapshot } from "./lib/snapshot.js";\n'
        f"{text}\nexport default __withSnapshot(__canfar_view);\n"
    )


@cache
def load_css() -> str:
    """The stylesheet: ``js/styles.css`` (theme, shared parts) then ``js/css/<widget>.css``.

    Every rule is scoped under ``.canfar-w``: anywidget's CSS is global to the page.
    """
    root = frontend_dir()
    parts = [root / "styles.css", *sorted((root / "css").glob("*.css"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in parts if p.is_file())


# -- hot reload in development -------------------------------------------------------------


def hot_reload_enabled() -> bool:
    """``ANYWIDGET_HMR=1`` and a source checkout (not an installed package)."""
    if os.environ.get("ANYWIDGET_HMR") != "1":
        return False
    parts = frontend_dir().resolve().parts
    return "site-packages" not in parts and "dist-packages" not in parts


def live_esm(entry: str) -> Any:
    """What a widget class sets as ``_esm``: the module text, or in development a live value
    (anywidget's ``VirtualFileContents``) that follows edits to ``js/``."""
    if not hot_reload_enabled():
        return load_esm(entry)
    return _watcher().live(("esm", entry), lambda: load_esm(entry))


def live_css() -> Any:
    """What a widget class sets as ``_css`` (see :func:`live_esm`)."""
    if not hot_reload_enabled():
        return load_css()
    return _watcher().live(("css", ""), load_css)


class _Watcher:
    """Polls ``js/`` every ``interval`` seconds (stdlib only: no watchfiles needed) and
    rebuilds every live module when a file changed."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._live: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._stamp = self._scan()
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name="canfar-widgets-hmr", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def live(self, key: tuple[str, str], build: Any) -> Any:
        try:  # anywidget's own live value (what it uses for _esm = Path(...)); not public API
            from anywidget._file_contents import VirtualFileContents
        except ImportError:  # another anywidget: no hot reload, the plain text still works
            log.warning("hot reload unavailable with this anywidget version")
            return build()
        with self._lock:
            if key not in self._live:
                self._live[key] = (VirtualFileContents(build()), build)
            return self._live[key][0]

    @staticmethod
    def _scan() -> tuple[tuple[str, float], ...]:
        root = frontend_dir()
        files = [*root.rglob("*.js"), *root.rglob("*.css")]
        return tuple(sorted((str(p), p.stat().st_mtime) for p in files if p.is_file()))

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            stamp = self._scan()
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            load_esm.cache_clear()
            load_css.cache_clear()
            with self._lock:
                live = list(self._live.values())
            for contents, build in live:
                try:
                    contents.contents = build()  # anywidget sends it to every open view
                except Exception as exc:  # a half-saved file: wait for the next save
                    log.warning("front end not reloaded: %s", exc)


@cache
def _watcher() -> _Watcher:
    return _Watcher()
