"""Zone rules: ``CLASS:ZONE>=FRACTION`` (e.g. ``car:no_parking>=0.3``).

A rule applies to every detection of class ``CLASS`` (``*``: any class) and compares the
fraction of the detection's MASK pixels that lie inside zone ``ZONE`` with ``FRACTION``
(``0.3`` or ``30%``) using one of ``>=``, ``>``, ``<=``, ``<``. A detection for which any rule
holds is a violation. Rules are parsed once (`parse_rules`) and checked against the model's
classes and the zones' names (`check_rules`) before any image is read.
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
import re
from typing import Callable, Dict, List, Sequence

from tfod_seg.errors import UserError

ANY_CLASS = "*"
_OPS: Dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt,
                                                   "<": operator.lt}
_RULE = re.compile(r"^\s*(?P<cls>[^:]+?)\s*:\s*(?P<zone>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[^<>=]+?)\s*$")
EXAMPLE = "CLASS:ZONE>=FRACTION, e.g. car:no_parking>=0.3 or car:sidewalk>=20%"


class RuleError(UserError):
    """A ``--rule`` that cannot be parsed or names an unknown class or zone."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One parsed rule; ``text`` is its canonical spelling (``car:no_parking>=0.3``)."""

    cls: str
    zone: str
    op: str
    threshold: float

    @property
    def text(self) -> str:
        return f"{self.cls}:{self.zone}{self.op}{self.threshold:g}"

    def applies_to(self, class_name: str) -> bool:
        return self.cls == ANY_CLASS or self.cls == class_name

    def holds(self, fraction: float) -> bool:
        return _OPS[self.op](float(fraction), self.threshold)

    def to_json(self) -> Dict:
        return {"rule": self.text, "class": self.cls, "zone": self.zone, "op": self.op, "threshold": self.threshold}


def _fraction(text: str, rule: str) -> float:
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value[:-1] if percent else value)
    except ValueError:
        raise RuleError(f"--rule '{rule}': threshold '{text}' is not a number; expected {EXAMPLE}") from None
    number = number / 100.0 if percent else number
    if not 0.0 <= number <= 1.0:
        raise RuleError(f"--rule '{rule}': threshold {text} is outside [0, 1] (0-100%): it is the fraction of the "
                        "detection's mask inside the zone")
    return number


def parse_rule(text: str) -> Rule:
    """`Rule` from ``CLASS:ZONE OP FRACTION``; `RuleError` naming the rule otherwise."""
    m = _RULE.match(text or "")
    if not m:
        raise RuleError(f"--rule '{text}': cannot parse; expected {EXAMPLE}")
    return Rule(m["cls"], m["zone"], m["op"], _fraction(m["value"], text))


def parse_rules(texts: Sequence[str]) -> List[Rule]:
    rules = [parse_rule(t) for t in texts]
    seen = set()
    for r in rules:
        if r in seen:
            raise RuleError(f"--rule '{r.text}' is given twice")
        seen.add(r)
    return rules


def _unknown(kind: str, rule: Rule, name: str, known: Sequence[str], where: str) -> RuleError:
    near = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return RuleError(f"--rule '{rule.text}': unknown {kind} '{name}'{hint}; {where}: {', '.join(known) or 'none'}")


def check_rules(rules: Sequence[Rule], class_names: Sequence[str], zone_names: Sequence[str], *,
                classes_from: str = "the model's classes", zones_from: str = "the zones") -> None:
    """`RuleError` for a rule naming a class not in ``class_names`` or a zone not in
    ``zone_names`` (with the nearest valid name)."""
    for rule in rules:
        if rule.cls != ANY_CLASS and rule.cls not in class_names:
            raise _unknown("class", rule, rule.cls, class_names, classes_from)
        if rule.zone not in zone_names:
            raise _unknown("zone", rule, rule.zone, zone_names, zones_from)


__all__ = ["ANY_CLASS", "Rule", "RuleError", "parse_rule", "parse_rules", "check_rules"]
