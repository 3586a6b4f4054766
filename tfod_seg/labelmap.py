"""TFOD2 label maps (`label_map.pbtxt`): read, validate, write.

Format (TFOD2 `StringIntLabelMap` in protobuf text format)::

    item {
      id: 1
      name: 'car'
      display_name: 'Car'
    }

Ids start at 1 (0 is the background class in TFOD2). Duplicate ids or names, ids below 1
and gaps are reported with the file and line. Gaps are allowed only when ``allow_gaps`` is
set (COCO's own 91-id map has gaps; tfod-seg's converters always write contiguous ids).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterable, List, Optional, Sequence

from tfod_seg.errors import ConfigError, LabelMapError
from tfod_seg.io import atomic_write_text, read_text
from tfod_seg.pbtxt import ListValue, Message, PbtxtDocument, quote


@dataclasses.dataclass(frozen=True)
class LabelItem:
    id: int
    name: str
    display_name: Optional[str] = None
    line: Optional[int] = None  # where it was read from, for error messages

    @property
    def shown(self) -> str:
        return self.display_name or self.name


class LabelMap:
    """An ordered id → class mapping. Ids are the TFRecord `class/label` values (1..N)."""

    def __init__(self, items: Iterable[LabelItem], path: Optional[str] = None, allow_gaps: bool = False):
        self.path = path
        self.items: List[LabelItem] = sorted(items, key=lambda it: it.id)
        where = path or "<label map>"
        if not self.items:
            raise LabelMapError(f"{where}: label map has no items, expected at least one 'item {{ id: 1 name: ... }}'")
        seen_ids: Dict[int, LabelItem] = {}
        seen_names: Dict[str, LabelItem] = {}
        for it in self.items:
            at = f"{where}:{it.line}" if it.line else where
            if it.id < 1:
                raise LabelMapError(f"{at}: item '{it.name}' has id {it.id}; ids start at 1 (0 is the background)")
            if it.id in seen_ids:
                raise LabelMapError(f"{at}: duplicate id {it.id} (also used by '{seen_ids[it.id].name}')")
            if it.name in seen_names:
                raise LabelMapError(f"{at}: duplicate name '{it.name}' (ids {seen_names[it.name].id} and {it.id})")
            seen_ids[it.id] = it
            seen_names[it.name] = it
        if not allow_gaps:
            expected = list(range(1, len(self.items) + 1))
            got = [it.id for it in self.items]
            if got != expected:
                missing = sorted(set(expected) - set(got))
                raise LabelMapError(
                    f"{where}: ids must be contiguous 1..{len(self.items)}; missing {missing[:10]} "
                    f"(ids present: {got[:20]}{'...' if len(got) > 20 else ''})"
                )
        self._by_name = seen_names
        self._by_id = seen_ids

    # -- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def names(self) -> List[str]:
        return [it.name for it in self.items]

    @property
    def max_id(self) -> int:
        return self.items[-1].id

    def id_of(self, name: str) -> int:
        return self._by_name[name].id

    def name_of(self, id_: int) -> str:
        return self._by_id[id_].name

    def get(self, id_: int) -> Optional[LabelItem]:
        return self._by_id.get(id_)

    def to_dict(self) -> Dict[int, str]:
        return {it.id: it.name for it in self.items}

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelMap) and [(i.id, i.name, i.display_name) for i in self] == [
            (i.id, i.name, i.display_name) for i in other
        ]

    def __repr__(self) -> str:
        return f"LabelMap({self.to_dict()!r})"

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_names(cls, names: Sequence[str], display_names: Optional[Dict[str, str]] = None) -> "LabelMap":
        """Contiguous ids 1..N in the given order."""
        display_names = display_names or {}
        return cls([LabelItem(i + 1, n, display_names.get(n)) for i, n in enumerate(names)])

    def to_pbtxt(self) -> str:
        out = []
        for it in self.items:
            out.append("item {")
            out.append(f"  id: {it.id}")
            out.append(f"  name: {_quote(it.name)}")
            if it.display_name:
                out.append(f"  display_name: {_quote(it.display_name)}")
            out.append("}")
        return "\n".join(out) + "\n"

    def write(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_pbtxt())


def _quote(s: str) -> str:
    return quote(s, "'")


def parse_label_map(text: str, path: Optional[str] = None, allow_gaps: bool = False) -> LabelMap:
    """Parse `label_map.pbtxt` text (protobuf text format, read with
    `tfod_seg.pbtxt.PbtxtDocument`); errors name ``path:line``."""
    where = path or "<label map>"
    try:
        doc = PbtxtDocument.parse(text, source=where)
    except ConfigError as e:
        raise LabelMapError(str(e)) from None
    items: List[LabelItem] = []
    for field in doc.root.fields:
        if field.name != "item":
            raise LabelMapError(f"{where}:{field.line}: expected 'item', got {field.name!r}")
        blocks = field.value.items if isinstance(field.value, ListValue) else [field.value]
        for block in blocks:
            if not isinstance(block, Message):
                raise LabelMapError(f"{where}:{field.line}: expected 'item {{ id: ... name: ... }}', "
                                    f"got 'item: {block.dump()}'")
            fields: Dict[str, object] = {}
            for f in block.fields:
                if f.name == "id":
                    value = getattr(f.value, "value", None)
                    if getattr(f.value, "kind", None) != "num" or not isinstance(value, int) or isinstance(value, bool):
                        raise LabelMapError(f"{where}:{f.line}: id must be an integer, got {f.value.dump()!r}")
                    fields["id"] = value
                elif f.name in ("name", "display_name"):
                    if getattr(f.value, "kind", None) != "str":
                        raise LabelMapError(f"{where}:{f.line}: {f.name} must be a quoted string, "
                                            f"got {f.value.dump()!r}")
                    fields[f.name] = f.value.value
                # Other StringIntLabelMapItem fields (keypoints, frequency, ...) are legal: ignored.
            if "id" not in fields:
                raise LabelMapError(f"{where}:{field.line}: item has no 'id'")
            if "name" not in fields and "display_name" not in fields:
                raise LabelMapError(f"{where}:{field.line}: item {fields['id']} has neither 'name' nor 'display_name'")
            name = fields.get("name") or fields["display_name"]
            items.append(LabelItem(int(fields["id"]), str(name), fields.get("display_name"), field.line))
    return LabelMap(items, path=path, allow_gaps=allow_gaps)


def read_label_map(path: str | os.PathLike, allow_gaps: bool = False) -> LabelMap:
    path = os.fspath(path)
    return parse_label_map(read_text(path, LabelMapError, "label map file"), path=path, allow_gaps=allow_gaps)


def collect_label_names(samples, sort: bool = True) -> List[str]:
    """Class names used by a stream of `Sample`s (sorted, or in order of first appearance).

    A `SampleStream` that declares its classes up front (COCO categories) is not scanned: its
    declared order (contiguous-id order) is kept.
    """
    declared = getattr(samples, "label_names", None)
    if declared:
        return list(declared)
    seen: Dict[str, None] = {}
    for sample in samples:
        for inst in sample.instances:
            seen.setdefault(inst.label, None)
    names = list(seen)
    return sorted(names) if sort else names


def read_class_list(path: str | os.PathLike, ignore: Sequence[str] = ("__ignore__", "_background_")) -> List[str]:
    """A text file with one class name per line (LabelMe's ``labels.txt`` style) → names.

    Blank lines, ``#`` comments and LabelMe's ``__ignore__``/``_background_`` lines are
    skipped; a duplicate name is an error naming the file and line.
    """
    path = os.fspath(path)
    lines = read_text(path, LabelMapError, "class list file").splitlines()
    names: List[str] = []
    first_line: Dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#") or name in ignore:
            continue
        if name in first_line:
            raise LabelMapError(f"{path}:{n}: duplicate class '{name}' (first on line {first_line[name]})")
        first_line[name] = n
        names.append(name)
    if not names:
        raise LabelMapError(f"{path}: no class names found (expected one name per line)")
    return names
