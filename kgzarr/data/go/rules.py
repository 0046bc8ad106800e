"""KataGo's Go rules: ko, scoring, tax, suicide, button, handicap bonus and komi.

The parser accepts the same inputs as ``Rules::parseRules`` in KataGo v1.17.2
(``cpp/game/rules.cpp``): the common rule-set names, a JSON object, and
KataGo's compact form such as ``koPOSITIONALscoreAREAtaxNONEsui1button1``.
Komi is stored as a float32 value, as in KataGo, so features derived from it
match the C++ engine bit for bit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

from kgzarr.errors import ConfigError

__all__ = [
    "KoRule",
    "ScoringRule",
    "TaxRule",
    "WhiteHandicapBonusRule",
    "Rules",
    "parse_rules",
    "parse_sgf_komi",
    "RULE_NAMES",
]

# KataGo rejects user komi outside this range (Rules::MIN_USER_KOMI, MAX_USER_KOMI).
MIN_USER_KOMI = -400.0
MAX_USER_KOMI = 400.0

# The compact form accepts any komi within this bound.
_MAX_COMPACT_KOMI = 1e5

# A decimal number as C++ stream extraction reads it: no "inf", "nan" or underscores.
_FLOAT_PATTERN = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class KoRule(IntEnum):
    """Ko rule: the repetitions that are forbidden; the values are KataGo's ``Rules::KO_*``."""

    SIMPLE = 0
    POSITIONAL = 1
    SITUATIONAL = 2
    SPIGHT = 3


class ScoringRule(IntEnum):
    """Area (stones plus territory) or territory scoring; KataGo's ``Rules::SCORING_*``."""

    AREA = 0
    TERRITORY = 1


class TaxRule(IntEnum):
    """Tax rule: the regions that score nothing; the values are KataGo's ``Rules::TAX_*``."""

    NONE = 0
    SEKI = 1
    ALL = 2


class WhiteHandicapBonusRule(IntEnum):
    """Points White receives per handicap stone; KataGo's ``Rules::WHB_*``."""

    ZERO = 0
    N = 1
    N_MINUS_ONE = 2


_WHB_NAMES = {
    WhiteHandicapBonusRule.ZERO: "0",
    WhiteHandicapBonusRule.N: "N",
    WhiteHandicapBonusRule.N_MINUS_ONE: "N-1",
}


def _float32(value: float) -> float:
    return float(np.float32(value))


@dataclass(frozen=True)
class Rules:
    """One rule set; the defaults are KataGo's ``Rules()``, which is Tromp-Taylor with komi 7.5."""

    ko_rule: KoRule = KoRule.POSITIONAL
    scoring_rule: ScoringRule = ScoringRule.AREA
    tax_rule: TaxRule = TaxRule.NONE
    multi_stone_suicide_legal: bool = True
    has_button: bool = False
    white_handicap_bonus_rule: WhiteHandicapBonusRule = WhiteHandicapBonusRule.ZERO
    friendly_pass_ok: bool = False
    komi: float = 7.5

    def with_komi(self, komi: float) -> Rules:
        """Return a copy with ``komi`` rounded to float32."""
        return replace(self, komi=_float32(komi))

    def game_result_will_be_integer(self) -> bool:
        """Return whether a final score can be a draw: integer komi without button, or half-integer with it."""
        komi_is_integer = float(math.trunc(self.komi)) == self.komi
        return komi_is_integer != self.has_button

    def to_string(self, *, include_komi: bool = False) -> str:
        """Format the rules in KataGo's compact form, for example ``koSIMPLEscoreAREAtaxNONEsui0``."""
        text = (
            f"ko{self.ko_rule.name}score{self.scoring_rule.name}"
            f"tax{self.tax_rule.name}sui{int(self.multi_stone_suicide_legal)}"
        )
        if self.has_button:
            text += "button1"
        if self.white_handicap_bonus_rule != WhiteHandicapBonusRule.ZERO:
            text += "whb" + _WHB_NAMES[self.white_handicap_bonus_rule]
        if self.friendly_pass_ok:
            text += "fpok1"
        if include_komi:
            text += f"komi{self.komi:g}"
        return text

    def __str__(self) -> str:
        return self.to_string(include_komi=True)


def _named(
    ko: KoRule,
    scoring: ScoringRule,
    tax: TaxRule,
    suicide: bool,
    button: bool,
    whb: WhiteHandicapBonusRule,
    friendly_pass_ok: bool,
    komi: float,
) -> Rules:
    return Rules(ko, scoring, tax, suicide, button, whb, friendly_pass_ok, komi)


