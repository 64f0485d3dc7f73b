"""What the package imports is what it declares, with floors that really provide it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from conftest import REPO

#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "huggingface_hub": "huggingface_hub", "cv2": "opencv_python_headless"}
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


def _internal_imports(path: Path) -> set[str]:
    """fastnst modules ``path`` imports, at the top or inside functions (``fastnst`` for the package itself)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(f"fastnst.{node.module}" if node.module else "fastnst")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fastnst":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fastnst"}
    return found


def _module_graph() -> dict[str, set[str]]:
    return {("fastnst" if p.stem == "__init__" else f"fastnst.{p.stem}"): _internal_imports(p)
            for p in (REPO / "fastnst").glob("*.py")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            found = visit(dep, path + [node])
            if found:
                return found
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


def test_no_import_cycle_inside_the_package():
    """Modules import in one direction, counting the imports inside functions."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check finds one
    assert _cycle({"a": {"b"}, "b": set()}) is None
    cycle = _cycle(_module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_network_file_is_only_the_network():
    """model.py holds the network and its hub mixin; style-folder I/O and Hub error translation live elsewhere."""
    tree = ast.parse((REPO / "fastnst" / "model.py").read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions <= {"pad_input"}, functions


def test_every_subcommand_is_defined_in_cli_py():
    commands = set()
    for path in (REPO / "fastnst").glob("*.py"):
        text = path.read_text()
        found = set(re.findall(r"add_parser\(\s*\"([\w-]+)\"", text))
        if path.name != "cli.py":
            assert not found, f"{path.name} defines subcommands {found}: they belong in cli.py"
        commands |= found
    assert {"stylize", "train", "push", "pull", "list", "export", "eval"} <= commands


def test_cli_help_does_not_import_torch():
    """``fastnst --help`` and ``fastnst train --help`` build every option without the heavy modules."""
    import subprocess

    code = ("import sys, contextlib, io\nfrom fastnst.cli import build_parser\n"
            "for argv in (['--help'], ['train', '--help'], ['eval', '--help']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        build_parser().parse_args(argv)\n"
            "print(sorted(m for m in ('torch', 'huggingface_hub', 'datasets', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


def test_readme_layout_table_matches_the_tree():
    """Every module of fastnst/ (and demo/) is in the README's Layout table, and every path there exists."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:fastnst|demo|benchmarks|train_scripts|docs|tests)/[\w./-]*)`", table))
    missing_paths = sorted(p for p in named if not (REPO / p).exists())
    assert not missing_paths, f"the Layout table names paths that do not exist: {missing_paths}"
    modules = {f"fastnst/{p.name}" for p in (REPO / "fastnst").glob("*.py") if p.name != "__init__.py"}
    modules |= {f"demo/{p.name}" for p in (REPO / "demo").glob("*.py") if p.name != "__init__.py"}
    assert not sorted(modules - named), f"modules missing from the Layout table: {sorted(modules - named)}"
