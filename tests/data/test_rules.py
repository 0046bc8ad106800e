"""KataGo rules parsing: names, compact strings, JSON and SGF komi."""

from __future__ import annotations

import itertools

import pytest

from kgzarr.data.go.rules import (
    KoRule,
    Rules,
    ScoringRule,
    TaxRule,
    WhiteHandicapBonusRule,
    parse_rules,
    parse_sgf_komi,
)
from kgzarr.errors import ConfigError


def test_japanese_fields() -> None:
    rules = parse_rules("Japanese")
    assert rules.ko_rule == KoRule.SIMPLE
    assert rules.scoring_rule == ScoringRule.TERRITORY
    assert rules.tax_rule == TaxRule.SEKI
    assert rules.multi_stone_suicide_legal is False
    assert rules.friendly_pass_ok is False
    assert rules.komi == 6.5


def test_chinese_has_handicap_bonus() -> None:
    rules = parse_rules("chinese")
    assert rules.white_handicap_bonus_rule == WhiteHandicapBonusRule.N
    assert rules.friendly_pass_ok is True
    assert rules.to_string() == "koSIMPLEscoreAREAtaxNONEsui0whbNfpok1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("korean", "koSIMPLEscoreTERRITORYtaxSEKIsui0"),
        ("AGA", "koSITUATIONALscoreAREAtaxNONEsui0whbN-1fpok1"),
        ("aga-button", "koSITUATIONALscoreAREAtaxNONEsui0button1whbN-1fpok1"),
        ("New Zealand", "koSITUATIONALscoreAREAtaxNONEsui1fpok1"),
        ("tromp_taylor", "koPOSITIONALscoreAREAtaxNONEsui1"),
        ("Chinese-OGS", "koPOSITIONALscoreAREAtaxNONEsui0whbNfpok1"),
        ("stone scoring", "koSIMPLEscoreAREAtaxALLsui0fpok1"),
        ("ancient_territory", "koSIMPLEscoreTERRITORYtaxALLsui0"),
        ("ING", "koPOSITIONALscoreAREAtaxNONEsui1fpok1"),
    ],
)
def test_named_rule_sets(name: str, expected: str) -> None:
    assert parse_rules(name).to_string() == expected


def test_compact_string_fields() -> None:
    rules = parse_rules("koPOSITIONALscoreAREAtaxNONEsui1button1whbN fpok1")
    assert rules.ko_rule == KoRule.POSITIONAL
    assert rules.has_button is True
    assert rules.white_handicap_bonus_rule == WhiteHandicapBonusRule.N
    assert rules.friendly_pass_ok is True
    assert rules.komi == 7.0


def test_compact_defaults_tax_and_komi() -> None:
    """Without tax or komi, KataGo derives them: territory gets seki tax and komi 6.5."""
    rules = parse_rules("koSIMPLEscoreTERRITORYsui0")
    assert rules.tax_rule == TaxRule.SEKI
    assert rules.komi == 6.5
    assert parse_rules("koSIMPLEscoreAREAsui0").komi == 7.5


def test_compact_komi_token() -> None:
    assert parse_rules("komi6.5koSIMPLEscoreAREA").komi == 6.5
    assert parse_rules("koSIMPLEscoreAREAkomi-3").komi == -3.0


def test_json_rules() -> None:
    rules = parse_rules('{"ko":"SITUATIONAL","scoring":"TERRITORY","suicide":false,"komi":5.5}')
    assert rules.ko_rule == KoRule.SITUATIONAL
    assert rules.tax_rule == TaxRule.SEKI
    assert rules.multi_stone_suicide_legal is False
    assert rules.komi == 5.5


@pytest.mark.parametrize(
    "text",
    ["", "koFOO", "scoreAREA extra", '{"ko":"simple"}', '{"komi":6.3}', '{"unknown":1}', "komiabc"],
)
def test_invalid_rules_raise(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rules(text)


def test_to_string_round_trip() -> None:
    for ko, scoring, tax, suicide, button, whb, fpok in itertools.product(
        KoRule, ScoringRule, TaxRule, (False, True), (False, True), WhiteHandicapBonusRule, (False, True)
    ):
        rules = Rules(ko, scoring, tax, suicide, button, whb, fpok, 7.5)
        assert parse_rules(rules.to_string(include_komi=True)) == rules


def test_result_integer_parity() -> None:
    assert Rules(komi=7.0).game_result_will_be_integer() is True
    assert Rules(komi=7.5).game_result_will_be_integer() is False
    assert Rules(komi=7.5, has_button=True).game_result_will_be_integer() is True


def test_fox_komi_mapped() -> None:
    assert parse_sgf_komi("325", applications=["GNU Go:3.8", "foxwq"]) == 6.5
    assert parse_sgf_komi("375", applications=["foxwq"]) == 7.5
    assert parse_sgf_komi("6.5", applications=["foxwq"]) == 6.5


def test_fox_unknown_komi_raises() -> None:
    with pytest.raises(ConfigError):
        parse_sgf_komi("123", applications=["foxwq"])


def test_quarter_komi_gogod_doubled() -> None:
    assert parse_sgf_komi("3.75", user="GoGoD95", rules_name="Chinese") == 7.5


def test_quarter_komi_elsewhere_raises() -> None:
    with pytest.raises(ConfigError):
        parse_sgf_komi("3.75", rules_name="Chinese")


def test_non_numeric_komi_raises() -> None:
    with pytest.raises(ConfigError):
        parse_sgf_komi("six")