_JAPANESE = _named(
    KoRule.SIMPLE, ScoringRule.TERRITORY, TaxRule.SEKI, False, False, WhiteHandicapBonusRule.ZERO, False, 6.5
)
_CHINESE = _named(KoRule.SIMPLE, ScoringRule.AREA, TaxRule.NONE, False, False, WhiteHandicapBonusRule.N, True, 7.5)
_CHINESE_OGS = _named(
    KoRule.POSITIONAL, ScoringRule.AREA, TaxRule.NONE, False, False, WhiteHandicapBonusRule.N, True, 7.5
)
_STONE_SCORING = _named(
    KoRule.SIMPLE, ScoringRule.AREA, TaxRule.ALL, False, False, WhiteHandicapBonusRule.ZERO, True, 7.5
)
_ANCIENT_TERRITORY = _named(
    KoRule.SIMPLE, ScoringRule.TERRITORY, TaxRule.ALL, False, False, WhiteHandicapBonusRule.ZERO, False, 6.5
)
_AGA_BUTTON = _named(
    KoRule.SITUATIONAL, ScoringRule.AREA, TaxRule.NONE, False, True, WhiteHandicapBonusRule.N_MINUS_ONE, True, 7.0
)
_AGA = _named(
    KoRule.SITUATIONAL, ScoringRule.AREA, TaxRule.NONE, False, False, WhiteHandicapBonusRule.N_MINUS_ONE, True, 7.5
)
_NEW_ZEALAND = _named(
    KoRule.SITUATIONAL, ScoringRule.AREA, TaxRule.NONE, True, False, WhiteHandicapBonusRule.ZERO, True, 7.0
)
_TROMP_TAYLOR = _named(
    KoRule.POSITIONAL, ScoringRule.AREA, TaxRule.NONE, True, False, WhiteHandicapBonusRule.ZERO, False, 7.5
)
_GOE = _named(KoRule.POSITIONAL, ScoringRule.AREA, TaxRule.NONE, True, False, WhiteHandicapBonusRule.ZERO, True, 7.5)


def _spellings(*words: str) -> list[str]:
    """Return each multi-word name joined by nothing, '-', '_' and ' ', as KataGo accepts them."""
    names = []
    for word in words:
        parts = word.split(" ")
        names.extend({"".join(parts), "-".join(parts), "_".join(parts), " ".join(parts)})
    return names


def _build_rule_names() -> dict[str, Rules]:
    table: dict[str, Rules] = {}
    groups: list[tuple[list[str], Rules]] = [
        (["japanese", "korean"], _JAPANESE),
        (["chinese"], _CHINESE),
        (_spellings("chinese ogs", "chinese kgs"), _CHINESE_OGS),
        (_spellings("ancient area", "stone scoring"), _STONE_SCORING),
        (_spellings("ancient territory"), _ANCIENT_TERRITORY),
        (_spellings("aga button"), _AGA_BUTTON),
        (["aga", "bga", "french"], _AGA),
        (["nz", *_spellings("new zealand")], _NEW_ZEALAND),
        (_spellings("tromp taylor"), _TROMP_TAYLOR),
        (["goe", "ing"], _GOE),
    ]
    for names, rules in groups:
        for name in names:
            table[name] = rules
    return table


RULE_NAMES: dict[str, Rules] = _build_rule_names()
"""Rule-set names that ``parse_rules`` accepts, lower-cased, with the rules each stands for."""

# Characters KataGo's Global::trim removes.
_WHITESPACE = " \t\r\n\v\f"


def parse_rules(text: str) -> Rules:
    """Parse a rule-set name, a JSON object or KataGo's compact rules string, as ``Rules::parseRules`` does.

    Raises ``ConfigError`` naming the input when it matches none of these forms.
    """
    lowered = text.strip(_WHITESPACE).lower()
    if lowered in RULE_NAMES:
        return RULE_NAMES[lowered]
    if text.startswith("{"):
        return _parse_json_rules(text)
    return _parse_compact_rules(text)


def _rules_error(text: str, detail: str) -> ConfigError:
    names = ", ".join(sorted({name for name in RULE_NAMES if " " not in name and "_" not in name}))
    return ConfigError(
        f"invalid rules {text!r}: {detail}. Use a rule-set name ({names}), a JSON object such as "
        '{"ko":"SIMPLE","scoring":"AREA"}, or a KataGo rules string such as koPOSITIONALscoreAREAtaxNONEsui1'
    )


