"""The front end's pure logic (js/lib) under node's built-in test runner, plus a syntax check
of every widget module as the browser receives it (entry + inlined helpers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from canfar_widgets.vocabulary import as_json
from canfar_widgets.widgets._frontend import frontend_dir, load_esm

NODE = shutil.which("node")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def test_node_unit_tests_pass():
    result = subprocess.run(
        [NODE, "--test", "js/tests/"],
        cwd=ROOT,
        env={**os.environ, "CANFAR_VOCABULARY": as_json()},  # what the loader injects
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


@pytest.mark.parametrize("entry", sorted(p.stem for p in frontend_dir().glob("*.js")))
def test_inlined_module_parses(entry, tmp_path):
    # What anywidget evaluates: one module, helpers inlined. A name clash between helpers
    # or a leftover relative import would only show up here (or in a browser).
    source = load_esm(entry)
    assert 'from "./' not in source and "from './" not in source
    path = tmp_path / f"{entry}.mjs"
    path.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [NODE, "--check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "export default" in source


def _frontend_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> Path:
    """A js/ folder in ``tmp_path`` holding the real helpers plus ``files``, served by the loader."""
    import canfar_widgets.widgets._frontend as frontend

    root = tmp_path / "js"
    shutil.copytree(frontend_dir(), root)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(frontend, "frontend_dir", lambda: root)
    load_esm.cache_clear()
    return root


def _evaluate(source: str, tmp_path: Path) -> object:
    """Import ``source`` as node would the browser's module; return its default export as JSON."""
    module = tmp_path / "module.mjs"
    module.write_text(source, encoding="utf-8")
    script = tmp_path / "run.mjs"
    script.write_text(
        f"const m = await import({json.dumps(module.as_uri())});\n"
        "console.log(JSON.stringify(m.default));\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "CANFAR_VOCABULARY"}  # only the loader's
    result = subprocess.run(
        [NODE, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_each_helper_has_its_own_scope(tmp_path, monkeypatch):
    # Two helpers with the same private names, imported under another name: under one shared
    # scope (the old inliner) this module would not even parse.
    _frontend_copy(tmp_path, monkeypatch, {
        "lib/one.js": "let counter = 1;\nfunction bump() { return ++counter; }\nexport function one() { return bump(); }\n",
        "lib/two.js": "let counter = 10;\nfunction bump() { return ++counter; }\nexport function two() { return bump(); }\n",
        "probe.js": 'import { one } from "./lib/one.js";\nimport { two as other } from "./lib/two.js";\n'
                    "const counter = 100;\nexport default { values: [one(), other(), counter] };\n",
    })  # fmt: skip
    try:
        assert _evaluate(load_esm("probe"), tmp_path) == {"values": [2, 11, 100]}
    finally:
        load_esm.cache_clear()


def test_vocabulary_is_injected_from_python(tmp_path, monkeypatch):
    _frontend_copy(tmp_path, monkeypatch, {
        "probe.js": 'import { VOCABULARY } from "./lib/vocabulary.js";\nexport default VOCABULARY;\n',
    })  # fmt: skip
    try:
        source = load_esm("probe")
        assert "CANFAR_VOCABULARY" not in source  # the repo's node stand-in is not shipped
        assert _evaluate(source, tmp_path) == json.loads(as_json())
    finally:
        load_esm.cache_clear()


def test_hot_reload_rebuilds_live_modules(tmp_path, monkeypatch):
    from support import wait_until

    import canfar_widgets.widgets._frontend as frontend

    root = _frontend_copy(tmp_path, monkeypatch, {"probe.js": "export default { version: 1 };\n"})
    monkeypatch.setenv("ANYWIDGET_HMR", "1")
    assert frontend.hot_reload_enabled()
    watcher = frontend._Watcher(interval=0.05)
    try:
        live = watcher.live(("esm", "probe"), lambda: load_esm("probe"))
        seen: list[str] = []
        live.changed.connect(seen.append)  # what anywidget listens to
        assert "version: 1" in str(live)
        time.sleep(0.05)  # a new mtime even on coarse clocks
        (root / "probe.js").write_text("export default { version: 2 };\n", encoding="utf-8")
        assert wait_until(lambda: "version: 2" in str(live), timeout=10)
        assert seen and "version: 2" in seen[-1]
    finally:
        watcher.stop()
        load_esm.cache_clear()


def test_without_hmr_widgets_get_plain_text(monkeypatch):
    import canfar_widgets.widgets._frontend as frontend

    monkeypatch.delenv("ANYWIDGET_HMR", raising=False)
    assert frontend.live_esm("session_table") == load_esm("session_table")


def test_memory_reads_the_same_in_the_table_and_the_kernel(tmp_path, monkeypatch):
    """formatGiB (the table, in the browser) and capacity.format_gib (the HTML fallback and
    every kernel-side text) say one memory figure the same way."""
    from canfar_widgets.widgets.capacity import format_gib, gib_from_gb

    # As reported (decimal GB) then converted, as the rows carry them; and edges around the
    # whole-number tolerance and the MiB switch.
    values = [gib_from_gb(gb) for gb in (4.29, 1.07, 137.439, 8, 0.54, 0, 0.01, 250)]
    values += [1.0, 0.999, 2.02, 2.03, 10.3, 15.9, 20.6, 100.9, 101.5]
    probe = f'import {{ formatGiB }} from "./lib/format.js";\nexport default {json.dumps(values)}.map(formatGiB);\n'
    _frontend_copy(tmp_path, monkeypatch, {"probe.js": probe})
    try:
        assert _evaluate(load_esm("probe"), tmp_path) == [format_gib(v) for v in values]
    finally:
        load_esm.cache_clear()
