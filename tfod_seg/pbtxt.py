"""Protobuf text format (as in TFOD2 ``pipeline.config``) read and edited without the schema.

The document is a concrete syntax tree: every comment, blank line, separator and the field
order are kept, so an unmodified document dumps back byte-identical and an edited one changes
only the edited lines. Fields are addressed by dotted paths with optional indices for repeated
fields, counted over all occurrences of the name (``metrics_set: "a" metrics_set: "b"`` and
``metrics_set: ["a", "b"]`` both give ``eval_config.metrics_set[1] == "b"``)::

    doc = PbtxtDocument.load("pipeline.config")
    doc.get("model.faster_rcnn.num_classes")                       # 90
    doc.set("model.faster_rcnn.num_classes", 3)
    doc.set_all("train_input_reader.tf_record_input_reader.input_path", ["a-*.tfrecord"])
    doc.set("train_input_reader.mask_type", Ident("PNG_MASKS"))    # an enum value, unquoted
    doc.add("train_config.data_augmentation_options", {"random_horizontal_flip": {}})
    doc.remove("eval_config.metrics_set[1]")
    doc.dump("pipeline.config")

Values: strings → ``str`` (adjacent literals concatenated, escapes decoded), integers → ``int``,
floats → ``float``, ``true``/``false`` → ``bool``, other identifiers (enum values) → `Ident`,
sub-messages → `Message`. Without the schema an identifier cannot be told from a string by
type, so enum values are written with `Ident`; setting a ``str`` where the file has an
identifier keeps it unquoted.

Parse errors name ``file:line:column``. `validate_with_schema` additionally parses the text
with the real ``object_detection.protos.pipeline_pb2`` schema when TFOD2 is importable.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from tfod_seg.errors import ConfigError
from tfod_seg.io import atomic_write_text, read_text

__all__ = [
    "Ident",
    "Scalar",
    "Message",
    "ListValue",
    "Field",
    "PbtxtDocument",
    "format_value",
    "parse_path",
    "validate_with_schema",
]


class Ident(str):
    """An unquoted identifier value (an enum value such as ``PNG_MASKS``)."""

    def __repr__(self) -> str:
        return f"Ident({str.__repr__(self)})"


_MISSING = object()
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# -- tokenizer ------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[fF]?)(?![A-Za-z0-9_.])
           |-(?:inf(?:inity)?|nan)\b)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>\[\]:;,/.])
    """,
    re.VERBOSE,
)


class _Tok:
    __slots__ = ("kind", "text", "start", "end")

    def __init__(self, kind, text, start, end):
        self.kind, self.text, self.start, self.end = kind, text, start, end


def _tokenize(text: str, source: str) -> List[_Tok]:
    toks, pos, n = [], 0, len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if not m:
            line, col = _line_col(text, pos)
            ch = text[pos]
            what = "an unterminated string" if ch in "\"'" else repr(ch)
            raise ConfigError(f"{source}:{line}:{col}: cannot parse {what}")
        toks.append(_Tok(m.lastgroup, m.group(), pos, m.end()))
        pos = m.end()
    return toks


def _line_col(text: str, pos: int) -> Tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


# -- values ---------------------------------------------------------------------------------
_SIMPLE_ESC = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34, "?": 63}


def _unescape(body: str) -> str:
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1] if i + 1 < n else ""
        if e in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[e])
            i += 2
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
        elif e in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not m:
                out += b"\\" + e.encode()
                i += 2
                continue
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif e in "uU":
            width = 4 if e == "u" else 8
            hexd = body[i + 2:i + 2 + width]
            out += chr(int(hexd, 16)).encode("utf-8")
            i += 2 + width
        else:
            out += ("\\" + e).encode("utf-8")
            i += 2
    return out.decode("utf-8", errors="surrogateescape")


def quote(s: str, mark: str = '"') -> str:
    """``s`` as a protobuf-text string literal between ``mark`` quotes (``"`` or ``'``); every
    character survives a round trip through the parser (and TFOD2's ``text_format``)."""
    out = [mark]
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == mark:
            out.append("\\" + mark)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("\\%03o" % ord(ch))
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append("\\%03o" % (ord(ch) - 0xDC00))
        else:
            out.append(ch)
    out.append(mark)
    return "".join(out)



