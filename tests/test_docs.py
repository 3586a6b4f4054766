"""The documentation runs as written.

For README.md and docs/*.md:

* every ``tfod-seg ...`` command in a fenced ``bash`` block parses with the real parser
  (`tfod_seg.cli.build_parser`), and the cheap ones that need no data (``templates``,
  ``labelmap --classes/--check``, ``--help`` pages) run in-process and exit 0;
* ``make TARGET`` names a Makefile target; ``python tools/X.py --flag`` names a flag that
  script defines; ``python -m tfod_seg...`` names a module that exists;
* every flag written in inline code (`` `--flag` ``, `` `tfod-seg infer --format coco` ``)
  exists: in that command's parser when the span names the command, else in some tfod-seg
  command, a tools/ script, the TFOD2 launcher, or the short list of other programs' flags below;
* every ``from tfod_seg.X import name`` in a ``python`` block names a module and a name that
  exist, and keyword arguments passed to an imported function are in its signature;
* every relative link points to an existing file, and its ``#anchor`` to a heading there.

Commands that cannot run here (gs://, Dataflow, GPU, long training) are still parse-checked.
Everything is read statically or parsed; nothing imports TensorFlow.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import os
import re
import shlex
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

import pytest

from tfod_seg.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

# Flags of other programs that the docs name in inline code (TFOD2's and Model Garden's own
# scripts, pip, pytest, Beam/Dataflow, gcloud, Docker). A flag not here and not defined by
# tfod-seg, a tools/ script or the TFOD2 launcher is a documentation error.
EXTERNAL_FLAGS = {
    # TFOD2 model_main_tf2 / exporter_main_v2 / create_coco_tf_record, Model Garden scripts
    "--include_masks", "--num_processes", "--num_shards", "--experiment", "--config_file", "--mode",
    "--params_override", "--eval_timeout", "--checkpoint_dir", "--pipeline_config_path", "--model_dir",
    # pip, pytest
    "--no-deps", "--upgrade", "--editable", "--no-compile", "--no-cache-dir", "--force-reinstall",
    # Apache Beam / Dataflow pipeline options
    "--runner", "--project", "--region", "--temp_location", "--staging_location", "--setup_file",
    "--requirements_file", "--sdk_container_image", "--job_name", "--direct_num_workers",
    "--direct_running_mode", "--flink_master", "--spark_master_url", "--environment_type",
    "--environment_config", "--max_num_workers", "--machine_type", "--worker_machine_type",
    "--flink_job_server_jar", "--spark_job_server_jar", "--job_endpoint", "--artifact_endpoint",
    # gcloud, docker, tensorflow_model_server
    "--zone", "--accelerator-type", "--version", "--config", "--display-name", "--worker-pool-spec",
    "--command", "--tag", "--port", "--rest_api_port", "--model_name", "--model_base_path",
}


class Command(NamedTuple):
    doc: Path
    line: int
    argv: List[str]

    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


# -- reading the docs -----------------------------------------------------------------------
def fenced_blocks(path: Path) -> Iterator[Tuple[str, int, List[str]]]:
    """(language, line number of the first content line, lines) of each fenced block."""
    lang, start, body = None, 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1) or "text", n + 1, []
        elif fence:
            yield lang, start, body
            lang = None
        elif lang is not None:
            body.append(line)


def prose(path: Path) -> Iterator[Tuple[int, str]]:
    """Lines outside fenced blocks, numbered."""
    inside = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if re.match(r"^\s*```", line):
            inside = not inside
        elif not inside:
            yield n, line


def shell_commands(doc: Path) -> Iterator[Command]:
    """Each simple command of each bash block: continuation lines joined, comments dropped,
    split at ``&&``, ``||``, ``;`` and ``|``, leading ``VAR=value`` assignments removed."""
    for lang, start, lines in fenced_blocks(doc):
        if lang not in ("bash", "sh", "shell", "console"):
            continue
        buf, first = "", None
        for i, line in enumerate(lines):
            if first is None:
                first = start + i
            buf += line
            if buf.endswith("\\"):
                buf = buf[:-1] + " "
                continue
            try:
                tokens = shlex.split(buf, comments=True)
            except ValueError as e:
                pytest.fail(f"{doc.relative_to(ROOT)}:{first}: cannot split the shell line ({e}): {buf}")
            part: List[str] = []
            for tok in tokens + [";"]:
                if tok in ("&&", "||", ";", "|"):
                    while part and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", part[0]):
                        part.pop(0)
                    if part:
                        yield Command(doc, first, part)
                    part = []
                else:
                    part.append(tok)
            buf, first = "", None


def all_commands() -> List[Command]:
    return [c for doc in DOCS for c in shell_commands(doc)]


def tfod_seg_argv(argv: List[str]) -> Optional[List[str]]:
    """The arguments after ``tfod-seg`` / ``python -m tfod_seg``, or None for another program."""
    if argv[0] == "tfod-seg" or argv[0].endswith("/tfod-seg"):
        return argv[1:]
    if re.search(r"(^|/)python[\d.]*$", argv[0]) and argv[1:3] == ["-m", "tfod_seg"]:
        return argv[3:]
    return None


# -- the real parser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    """The CLI's parser, without prefix matching: a doc must spell each flag in full."""
    p = build_parser()
    for sub in [p] + list(subparsers(p).values()):
        sub.allow_abbrev = False
    return p


def subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_strings(parser: argparse.ArgumentParser) -> Set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def parse(parser: argparse.ArgumentParser, cmd: Command, argv: List[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            pytest.fail(f"{cmd.where()}: `tfod-seg {shlex.join(argv)}` does not parse:\n{err.getvalue().strip()}")


TFOD_SEG_COMMANDS = [c for c in all_commands() if tfod_seg_argv(c.argv) is not None]


def test_docs_show_commands():
    """The extraction itself works: the README's tour and the pages' examples are found."""
    docs = {c.doc.name for c in TFOD_SEG_COMMANDS}
    assert "README.md" in docs and "training.md" in docs and "data-formats.md" in docs
    assert len(TFOD_SEG_COMMANDS) > 40


@pytest.mark.parametrize("cmd", TFOD_SEG_COMMANDS, ids=lambda c: c.where())
def test_command_parses(parser, cmd: Command):
    argv = tfod_seg_argv(cmd.argv)
    assert "..." not in argv, f"{cmd.where()}: a placeholder '...' in a command cannot run as written"
    parse(parser, cmd, argv)


def _is_cheap(argv: List[str]) -> bool:
    """Commands that need no data: help/version pages, templates, label maps from names."""
    if "--help" in argv or "-h" in argv or argv == ["--version"]:
        return True
    args = [a for a in argv if a not in ("-v", "-vv")]
    if not args:
        return False
    if args[0] == "templates":
        return True
    if args[0] == "labelmap" and "--classes" in args:
        return True
    if args[0] == "labelmap" and "--check" in args:
        return (ROOT / args[args.index("--check") + 1]).is_file()
    return False


CHEAP = [c for c in TFOD_SEG_COMMANDS if _is_cheap(tfod_seg_argv(c.argv))]


def test_some_commands_are_cheap():
    assert any(tfod_seg_argv(c.argv)[0] == "templates" for c in CHEAP)


@pytest.mark.parametrize("cmd", CHEAP, ids=lambda c: c.where())
def test_cheap_command_runs(cmd: Command, tmp_path, monkeypatch, capsys):
    for shipped in ("pipelines", "label_maps"):
        (tmp_path / shipped).symlink_to(ROOT / shipped)
    monkeypatch.chdir(tmp_path)
    argv = tfod_seg_argv(cmd.argv)
    try:
        code = main(argv)
    except SystemExit as e:  # --help / --version
        code = e.code or 0
    out = capsys.readouterr()
    assert code == 0, f"{cmd.where()}: `tfod-seg {shlex.join(argv)}` exited {code}:\n{out.err}"
    assert out.out.strip(), f"{cmd.where()}: `tfod-seg {shlex.join(argv)}` printed nothing"


# -- other programs in the bash blocks ------------------------------------------------------
def make_targets() -> Set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M)}


