"""The front end's pure logic (js/lib) under node's built-in test runner, plus a syntax check
of every widget module as the browser receives it (entry + inlined helpers)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from canfar_widgets.widgets._frontend import frontend_dir, load_esm

NODE = shutil.which("node")
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def test_node_unit_tests_pass():
    result = subprocess.run(
        [NODE, "--test", "js/tests/"],
        cwd=ROOT,
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
    result = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "export default" in source
