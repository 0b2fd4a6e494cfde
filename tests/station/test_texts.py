"""Every operator text, on screen and on paper, exists in both languages with the same blanks."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

import station.printing
from station.texts import LANGS, TEXTS, both, say


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_key_has_both_languages_with_the_same_placeholders(key: str) -> None:
    entry = TEXTS[key]
    assert set(entry) == set(LANGS), key
    assert all(entry[lang].strip() for lang in LANGS), key
    assert _placeholders(entry["ky"]) == _placeholders(entry["ru"]), key


def test_say_fills_placeholders_in_each_language() -> None:
    assert say("station_label", "ky", number=7) == "Участок №7"
    assert both("voter_born", year=1990) == {"ky": "1990-ж. туулган", "ru": "1990 г. р."}


def test_every_printed_label_is_in_the_table() -> None:
    # printing._t prints an unknown key as itself (for codes from a signed body),
    # so a misspelt label would reach the paper silently: catch it here.
    source = Path(station.printing.__file__).read_text()
    used = set(re.findall(r"""["'](report_[a-z_]+)["']""", source))
    assert used, "no report_ labels found in station/printing.py"
    assert used <= set(TEXTS), sorted(used - set(TEXTS))
