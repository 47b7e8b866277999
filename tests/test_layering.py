"""The layering of the package, checked by reading every import (lazy ones included).

core (`nasnet_app/` without `cli/`) imports only itself; `zoo`, `search` and
`evaluate` import the core; `search` may draw with `evaluate`; only the CLI
package wires everything. Benchmarks (`evaluate/benchmarks/`) are scripts, not
part of the package.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Folder in the repository -> the layer its modules belong to.
FOLDERS = {"nasnet_app": "core", "zoo": "zoo", "search": "search", "evaluate": "evaluate"}
ALLOWED = {
    "core": {"core"},
    "zoo": {"core", "zoo"},
    "search": {"core", "search", "evaluate"},
    "evaluate": {"core", "evaluate"},
    "cli": {"core", "zoo", "search", "evaluate", "cli"},
}


def _layer_of_module(name):
    parts = name.split(".")
    if parts[0] != "nasnet_app":
        return None
    if len(parts) > 1 and parts[1] in ("zoo", "search", "evaluate", "cli"):
        return parts[1]
    return "core"


def _imported_layers(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, _layer_of_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "nasnet_app":
                for alias in node.names:
                    yield node.lineno, _layer_of_module(f"nasnet_app.{alias.name}")
            else:
                yield node.lineno, _layer_of_module(node.module)


def _package_files():
    for folder, layer in FOLDERS.items():
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "benchmarks")]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    relative = os.path.relpath(path, REPO)
                    in_cli = relative.startswith(os.path.join("nasnet_app", "cli") + os.sep)
                    yield relative, "cli" if in_cli else layer


def test_every_import_respects_the_layers():
    violations = []
    files = list(_package_files())
    assert len(files) > 40
    for relative, layer in files:
        with open(os.path.join(REPO, relative), encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), relative)
        for line, imported in _imported_layers(tree):
            if imported is not None and imported not in ALLOWED[layer]:
                violations.append(f"{relative}:{line} ({layer}) imports {imported}")
    assert not violations, "\n".join(violations)


def test_the_rules_have_no_cycle():
    def reaches(start, goal, seen=()):
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, (*seen, nxt)))
            for nxt in ALLOWED[start] - {start}
        )

    assert not [layer for layer in ALLOWED if reaches(layer, layer)]


@pytest.mark.parametrize(
    "source, layer",
    [("import nasnet_app.zoo.api", "zoo"), ("from nasnet_app import search", "search")],
)
def test_the_checker_sees_both_import_forms(source, layer):
    assert [found for _, found in _imported_layers(ast.parse(source))] == [layer]
