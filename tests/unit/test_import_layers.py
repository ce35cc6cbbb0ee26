"""Import layering: app/ never imports deployments/ (deployments import app/, and a cycle
breaks Ray Serve's import of the graph), and the history CLI is a light process."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Modules only the server needs: a CLI that loads them starts slowly and needs the server's
# whole environment to answer a SQL query.
SERVER_ONLY = ("ray", "torch", "vllm", "gliner2")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import, at any depth (lazy imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def imports_of(package: str, module_file: Path) -> list[str]:
    tree = ast.parse(module_file.read_text(), filename=str(module_file))
    return [
        f"{module_file.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imported_modules(tree)
        if name == package or name.startswith(f"{package}.")
    ]


def test_no_module_under_app_imports_deployments() -> None:
    modules = sorted((ROOT / "app").rglob("*.py"))
    assert len(modules) > 20  # the walk found the package
    offending = [found for path in modules for found in imports_of("deployments", path)]
    assert offending == []


def test_the_layer_check_sees_lazy_imports() -> None:
    tree = ast.parse("def f():\n    from deployments.encoder import import_object\n")
    assert imported_modules(tree) == [(2, "deployments.encoder")]


def test_the_history_cli_loads_no_server_only_module() -> None:
    """`python -m app.history --help` (its `main`), plus the modules its subcommands import
    lazily (the server config for the storage root, the store for `compact`), in a fresh
    interpreter."""
    probe = f"""
import json, sys
from app.history.__main__ import main
try:
    main(["--help"])
except SystemExit:
    pass
import app.config, app.history.store
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {SERVER_ONLY!r})
print(json.dumps({{"duckdb": "duckdb" in sys.modules, "loaded": loaded}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["duckdb"] is True  # the probe loaded the CLI it means to check
    assert report["loaded"] == []
