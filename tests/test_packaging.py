"""What the package imports is what it declares, with floors that really provide it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from conftest import REPO

#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "huggingface_hub": "huggingface_hub"}
OPTIONAL = {"gradio", "onnx", "onnxruntime"}  # extras: imported lazily, declared under optional-dependencies


def _imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _declared() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    return {re.split(r"[<>=!~ \[;]", s, maxsplit=1)[0].lower().replace("-", "_"): s for s in specs}


def test_every_third_party_import_is_declared():
    third_party = {n for n in _imports(REPO / "fastnst") if n not in sys.stdlib_module_names and n != "fastnst"}
    declared = _declared()
    missing = sorted(n for n in third_party if DISTRIBUTIONS.get(n, n).lower() not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_huggingface_hub_floor_brings_httpx2():
    """fastnst catches httpx2's errors, which only huggingface_hub 2.x uses (1.x would fail at every load)."""
    spec = _declared()["huggingface_hub"]
    floor = re.search(r">=\s*(\d+)", spec)
    assert floor and int(floor.group(1)) >= 2, spec
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^huggingface_hub>=2", requirements, re.M) and re.search(r"^httpx2>=", requirements, re.M)