def tool_flags(script: Path) -> Set[str]:
    return set(re.findall(r"[\"'](--[A-Za-z][\w-]*)[\"']", script.read_text(encoding="utf-8")))


def test_make_and_tool_commands():
    targets = make_targets()
    problems = []
    for cmd in all_commands():
        argv = cmd.argv
        if argv[0] == "make":
            for t in (a for a in argv[1:] if not a.startswith("-") and "=" not in a):
                if t not in targets:
                    problems.append(f"{cmd.where()}: `make {t}`: no such Makefile target")
        script = next((a for a in argv[1:2] if a.startswith("tools/") and a.endswith(".py")), None)
        if script and re.search(r"python[\d.]*$", argv[0]):
            path = ROOT / script
            if not path.is_file():
                problems.append(f"{cmd.where()}: {script} does not exist")
                continue
            known = tool_flags(path) | {"--help", "-h"}
            for flag in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
                if flag not in known:
                    problems.append(f"{cmd.where()}: {script} has no flag {flag}")
        if re.search(r"python[\d.]*$", argv[0]) and len(argv) > 2 and argv[1] == "-m" \
                and argv[2].startswith("tfod_seg.") and importlib.util.find_spec(argv[2]) is None:
            problems.append(f"{cmd.where()}: no module {argv[2]}")
    assert not problems, "\n".join(problems)


# -- flags named in prose -------------------------------------------------------------------
FLAG_RE = re.compile(r"(?:^|[\s\[(])(--[A-Za-z][\w-]*)")
# Inline code that starts with another program's name shows that program's flags: not checked.
OTHER_PROGRAMS = {"make", "docker", "gcloud", "gsutil", "pip", "pip3", "git", "curl", "kubectl", "bash", "sh",
                  "tensorflow_model_server", "saved_model_cli", "pytest", "apt-get", "sudo", "tar", "rsync"}


def test_inline_flags_exist(parser):
    subs = subparsers(parser)
    everywhere = option_strings(parser).union(*(option_strings(p) for p in subs.values()))
    tools = set().union(*(tool_flags(p) for p in (ROOT / "tools").glob("*.py")))
    launcher = tool_flags(ROOT / "tfod_seg" / "engines" / "tfod" / "launcher.py")
    known = everywhere | tools | launcher | EXTERNAL_FLAGS
    problems = []
    for doc in DOCS:
        for n, line in prose(doc):
            for span in re.findall(r"`([^`]+)`", line):
                words = span.split()
                flags = FLAG_RE.findall(span)
                if words and (words[0] in OTHER_PROGRAMS or words[0].endswith("/pip")):
                    continue
                if words and words[0] == "tfod-seg" and len(words) > 1 and words[1] in subs:
                    own = option_strings(subs[words[1]])
                    problems += [f"{doc.relative_to(ROOT)}:{n}: `{span}`: {f} is not a flag of "
                                 f"`tfod-seg {words[1]}`" for f in flags if f.split("=")[0] not in own]
                else:
                    problems += [f"{doc.relative_to(ROOT)}:{n}: `{span}`: no command defines {f}"
                                 for f in flags if f.split("=")[0] not in known]
    assert not problems, "\n".join(problems)


def test_subcommands_named_in_prose_exist(parser):
    subs = subparsers(parser)
    problems = []
    for doc in DOCS:
        for n, line in prose(doc):
            for name in re.findall(r"`tfod-seg ([a-z][\w-]*)", line):
                if name not in subs:
                    problems.append(f"{doc.relative_to(ROOT)}:{n}: `tfod-seg {name}` is not a command")
    assert not problems, "\n".join(problems)


