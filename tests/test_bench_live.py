"""benchmarks/bench_live.py takes a trained folder through --sources (so a candidate is measured before it
ships) and refuses an unknown style with the way to add one. Correctness only; its figures are its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import make_style

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_live.py"
FAST = ["--frames", "2", "--settle", "1", "--fixed", "0", "--threads", "1", "--frame", "64x48"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_a_local_folder_is_benchmarked_under_a_suffixed_key(tmp_path):
    folder = make_style(tmp_path / "styles" / "udnie", name="udnie")  # the name of an embedded style
    out = tmp_path / "live.json"
    r = _run("--sources", f"embedded,{folder.parent}", "--styles", "udnie-2", "--json", str(out), *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["style"] for row in rows] == ["udnie-2"]
    assert rows[0]["width"] == 8  # the tiny folder's network, not the embedded udnie's
    assert rows[0]["auto_fps"] > 0


def test_an_unknown_style_is_refused_naming_the_sources_option(tmp_path):
    r = _run("--styles", "no_such_style", "--json", str(tmp_path / "x.json"), *FAST)
    assert r.returncode == 2
    assert "style 'no_such_style' is not available" in r.stderr and "--sources" in r.stderr and "udnie" in r.stderr
    assert not (tmp_path / "x.json").exists()
