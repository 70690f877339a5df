"""The project's layering: the core library never imports upward (from `agents/` or from its applications),
and every method's options have their config section."""

import ast
import dataclasses
from pathlib import Path

from mtrl.combiners import COMBINERS
from mtrl.config import MethodsConfig

LIBRARY = Path(__file__).resolve().parent.parent / "mtrl"
# `python -m mtrl.<app>` entry points
COMMAND_SHIMS = {"bench.py", "sweep.py", "imbalance.py", "weight_trace.py", "reward_spread.py"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_library_never_imports_from_agents_or_the_applications():
    for path in LIBRARY.rglob("*.py"):
        relative = path.relative_to(LIBRARY)
        for module in imported_modules(path):
            assert not module.startswith("agents"), f"mtrl/{relative} imports {module}"
            if relative.parts[0] != "apps" and relative.name not in COMMAND_SHIMS:
                assert not module.startswith("mtrl.apps"), f"mtrl/{relative} imports {module}"


def test_every_method_with_options_has_its_config_section():
    sections = {f.name: type(getattr(MethodsConfig(), f.name)) for f in dataclasses.fields(MethodsConfig)}
    assert sections == {name: cls.Options for name, cls in COMBINERS.items() if cls.Options}