def format_value(value: Any) -> str:
    """Protobuf-text literal for a Python scalar (bool, int, float, str, Ident)."""
    if isinstance(value, Ident):
        if not _IDENT_RE.match(value):
            raise ConfigError(f"not a valid enum identifier: {value!r}")
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise ConfigError(f"cannot write a {type(value).__name__} as a protobuf text scalar: {value!r}")


class Scalar:
    """A scalar value as written: ``raw`` is the exact source text (possibly several adjacent
    string literals with whitespace between them)."""

    def __init__(self, raw: str, parts: Sequence[_Tok] = ()):
        self.raw = raw
        self._parts = [(t.kind, t.text) for t in parts] if parts else None

    @classmethod
    def of(cls, value: Any) -> "Scalar":
        s = cls(format_value(value))
        s._value = value
        return s

    @property
    def kind(self) -> str:
        parts = self._parts or [(k, t) for k, t in _scalar_parts(self.raw)]
        kinds = {k for k, _ in parts if k not in ("ws", "comment")}
        return kinds.pop() if len(kinds) == 1 else "str"

    @property
    def value(self) -> Any:
        if "_value" in self.__dict__:
            return self._value
        parts = self._parts if self._parts is not None else _scalar_parts(self.raw)
        parts = [(k, t) for k, t in parts if k not in ("ws", "comment")]
        k, t = parts[0]
        if k == "str":
            v: Any = "".join(_unescape(tt[1:-1]) for _, tt in parts)
        elif k == "num":
            v = _parse_number(t)
        elif t in ("true", "True"):
            v = True
        elif t in ("false", "False"):
            v = False
        elif t.lower() in ("inf", "infinity", "nan"):
            v = float(t)
        else:
            v = Ident(t)
        self._value = v
        return v

    def dump(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Scalar({self.raw!r})"


def _scalar_parts(raw: str):
    return [(t.kind, t.text) for t in _tokenize(raw, "<value>")]


def _parse_number(t: str):
    s = t.rstrip("fF") if not t.lower().startswith(("0x", "-0x", "+0x")) else t
    try:
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", s):
            return int(s, 16)
        if re.fullmatch(r"[-+]?[0-9]+", s):
            return int(s)
        return float(s)
    except ValueError:
        return float(s)


# -- tree -----------------------------------------------------------------------------------
class Field:
    """``prefix name sep value end trail``: prefix = blank lines/comments/indent before the name,
    sep = ``:`` and spaces, end = an optional ``;``/``,`` separator, trail = spaces and a comment
    on the same line."""

    def __init__(self, name: str, value, prefix: str = "", name_raw: Optional[str] = None, sep: str = ": ",
                 end: str = "", trail: str = "", line: Optional[int] = None):
        self.name = name
        self.name_raw = name if name_raw is None else name_raw
        self.value = value
        self.prefix, self.sep, self.end, self.trail = prefix, sep, end, trail
        self.line = line

    def dump(self) -> str:
        return self.prefix + self.name_raw + self.sep + self.value.dump() + self.end + self.trail

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.value!r})"


class ListValue:
    """``[a, b, c]`` short repeated syntax; ``seps[i]`` is the raw text before item i, and
    ``seps[-1]`` the text between the last item and ``]``."""

    def __init__(self, items: List[Union[Scalar, "Message"]], seps: List[str]):
        self.items, self.seps = items, seps

    def dump(self) -> str:
        out = ["["]
        for sep, item in zip(self.seps, self.items):
            out.append(sep)
            out.append(item.dump())
        out.append(self.seps[-1])
        out.append("]")
        return "".join(out)

    def append(self, node) -> None:
        tail = self.seps.pop()
        self.seps.append(", " if self.items else tail)
        self.items.append(node)
        self.seps.append("" if not self.items[:-1] else tail)

    def pop(self, i: int) -> None:
        """Remove item i with the separator before it (for item 0: the one after it)."""
        del self.items[i]
        del self.seps[1 if i == 0 else i]


