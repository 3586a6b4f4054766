"""No module outside tfod_seg/io.py touches files with the standard library (issue 10).

Every user path may be a URL (gs://, ram://), so `open`, `os.path.exists`/`isfile`/`isdir`,
`glob.glob`, `os.listdir`/`walk`/`makedirs`, `shutil` copies and `os.replace` on a path are bugs
outside `tfod_seg.io`. The few uses on paths that are local by nature are listed in `ALLOWED`
with the reason; an entry that no longer matches anything is an error too, so the list stays
true. Read statically (AST): nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, Tuple

PACKAGE = Path(__file__).resolve().parents[1] / "tfod_seg"

CALLS = {
    "open", "os.path.exists", "os.path.isfile", "os.path.isdir", "os.path.getsize", "os.path.getmtime",
    "glob.glob", "glob.iglob", "os.listdir", "os.scandir", "os.walk", "os.makedirs", "os.mkdir", "os.remove",
    "os.unlink", "os.rmdir", "os.replace", "os.rename", "shutil.copy", "shutil.copy2", "shutil.copyfile",
    "shutil.copytree", "shutil.rmtree", "shutil.move",
}

# (module path under tfod_seg/, function) -> why a standard-library call there is right.
ALLOWED: Dict[Tuple[str, str], str] = {
    ("io.py", "*"): "the IO module itself: local paths use the standard library, URLs tf.io.gfile",
    ("engines/tfod/interpreter.py", "find_tfod_python"): "a Python interpreter to execute is a local file by nature",
    ("cli/_quiet.py", "quiet_output"): "the command's log file is local by design (log_path_for sends the log of a "
                                       "URL output folder to ~/.cache/tfod-seg/logs)",
    ("config/templates.py", "shipped_dir"): "the templates shipped inside the package (pipelines/) are local files",
    ("engines/garden/export.py", "export"): "removes its own local staging folder (tempfile.mkdtemp) in `finally`",
}


def _name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _calls(path: Path) -> Iterator[Tuple[str, int, str]]:
    """``(function or class, line, call)`` for each standard-library file call in ``path``
    (the top-level definition it is in: a method counts as its class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    stack = []

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node):
            stack.append(node.name)
            self.generic_visit(node)
            stack.pop()

        visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

        def visit_Call(self, node):
            name = _name(node.func)
            if name in CALLS:
                found.append((stack[0] if stack else "<module>", node.lineno, name))
            self.generic_visit(node)

    found = []
    Visitor().visit(tree)
    return iter(found)


def _scan() -> Dict[Tuple[str, str], list]:
    hits: Dict[Tuple[str, str], list] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for func, line, call in _calls(path):
            key = (rel, "*") if (rel, "*") in ALLOWED else (rel, func)
            hits.setdefault(key, []).append(f"tfod_seg/{rel}:{line} {func}: {call}()")
    return hits


def test_file_access_goes_through_tfod_seg_io():
    hits = _scan()
    bad = [h for key, found in hits.items() if key not in ALLOWED for h in found]
    assert not bad, ("standard-library file calls outside tfod_seg/io.py (use tfod_seg.io, which takes local "
                     "paths and URLs; or add the function to ALLOWED with why its path is local by nature):\n  "
                     + "\n  ".join(bad))


def test_allowlist_is_current():
    hits = _scan()
    stale = [f"{mod}:{func}" for mod, func in ALLOWED if (mod, func) not in hits]
    assert not stale, f"ALLOWED entries that match no call any more (remove them): {stale}"


def test_the_scan_finds_calls(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import os, glob\n"
                      "def f(p):\n    with open(p) as fh:\n        return glob.glob(p), os.path.exists(p), fh\n"
                      "def g(p):\n    return io.open_file(p)\n", encoding="utf-8")
    assert [(f, c) for f, _, c in _calls(sample)] == [("f", "open"), ("f", "glob.glob"), ("f", "os.path.exists")]
