"""Rule parsing and checking: known answers and the exact error texts."""

import pytest

from tfod_seg.zones.rules import Rule, RuleError, check_rules, parse_rule, parse_rules


@pytest.mark.parametrize("text, expected", [
    ("car:no_parking>=0.3", Rule("car", "no_parking", ">=", 0.3)),
    (" car : sidewalk > 20% ", Rule("car", "sidewalk", ">", 0.2)),
    ("*:no_parking>=1", Rule("*", "no_parking", ">=", 1.0)),
    ("truck:parking<0.5", Rule("truck", "parking", "<", 0.5)),
    ("car:bus lane<=0", Rule("car", "bus lane", "<=", 0.0)),
])
def test_parse(text, expected):
    assert parse_rule(text) == expected


@pytest.mark.parametrize("text, message", [
    ("car-no_parking>=0.3", "--rule 'car-no_parking>=0.3': cannot parse; expected CLASS:ZONE>=FRACTION"),
    ("car:no_parking", "--rule 'car:no_parking': cannot parse"),
    ("car:no_parking>=abc", "threshold 'abc' is not a number"),
    ("car:no_parking>=1.5", "threshold 1.5 is outside [0, 1]"),
    ("car:no_parking>=130%", "threshold 130% is outside [0, 1]"),
    ("", "--rule '': cannot parse"),
])
def test_parse_errors(text, message):
    with pytest.raises(RuleError, match=None) as e:
        parse_rule(text)
    assert message in str(e.value)


def test_duplicate_rule_is_an_error():
    with pytest.raises(RuleError, match="given twice"):
        parse_rules(["car:no_parking>=0.3", "car: no_parking >= 30%"])


def test_holds_at_the_threshold():
    rule = parse_rule("car:no_parking>=0.3")
    assert rule.holds(0.3) and rule.holds(0.4) and not rule.holds(0.2999)
    assert not parse_rule("car:no_parking>0.3").holds(0.3)
    assert rule.applies_to("car") and not rule.applies_to("person")
    assert parse_rule("*:no_parking>=0.3").applies_to("person")


@pytest.mark.parametrize("text, message", [
    ("bus:no_parking>=0.3", "--rule 'bus:no_parking>=0.3': unknown class 'bus'; the model's classes: car, person"),
    ("cars:no_parking>=0.3", "unknown class 'cars' (did you mean 'car'?)"),
    ("car:no_parkin>=0.3", "unknown zone 'no_parkin' (did you mean 'no_parking'?); the zones: no_parking, sidewalk"),
    ("car:road>=0.3", "unknown zone 'road'; the zones: no_parking, sidewalk"),
])
def test_unknown_class_or_zone(text, message):
    with pytest.raises(RuleError) as e:
        check_rules([parse_rule(text)], ["car", "person"], ["no_parking", "sidewalk"])
    assert message in str(e.value)


def test_any_class_needs_no_class_check():
    check_rules([parse_rule("*:sidewalk>=0.1")], ["car"], ["sidewalk"])
