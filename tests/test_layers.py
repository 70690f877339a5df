"""The project's layering: the core library never imports upward (from `agents/` or from its applications),
the commands import their code only when they run, and every method's options have their config section."""

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from mtrl.combiners import COMBINERS
from mtrl.config import MethodsConfig

LIBRARY = Path(__file__).resolve().parent.parent / "mtrl"
# `python -m mtrl.<app>` entry points
COMMAND_SHIMS = {"bench.py", "sweep.py", "imbalance.py", "weight_trace.py", "reward_spread.py", "task_scalars.py"}


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


ENTRY_POINTS = [("path", "train.py"), ("path", "evaluate.py"),
                *(("module", f"mtrl.{Path(name).stem}") for name in sorted(COMMAND_SHIMS))]


@pytest.mark.parametrize("kind,entry", ENTRY_POINTS, ids=[entry for _, entry in ENTRY_POINTS])
def test_a_collector_worker_importing_the_command_loads_no_torch(kind, entry):
    """spawn starts each collector worker by running the parent's main script or module again, as `__mp_main__`
    (multiprocessing.spawn runs it with runpy, as here): the commands import their code only when run, or each
    worker would spend memory and start-up time on loading torch and the training code, which it never uses."""
    run = (f"runpy.run_path({entry!r}, run_name='__mp_main__')" if kind == "path" else
           f"runpy.run_module({entry!r}, run_name='__mp_main__', alter_sys=True)")
    check = f"import runpy, sys; {run}; assert 'torch' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", check], cwd=LIBRARY.parent, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