def _apply_unspecified_defaults(rules: Rules, tax_given: bool, komi_given: bool) -> Rules:
    # KataGo fills in the tax and komi from the scoring rule and button when the input omits them.
    if not tax_given:
        tax = TaxRule.SEKI if rules.scoring_rule == ScoringRule.TERRITORY else TaxRule.NONE
        rules = replace(rules, tax_rule=tax)
    if not komi_given:
        if rules.scoring_rule == ScoringRule.TERRITORY:
            rules = replace(rules, komi=6.5)
        elif rules.has_button:
            rules = replace(rules, komi=7.0)
    return rules


def _parse_enum(enum: type[IntEnum], value: object, text: str) -> IntEnum:
    if isinstance(value, str) and value in enum.__members__:
        return enum[value]
    raise _rules_error(text, f"{value!r} is not one of {', '.join(enum.__members__)}")


def _parse_whb(value: object, text: str) -> WhiteHandicapBonusRule:
    for rule, name in _WHB_NAMES.items():
        if value == name:
            return rule
    raise _rules_error(text, f"white handicap bonus {value!r} is not one of 0, N, N-1")


def _parse_json_bool(value: object, key: str, text: str) -> bool:
    if not isinstance(value, bool):
        raise _rules_error(text, f"{key} must be true or false, got {value!r}")
    return value


def _parse_json_rules(text: str) -> Rules:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _rules_error(text, f"invalid JSON ({exc.msg})") from exc
    if not isinstance(fields, dict):
        raise _rules_error(text, "the JSON value is not an object")

    rules = _TROMP_TAYLOR
    tax_given = komi_given = False
    for key, value in fields.items():
        if key == "ko":
            rules = replace(rules, ko_rule=_parse_enum(KoRule, value, text))
        elif key in ("score", "scoring"):
            rules = replace(rules, scoring_rule=_parse_enum(ScoringRule, value, text))
        elif key == "tax":
            rules = replace(rules, tax_rule=_parse_enum(TaxRule, value, text))
            tax_given = True
        elif key == "suicide":
            rules = replace(rules, multi_stone_suicide_legal=_parse_json_bool(value, key, text))
        elif key == "hasButton":
            rules = replace(rules, has_button=_parse_json_bool(value, key, text))
        elif key == "whiteHandicapBonus":
            rules = replace(rules, white_handicap_bonus_rule=_parse_whb(value, text))
        elif key == "friendlyPassOk":
            rules = replace(rules, friendly_pass_ok=_parse_json_bool(value, key, text))
        elif key == "komi":
            rules = replace(rules, komi=_parse_json_komi(value, text))
            komi_given = True
        else:
            raise _rules_error(text, f"unknown key {key!r}")
    return _apply_unspecified_defaults(rules, tax_given, komi_given)