class Message:
    """A ``{ ... }`` (or ``< ... >``) block; the document itself is a Message without braces."""

    def __init__(self, fields: Optional[List[Field]] = None, open_: str = "{", close: str = "}",
                 trailing: str = "", indent: str = ""):
        self.fields: List[Field] = fields or []
        self.open, self.close, self.trailing = open_, close, trailing
        self.indent = indent  # indentation of the line holding the field that owns this block

    def dump(self) -> str:
        return self.open + "".join(f.dump() for f in self.fields) + self.trailing + self.close

    # -- helpers used by PbtxtDocument --
    def occurrences(self, name: str) -> List[Tuple[Field, Optional[int]]]:
        """(field, list index or None) for every occurrence of ``name``, in order."""
        out = []
        for f in self.fields:
            if f.name == name:
                if isinstance(f.value, ListValue):
                    out.extend((f, i) for i in range(len(f.value.items)))
                else:
                    out.append((f, None))
        return out

    def names(self) -> List[str]:
        seen = []
        for f in self.fields:
            if f.name not in seen:
                seen.append(f.name)
        return seen

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested data: repeated names become lists, sub-messages dicts."""
        out: Dict[str, Any] = {}
        for name in self.names():
            vals = [_plain(_node_at(f, i)) for f, i in self.occurrences(name)]
            out[name] = vals[0] if len(vals) == 1 and not isinstance(self._first(name).value, ListValue) else vals
        return out

    def _first(self, name):
        return next(f for f in self.fields if f.name == name)

    def field_indent(self) -> str:
        """Indentation for a new field in this block (from its existing fields, else +2)."""
        for f in reversed(self.fields):
            if "\n" in f.prefix:
                return f.prefix.rsplit("\n", 1)[1]
        if self.open == "":
            return ""
        return self.indent + "  "

    def __repr__(self) -> str:
        return f"Message({[f.name for f in self.fields]})"


def _node_at(f: Field, i: Optional[int]):
    return f.value if i is None else f.value.items[i]


def _plain(node):
    if isinstance(node, Message):
        return node.to_dict()
    return node.value


# -- parser ---------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.toks = _tokenize(text, source)
        self.i = 0

    def error(self, pos: int, msg: str) -> ConfigError:
        line, col = _line_col(self.text, pos)
        return ConfigError(f"{self.source}:{line}:{col}: {msg}")

    def trivia(self) -> str:
        """Consume whitespace and comments; return their raw text."""
        start = self.i
        while self.i < len(self.toks) and self.toks[self.i].kind in ("ws", "comment"):
            self.i += 1
        return "".join(t.text for t in self.toks[start:self.i])

    def same_line_trail(self) -> str:
        """Spaces and one comment before the next newline (kept with the preceding field)."""
        start = self.i
        if self.i < len(self.toks) and self.toks[self.i].kind == "ws":
            t = self.toks[self.i]
            if "\n" in t.text:
                return ""
            self.i += 1
        if self.i < len(self.toks) and self.toks[self.i].kind == "comment":
            self.i += 1
        elif self.i > start:  # spaces only: leave them to the next prefix
            self.i = start
            return ""
        return "".join(t.text for t in self.toks[start:self.i])

    def peek(self) -> Optional[_Tok]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse_document(self) -> Message:
        fields, trailing = self.parse_fields(close=None, indent="")
        return Message(fields, open_="", close="", trailing=trailing)

    def parse_fields(self, close: Optional[str], indent: str, opened_at: int = 0):
        fields: List[Field] = []
        while True:
            prefix = self.trivia()
            t = self.peek()
            if t is None:
                if close is not None:
                    line, col = _line_col(self.text, opened_at)
                    raise self.error(len(self.text), f"unexpected end of file, expected '{close}' closing the "
                                                     f"block opened at line {line} column {col}")
                return fields, prefix
            if close is not None and t.kind == "punct" and t.text == close:
                return fields, prefix
            if t.kind == "ident" or (t.kind == "punct" and t.text == "["):
                fields.append(self.parse_field(prefix, indent))
            else:
                expected = f"a field name or '{close}'" if close else "a field name"
                raise self.error(t.start, f"expected {expected}, got {t.text!r}")

    def parse_field(self, prefix: str, outer_indent: str) -> Field:
        t = self.peek()
        name_start = t.start
        line, _ = _line_col(self.text, name_start)
        if t.kind == "punct":  # [extension.name] or [type.googleapis.com/pkg.Msg]
            j = self.i + 1
            while j < len(self.toks) and not (self.toks[j].kind == "punct" and self.toks[j].text == "]"):
                if self.toks[j].kind not in ("ident", "punct") or self.toks[j].text in "{}<>[:;,":
                    raise self.error(self.toks[j].start, f"bad extension name, got {self.toks[j].text!r}")
                j += 1
            if j >= len(self.toks):
                raise self.error(t.start, "unterminated '[' in field name")
            name_raw = self.text[t.start:self.toks[j].end]
            self.i = j + 1
        else:
            name_raw = t.text
            self.i += 1
        name = name_raw
        indent = _indent_of(self.text, name_start)
        sep_start = self.i
        self.trivia()
        colon = False
        t2 = self.peek()
        if t2 is not None and t2.kind == "punct" and t2.text == ":":
            colon = True
            self.i += 1
            self.trivia()
            t2 = self.peek()
        sep = "".join(x.text for x in self.toks[sep_start:self.i])
        if t2 is None:
            raise self.error(len(self.text), f"unexpected end of file after field name '{name}'")
        if t2.kind == "punct" and t2.text in "{<":
            value = self.parse_message(indent)
        elif t2.kind == "punct" and t2.text == "[":
            value = self.parse_list(name, indent)
        else:
            if not colon:
                raise self.error(t2.start, f"expected ':' after field name '{name}', got {t2.text!r}")
            value = self.parse_scalar(name)
        # optional ';' or ','
        end = ""
        save = self.i
        tr = self.trivia()
        t3 = self.peek()
        if t3 is not None and t3.kind == "punct" and t3.text in ";,":
            self.i += 1
            end = tr + t3.text
        else:
            self.i = save
        trail = self.same_line_trail()
        return Field(name, value, prefix=prefix, name_raw=name_raw, sep=sep, end=end, trail=trail, line=line)

    def parse_message(self, indent: str) -> Message:
        t = self.toks[self.i]
        open_ = t.text
        close = "}" if open_ == "{" else ">"
        self.i += 1
        fields, trailing = self.parse_fields(close=close, indent=indent, opened_at=t.start)
        self.i += 1  # the close token
        return Message(fields, open_=open_, close=close, trailing=trailing, indent=indent)

    def parse_list(self, name: str, indent: str) -> ListValue:
        open_tok = self.toks[self.i]
        self.i += 1
        items, seps = [], []
        sep_start = self.i
        self.trivia()
        t = self.peek()
        if t is not None and t.kind == "punct" and t.text == "]":
            seps.append("".join(x.text for x in self.toks[sep_start:self.i]))
            self.i += 1
            return ListValue(items, seps)
        while True:
            seps.append("".join(x.text for x in self.toks[sep_start:self.i]))
            t = self.peek()
            if t is None:
                raise self.error(open_tok.start, f"unterminated '[' in the value of '{name}'")
            if t.kind == "punct" and t.text in "{<":
                items.append(self.parse_message(indent))
            else:
                items.append(self.parse_scalar(name))
            sep_start = self.i
            self.trivia()
            t = self.peek()
            if t is not None and t.kind == "punct" and t.text == ",":
                self.i += 1
                self.trivia()
                continue
            if t is not None and t.kind == "punct" and t.text == "]":
                seps.append("".join(x.text for x in self.toks[sep_start:self.i]))
                self.i += 1
                return ListValue(items, seps)
            got = "end of file" if t is None else repr(t.text)
            raise self.error(t.start if t else len(self.text), f"expected ',' or ']' in the list of '{name}', got {got}")

    def parse_scalar(self, name: str) -> Scalar:
        t = self.peek()
        if t.kind in ("num", "ident"):
            self.i += 1
            return Scalar(t.text, [t])
        if t.kind == "str":
            start = self.i
            self.i += 1
            # adjacent string literals concatenate (possibly across whitespace/comments)
            while True:
                save = self.i
                self.trivia()
                nt = self.peek()
                if nt is not None and nt.kind == "str":
                    self.i += 1
                    continue
                self.i = save
                break
            parts = self.toks[start:self.i]
            return Scalar("".join(p.text for p in parts), parts)
        raise self.error(t.start, f"expected a value for field '{name}', got {t.text!r}")


def _indent_of(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    m = re.match(r"[ \t]*", text[line_start:pos])
    return m.group() if m else ""


# -- paths ----------------------------------------------------------------------------------
_PATH_PART = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\])(?:\[(?P<idx>-?\d+)\])?")


def parse_path(path: str) -> List[Tuple[str, Optional[int]]]:
    """``'a.b[1].c'`` → ``[('a', None), ('b', 1), ('c', None)]``."""
    parts, pos = [], 0
    while True:
        m = _PATH_PART.match(path, pos)
        if not m:
            raise ConfigError(f"bad field path {path!r} at character {pos + 1}; expected e.g. 'eval_config.metrics_set[1]'")
        parts.append((m.group("name"), None if m.group("idx") is None else int(m.group("idx"))))
        pos = m.end()
        if pos == len(path):
            return parts
        if path[pos] != ".":
            raise ConfigError(f"bad field path {path!r} at character {pos + 1}; expected '.' or '[index]'")
        pos += 1


# -- document -------------------------------------------------------------------------------
class PbtxtDocument:
    """An editable protobuf-text document. See the module docstring."""

    def __init__(self, root: Message, source: Optional[str] = None, text: Optional[str] = None):
        self.root = root
        self.source = source or "<pbtxt>"
        self._original = text

    # construction / output
    @classmethod
    def parse(cls, text: str, source: Optional[str] = None) -> "PbtxtDocument":
        src = source or "<pbtxt>"
        root = _Parser(text, src).parse_document()
        return cls(root, src, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PbtxtDocument":
        path = os.fspath(path)
        return cls.parse(read_text(path, ConfigError, newline=""), path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PbtxtDocument":
        doc = cls(Message(open_="", close=""), "<generated>")
        for k, v in data.items():
            for item in (v if isinstance(v, list) else [v]):
                doc.add(k, item)
        if doc.root.fields:
            doc.root.fields[0].prefix = doc.root.fields[0].prefix.lstrip("\n")
            doc.root.trailing = "\n"
        return doc

    def text(self) -> str:
        return self.root.dump()

    def dump(self, path: str | os.PathLike | None = None) -> str:
        """The text; written atomically to ``path`` when given."""
        text = self.text()
        if path is not None:
            atomic_write_text(path, text)
        return text

    __str__ = text

    def to_dict(self) -> Dict[str, Any]:
        return self.root.to_dict()

    # lookups
    def _where(self, msg_path: str) -> str:
        return f"{self.source}: field '{msg_path}'"

    def _resolve_parent(self, path: str, create: bool):
        parts = parse_path(path)
        msg = self.root
        walked = []
        for name, idx in parts[:-1]:
            walked.append(name if idx is None else f"{name}[{idx}]")
            occ = msg.occurrences(name)
            if not occ:
                if not create:
                    raise KeyError(".".join(walked))
                if idx not in (None, 0):
                    raise ConfigError(f"{self.source}: cannot create '{'.'.join(walked)}': there is no {name}[0] yet")
                msg = self._append_message(msg, name)
                continue
            if idx is None:
                if len(occ) > 1:
                    raise ConfigError(
                        f"{self.source}: field '{'.'.join(walked)}' occurs {len(occ)} times; "
                        f"give an index, e.g. '{'.'.join(walked)}[0]'")
                idx = 0
            if idx < 0:
                idx += len(occ)
            if not 0 <= idx < len(occ):
                if create and idx == len(occ):
                    msg = self._append_message(msg, name)
                    continue
                raise ConfigError(f"{self.source}: field '{'.'.join(walked)}' has {len(occ)} occurrence(s), no index {idx}")
            node = _node_at(*occ[idx])
            if not isinstance(node, Message):
                raise ConfigError(f"{self.source}: field '{'.'.join(walked)}' is a value, not a message")
            msg = node
        return msg, parts[-1]

    def _nodes(self, path: str) -> List[Tuple[Message, Field, Optional[int]]]:
        try:
            msg, (name, idx) = self._resolve_parent(path, create=False)
        except KeyError:
            return []
        occ = msg.occurrences(name)
        if idx is None:
            return [(msg, f, i) for f, i in occ]
        if idx < 0:
            idx += len(occ)
        if not 0 <= idx < len(occ):
            return []
        f, i = occ[idx]
        return [(msg, f, i)]

    def has(self, path: str) -> bool:
        return bool(self._nodes(path))

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The value at ``path`` (a Python scalar or a `Message`). A repeated field without an
        index must occur exactly once (use `get_all` for all occurrences)."""
        nodes = self._nodes(path)
        if not nodes:
            if default is not _MISSING:
                return default
            raise ConfigError(f"{self.source}: no field '{path}'{self.suggest(path)}")
        if len(nodes) > 1:
            raise ConfigError(f"{self.source}: field '{path}' occurs {len(nodes)} times; "
                              f"give an index (e.g. '{path}[0]') or use get_all")
        _, f, i = nodes[0]
        node = _node_at(f, i)
        return node if isinstance(node, Message) else node.value

    def get_all(self, path: str) -> List[Any]:
        out = []
        for _, f, i in self._nodes(path):
            node = _node_at(f, i)
            out.append(node if isinstance(node, Message) else node.value)
        return out

    def line_of(self, path: str) -> Optional[int]:
        """The source line of the (first) field at ``path``, for error messages."""
        nodes = self._nodes(path)
        return nodes[0][1].line if nodes else None

    def paths(self, prefix: str = "", msg: Optional[Message] = None) -> List[str]:
        """Every dotted path in the document (no indices), in order, without duplicates."""
        msg = self.root if msg is None else msg
        out: List[str] = []
        for f in msg.fields:
            p = f"{prefix}.{f.name}" if prefix else f.name
            if p not in out:
                out.append(p)
            nodes = f.value.items if isinstance(f.value, ListValue) else [f.value]
            for node in nodes:
                if isinstance(node, Message):
                    out.extend(x for x in self.paths(p, node) if x not in out)
        return out

    def suggest(self, path: str) -> str:
        """``'; nearest existing: a, b'`` for a mistyped field path (empty when none is close)."""
        plain = re.sub(r"\[-?\d+\]", "", path)
        near = difflib.get_close_matches(plain, self.paths(), n=3, cutoff=0.6)
        return f"; nearest existing: {', '.join(near)}" if near else ""

    # edits
    def set(self, path: str, value: Any) -> None:
        """Set a scalar (creating missing messages and the field), or replace a message's content
        with a dict. Without an index the field must occur at most once."""
        msg, (name, idx) = self._resolve_parent(path, create=True)
        occ = msg.occurrences(name)
        if idx is None:
            if len(occ) > 1:
                raise ConfigError(f"{self.source}: field '{path}' occurs {len(occ)} times; give an index or use set_all")
            idx = 0
        if idx < 0:
            idx += len(occ)
        if idx == len(occ):
            self._append(msg, name, value)
            return
        if not 0 <= idx < len(occ):
            raise ConfigError(f"{self.source}: field '{path}' has {len(occ)} occurrence(s), no index {idx}")
        f, i = occ[idx]
        self._replace(f, i, value)

    def set_all(self, path: str, values: Sequence[Any]) -> None:
        """Make the repeated field at ``path`` hold exactly ``values`` (first occurrence keeps its
        place and comments; extra ones are removed, missing ones added after it)."""
        values = list(values)
        msg, (name, idx) = self._resolve_parent(path, create=True)
        if idx is not None:
            raise ConfigError(f"{self.source}: set_all takes a path without an index, got '{path}'")
        occ = msg.occurrences(name)
        for k, v in enumerate(values):
            if k < len(occ):
                self._replace(occ[k][0], occ[k][1], v)
            else:
                self._append(msg, name, v)
        for f, i in reversed(occ[len(values):]):
            self._remove_occurrence(msg, f, i)

    def add(self, path: str, value: Any) -> None:
        """Append one occurrence of a repeated field (scalar, or a dict for a sub-message)."""
        msg, (name, idx) = self._resolve_parent(path, create=True)
        if idx is not None:
            raise ConfigError(f"{self.source}: add takes a path without an index, got '{path}'")
        self._append(msg, name, value)

    def ensure(self, path: str) -> Message:
        """The sub-message at ``path``, created (empty) if missing."""
        msg, (name, idx) = self._resolve_parent(path, create=True)
        occ = msg.occurrences(name)
        k = 0 if idx is None else idx
        if k == len(occ):
            return self._append_message(msg, name)
        node = _node_at(*occ[k])
        if not isinstance(node, Message):
            raise ConfigError(f"{self.source}: field '{path}' is a value, not a message")
        return node

    def remove(self, path: str, missing_ok: bool = False) -> int:
        """Remove the field at ``path`` (one occurrence with an index, all without). Returns the count."""
        nodes = self._nodes(path)
        if not nodes and not missing_ok:
            raise ConfigError(f"{self.source}: no field '{path}' to remove{self.suggest(path)}")
        for msg, f, i in reversed(nodes):
            self._remove_occurrence(msg, f, i)
        return len(nodes)

    # internals
    def _replace(self, f: Field, i: Optional[int], value: Any) -> None:
        old = _node_at(f, i)
        if isinstance(value, Message):
            new = value
        elif isinstance(value, Mapping):
            if isinstance(old, Message):
                old.fields = []
                old.trailing = ""
                for k, v in value.items():
                    for item in (v if isinstance(v, list) else [v]):
                        self._append(old, k, item)
                return
            raise ConfigError(f"{self.source}: field '{f.name}' is a value, cannot set it to a message")
        else:
            if isinstance(old, Message):
                raise ConfigError(f"{self.source}: field '{f.name}' is a message, cannot set it to {value!r}")
            if isinstance(value, str) and not isinstance(value, Ident) and old.kind == "ident" \
                    and _IDENT_RE.match(value) and value not in ("true", "false"):
                value = Ident(value)  # keep enum values unquoted
            new = Scalar.of(value)
        if i is None:
            f.value = new
        else:
            f.value.items[i] = new

    def _append_message(self, msg: Message, name: str) -> Message:
        return self._append(msg, name, {})

    def _append(self, msg: Message, name: str, value: Any):
        """Add one occurrence of ``name`` after its last occurrence (or at the end); return the node."""
        indent = msg.field_indent()
        node = self._build(value, indent)
        same = [k for k, ff in enumerate(msg.fields) if ff.name == name]
        if same and isinstance(msg.fields[same[-1]].value, ListValue):
            msg.fields[same[-1]].value.append(node)  # an existing [a, b] list: extend it
            return node
        sep = " " if isinstance(node, Message) else ": "
        new = Field(name, node, prefix="\n" + indent, sep=sep)
        if same:
            msg.fields.insert(same[-1] + 1, new)
        else:
            msg.fields.append(new)
            if msg.open and "\n" not in msg.trailing:
                msg.trailing = "\n" + msg.indent + msg.trailing.lstrip(" ")
        return node

    def _build(self, value: Any, indent: str):
        if isinstance(value, (Message, Scalar)):
            return value
        if isinstance(value, Mapping):
            m = Message(indent=indent)
            for k, v in value.items():
                for item in (v if isinstance(v, list) else [v]):
                    self._append(m, k, item)
            return m
        return Scalar.of(value)

    def _remove_occurrence(self, msg: Message, f: Field, i: Optional[int]) -> None:
        if i is not None:
            f.value.pop(i)
            if f.value.items:
                return
        k = next(k for k, ff in enumerate(msg.fields) if ff is f)
        del msg.fields[k]
        if not msg.fields and msg.open and msg.trailing.strip() == "":
            msg.trailing = ""


