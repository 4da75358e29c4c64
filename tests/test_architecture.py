"""The dependency rules of docs/architecture.md, checked on the source."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "accounts", "api", "billing", "config", "core", "creative", "desk", "generation",
    "moderation", "restapi", "studio", "workflows",
}  # fmt: skip


def product_modules():
    for app in sorted(APPS):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield app, path


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_only_the_lifecycle_calls_transition():
    """Every move goes through workflows.lifecycle.generation_move, which adds its effects."""
    callers = sorted(
        str(path.relative_to(ROOT))
        for _, path in product_modules()
        if ".transition(" in path.read_text()
    )
    assert callers == ["workflows/lifecycle.py"]


def test_no_app_imports_another_inside_a_function():
    """A cross-app import hidden in a function would dodge the layer rules until it runs."""
    hidden = []
    for app, path in product_modules():
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in APPS and top != app:
                        hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert hidden == []