def _parse_json_komi(value: object, text: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _rules_error(text, f"komi must be a number, got {value!r}")
    komi = _float32(value)
    if not (MIN_USER_KOMI <= komi <= MAX_USER_KOMI) or not _is_int_or_half_int(komi):
        raise _rules_error(text, f"komi {value!r} is not a multiple of 0.5 between {MIN_USER_KOMI} and {MAX_USER_KOMI}")
    return komi


# Compact-form tokens: the option prefix, then each accepted value with the field it sets.
# Longer values come first where one is a prefix of another ("N-1" before "N").
_COMPACT_TOKENS: list[tuple[str, str, list[tuple[str, object]]]] = [
    ("ko", "ko_rule", [(rule.name, rule) for rule in KoRule]),
    ("scoring", "scoring_rule", [(rule.name, rule) for rule in ScoringRule]),
    ("score", "scoring_rule", [(rule.name, rule) for rule in ScoringRule]),
    ("tax", "tax_rule", [(rule.name, rule) for rule in TaxRule]),
    ("sui", "multi_stone_suicide_legal", [("1", True), ("0", False)]),
    ("button", "has_button", [("1", True), ("0", False)]),
    (
        "whb",
        "white_handicap_bonus_rule",
        [
            ("0", WhiteHandicapBonusRule.ZERO),
            ("N-1", WhiteHandicapBonusRule.N_MINUS_ONE),
            ("N", WhiteHandicapBonusRule.N),
        ],
    ),
    ("fpok", "friendly_pass_ok", [("1", True), ("0", False)]),
]


def _parse_compact_rules(text: str) -> Rules:
    remaining = text.strip(_WHITESPACE)
    if not remaining:
        raise _rules_error(text, "the rules string is empty")

    rules = _TROMP_TAYLOR
    tax_given = komi_given = False
    while remaining:
        if remaining.startswith("komi"):
            komi, remaining = _parse_compact_komi(remaining[len("komi") :].strip(_WHITESPACE), text)
            rules = replace(rules, komi=komi)
            komi_given = True
            continue
        field, value, remaining = _parse_compact_token(remaining, text)
        rules = replace(rules, **{field: value})
        tax_given = tax_given or field == "tax_rule"
    return _apply_unspecified_defaults(rules, tax_given, komi_given)


def _parse_compact_token(remaining: str, text: str) -> tuple[str, object, str]:
    # KataGo strips each prefix and value, then trims whitespace, so "ko SIMPLE" also parses.
    for prefix, field, values in _COMPACT_TOKENS:
        if not remaining.startswith(prefix):
            continue
        after_prefix = remaining[len(prefix) :].strip(_WHITESPACE)
        for spelling, value in values:
            if after_prefix.startswith(spelling):
                return field, value, after_prefix[len(spelling) :].strip(_WHITESPACE)
        raise _rules_error(text, f"invalid value after {prefix!r}")
    raise _rules_error(text, f"unknown option at {remaining!r}")


def _parse_compact_komi(remaining: str, text: str) -> tuple[float, str]:
    # The number runs up to the next ASCII letter or whitespace, as in KataGo.
    end = 0
    while end < len(remaining) and not _is_ascii_letter(remaining[end]) and remaining[end] not in _WHITESPACE:
        end += 1
    number = remaining[:end]
    if not _FLOAT_PATTERN.fullmatch(number):
        raise _rules_error(text, f"komi {number!r} is not a number")
    komi = _float32(float(number))
    if not math.isfinite(komi) or abs(komi) > _MAX_COMPACT_KOMI:
        raise _rules_error(text, f"komi {number!r} is out of range")
    return komi, remaining[end:].strip(_WHITESPACE)


def _is_ascii_letter(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _is_int_or_half_int(komi: float) -> bool:
    return math.isfinite(komi) and komi * 2 == math.trunc(komi * 2)


# Komi values that the Fox server (AP foxwq) and SGFC 2.0 write in place of the real komi.
_FOX_KOMI = {550.0: 5.5, 275.0: 5.5, 325.0: 6.5, 650.0: 6.5, 375.0: 7.5, 750.0: 7.5, 350.0: 7.0, 700.0: 7.0}
_FOX_KOMI_KEPT = {0.0, 6.5, 7.5, 7.0}


def parse_sgf_komi(
    km: str,
    *,
    applications: Sequence[str] = (),
    user: str | None = None,
    rules_name: str | None = None,
) -> float:
    """Parse an SGF ``KM`` value as KataGo's ``SgfNode::getKomiOrDefault`` does.

    ``applications`` are the root's ``AP`` values, ``user`` its ``US`` and ``rules_name`` its ``RU``.
    Two repairs follow KataGo: a quarter-integer komi in a GoGoD file with Chinese rules is doubled, and
    the Fox server's scaled komis are mapped back (325 becomes 6.5, for example). Raises ``ConfigError``
    for a value that is not a number, not a multiple of 0.5, or a Fox komi KataGo does not know.
    """
    stripped = km.strip(_WHITESPACE)
    if not _FLOAT_PATTERN.fullmatch(stripped):
        raise ConfigError(f"invalid komi KM[{km}]: not a number; write it as a decimal such as 6.5")
    komi = _float32(float(stripped))

    if not _is_int_or_half_int(komi):
        is_gogod_chinese = (
            user is not None
            and user.startswith("GoGoD")
            and rules_name is not None
            and rules_name.lower() in ("chinese", "chinese, pair go")
        )
        if not (_is_int_or_half_int(komi * 2.0) and is_gogod_chinese):
            raise ConfigError(f"invalid komi KM[{km}]: komi must be a multiple of 0.5")
        komi = _float32(komi * 2.0)

    if "foxwq" in applications or "SGFC:2.0" in applications:
        if komi in _FOX_KOMI:
            komi = _FOX_KOMI[komi]
        elif komi not in _FOX_KOMI_KEPT:
            raise ConfigError(
                f"invalid komi KM[{km}] in a Fox/SGFC file: KataGo knows no real komi for it; "
                "pass the komi in the rules argument instead"
            )
    return komi
