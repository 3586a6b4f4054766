"""Architecture rules checked by the suite: import-linter contracts (.importlinter), every
package placed in a layer, sibling imports at the top of library modules, short functions."""

import ast
import configparser
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfod_seg"

# Sibling modules that import a heavy stack (TensorFlow) at their own top level, or would close a cycle:
# importing them lazily, inside the function that needs them, is the same rule as for the heavy
# stacks themselves. (module, imported module) → reason.
HEAVY_SIBLINGS = {
    ("tfod_seg/engines/garden/export.py", "tfod_seg.engines.garden"): "garden.signature imports TensorFlow",
    ("tfod_seg/engines/garden/loop.py", "tfod_seg.engines.garden"): "garden.schedule imports TensorFlow",
    ("tfod_seg/inference/predict.py", "tfod_seg.inference.edge"): "a cycle: inference.edge imports predict.load_image",
}
# Library modules allowed to import other tfod_seg modules inside functions: none. CLI modules
# are exempt: they import library code inside `run` so that `tfod-seg --help` stays light.
LOCAL_IMPORTS_LEFT: set = set()
# Functions allowed over 80 lines: none.
LONG_FUNCTIONS_LEFT: set = set()


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _imports_tfod_seg(node) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "tfod_seg"
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "tfod_seg" for a in node.names)
    return False


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (it is in the test extra of setup.py)"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_package_is_in_a_layer():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".importlinter")
    layered = {name.strip().split(".")[1] for line in cfg["importlinter:contract:layers"]["layers"].splitlines()
               for name in line.replace("|", ":").split(":") if name.strip()}
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name not in ("__init__.py", "__main__.py")}
    assert top - layered == set(), f"add these to a layer in .importlinter: {sorted(top - layered)}"


def test_library_modules_import_siblings_at_the_top():
    offenders = set()
    for name, tree in _modules():
        if name.startswith("tfod_seg/cli/"):
            continue
        for f in _functions(tree):
            for n in ast.walk(f):
                if _imports_tfod_seg(n) and (name, getattr(n, "module", None)) not in HEAVY_SIBLINGS:
                    offenders.add(name)
    new = offenders - LOCAL_IMPORTS_LEFT
    assert not new, f"function-local 'from tfod_seg...' imports in library modules (move them to the top): {sorted(new)}"


def test_functions_are_at_most_80_lines():
    long = {f"{name}:{f.name}": f.end_lineno - f.lineno + 1 for name, tree in _modules() for f in _functions(tree)
            if f.end_lineno - f.lineno + 1 > 80}
    new = {k: v for k, v in long.items() if k not in LONG_FUNCTIONS_LEFT}
    assert not new, f"functions over 80 lines (split into plan / execute / report steps): {new}"


def test_the_layer_check_catches_an_upward_import(tmp_path):
    # The contract file is not vacuous: a copy of the package where data imports the CLI breaks it.
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    shutil.copytree(PACKAGE, tmp_path / "tfod_seg", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    bad = tmp_path / "tfod_seg" / "data" / "_upward.py"
    bad.write_text("import tfod_seg.cli\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "tfod_seg.data._upward -> tfod_seg.cli" in proc.stdout