def iter_messages(doc: PbtxtDocument) -> Iterator[Tuple[str, Message]]:
    """(path, message) for every sub-message, depth first (used by checks)."""
    def walk(msg, prefix):
        for f in msg.fields:
            p = f"{prefix}.{f.name}" if prefix else f.name
            nodes = f.value.items if isinstance(f.value, ListValue) else [f.value]
            for node in nodes:
                if isinstance(node, Message):
                    yield p, node
                    yield from walk(node, p)
    yield from walk(doc.root, "")


# -- schema validation (TFOD2 only) ---------------------------------------------------------
def schema_available() -> bool:
    """True when TFOD2's ``object_detection.protos.pipeline_pb2`` can be imported."""
    try:
        import object_detection.protos.pipeline_pb2  # noqa: F401
    except Exception:  # ImportError, or a broken protobuf runtime
        return False
    return True


def validate_with_schema(path: str | os.PathLike, text: Optional[str] = None):
    """Parse a pipeline config with the real TFOD2 ``TrainEvalPipelineConfig`` schema.

    ``text`` defaults to the content of ``path`` (which names the file in errors). Returns the
    parsed message, or None when TFOD2 is not importable (nothing checked). A schema error is a
    ConfigError naming ``file:line:column``.
    """
    source = os.fspath(path)
    try:
        from object_detection.protos import pipeline_pb2
    except Exception:  # not installed, or a protobuf runtime mismatch
        return None
    from google.protobuf import text_format

    if text is None:
        text = read_text(source, ConfigError, newline="")
    msg = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as e:
        line, col = e.GetLine(), e.GetColumn()
        detail = re.sub(r"^\d+:\d+\s*:\s*", "", str(e))
        where = f"{source}:{line}:{col}" if line else source
        raise ConfigError(f"{where}: not a valid TFOD2 pipeline config: {detail}") from None
    return msg