# -- Python snippets ------------------------------------------------------------------------
def module_file(module: str) -> Optional[Path]:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def top_level(tree: ast.Module) -> Dict[str, ast.AST]:
    """Names a module defines at top level (defs, classes, assignments, imports) and in __all__."""
    names: Dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    names[t.id] = node
                    if t.id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple)):
                        for e in node.value.elts:
                            if isinstance(e, ast.Constant):
                                names.setdefault(e.value, node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update({(a.asname or a.name).split(".")[0]: node for a in node.names})
    return names


def accepted_keywords(node: ast.AST) -> Optional[Set[str]]:
    """Keyword names a function (or a dataclass, by its fields) accepts; None when unknown or
    ``**kwargs``."""
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is not None:
            return accepted_keywords(init)
        is_dataclass = any("dataclass" in ast.unparse(d) for d in node.decorator_list)
        fields = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        return fields if is_dataclass and fields else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.args.kwarg is not None:
        return None
    return {a.arg for a in node.args.args + node.args.kwonlyargs}


def _definition(module: str, name: str, defined: Dict[str, ast.AST], depth: int = 0) -> Optional[ast.AST]:
    """The def/class ``name`` of ``module``, following ``from tfod_seg.x import name`` re-exports."""
    node = defined.get(name)
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfod_seg") and depth < 3:
        path = module_file(node.module)
        if path is not None:
            return _definition(node.module, name, top_level(ast.parse(path.read_text(encoding="utf-8"))), depth + 1)
    return node


PY_BLOCKS = [(doc, start, lines) for doc in DOCS for lang, start, lines in fenced_blocks(doc) if lang == "python"]


@pytest.mark.parametrize("doc,start,lines", PY_BLOCKS, ids=[f"{d.name}:{s}" for d, s, _ in PY_BLOCKS])
def test_python_snippet_names_exist(doc: Path, start: int, lines: List[str]):
    where = f"{doc.relative_to(ROOT)}:{start}"
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as e:
        pytest.fail(f"{doc.relative_to(ROOT)}:{start + (e.lineno or 1) - 1}: not valid Python: {e.msg}")
    functions: Dict[str, Tuple[str, ast.AST]] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfod_seg":
            path = module_file(node.module)
            if path is None:
                problems.append(f"{where}: no module {node.module}")
                continue
            defined = top_level(ast.parse(path.read_text(encoding="utf-8")))
            for alias in node.names:
                sub = module_file(f"{node.module}.{alias.name}")
                if alias.name not in defined and sub is None:
                    problems.append(f"{where}: {node.module} has no {alias.name}")
                else:
                    target = _definition(node.module, alias.name, defined)
                    if isinstance(target, (ast.FunctionDef, ast.ClassDef)):
                        functions[alias.asname or alias.name] = (f"{node.module}.{alias.name}", target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tfod_seg" and module_file(alias.name) is None:
                    problems.append(f"{where}: no module {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            qualname, fn = functions[node.func.id]
            accepted = accepted_keywords(fn)
            if accepted is not None:
                problems += [f"{where}: {qualname}() takes no keyword {kw.arg!r}"
                             for kw in node.keywords if kw.arg and kw.arg not in accepted]
    assert not problems, "\n".join(problems)


# -- links ----------------------------------------------------------------------------------
def anchors(path: Path) -> Set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered."""
    seen: Dict[str, int] = {}
    out = set()
    for _n, line in prose(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_relative_links_resolve():
    problems = []
    for doc in DOCS:
        for n, line in prose(doc):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^[a-z]+://|^mailto:", target):
                    continue
                file_part, _, anchor = target.partition("#")
                path = (doc.parent / file_part).resolve() if file_part else doc
                if not path.exists():
                    problems.append(f"{doc.relative_to(ROOT)}:{n}: link to {target}: no such file")
                elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                    problems.append(f"{doc.relative_to(ROOT)}:{n}: link to {target}: no heading #{anchor} there")
    assert not problems, "\n".join(problems)
