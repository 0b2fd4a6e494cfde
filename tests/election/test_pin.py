from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from election.definition import Gender
from election.pin import PinError, make_pin, mask_pin, parse_pin

dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))


@given(sex=st.sampled_from(list(Gender)), birth=dates, serial=st.integers(0, 99_999))
def test_make_parse_round_trip(sex: Gender, birth: dt.date, serial: int) -> None:
    pin = make_pin(sex, birth, serial)
    assert len(pin) == 14 and pin.isdigit()
    info = parse_pin(pin)
    assert (info.sex, info.birth_date) == (sex, birth)
    assert pin.endswith(f"{serial:05d}")


def _not_pin_shaped(s: str) -> bool:
    return not (len(s) == 14 and s.isascii() and s.isdigit())


@given(st.text().filter(_not_pin_shaped))
def test_any_non_14_digit_string_is_refused(s: str) -> None:
    with pytest.raises(PinError) as e:
        parse_pin(s)
    assert e.value.reason == "pin_format"


@given(st.text(alphabet=st.characters(), min_size=14, max_size=14).filter(_not_pin_shaped))
def test_fourteen_characters_not_all_ascii_digits_are_refused(s: str) -> None:
    with pytest.raises(PinError) as e:
        parse_pin(s)
    assert e.value.reason == "pin_format"


@pytest.mark.parametrize(
    ("pin", "reason", "words"),
    [
        ("2150119851234", "pin_format", "14 digits"),
        ("215011985123456", "pin_format", "14 digits"),
        ("2150119851234a", "pin_format", "non-digits"),
        ("٢١٥٠١١٩٨٥١٢٣٤٥", "pin_format", "non-digits"),  # Arabic-Indic digits
        ("31501198512345", "pin_sex_digit", "first digit"),
        ("01501198512345", "pin_sex_digit", "first digit"),
        ("23102198512345", "pin_birth_date", "31.02.1985"),
        ("20013198512345", "pin_birth_date", "00.13.1985"),
        ("21501189912345", "pin_birth_date", "before 1900"),
    ],
)
def test_bad_pins_say_what_is_wrong(pin: str, reason: str, words: str) -> None:
    with pytest.raises(PinError) as e:
        parse_pin(pin)
    assert e.value.reason == reason
    assert words in str(e.value)


def test_known_pin() -> None:
    info = parse_pin("21501198512345")
    assert info.sex is Gender.MALE and info.birth_date == dt.date(1985, 1, 15)
    assert parse_pin("12902200000001").birth_date == dt.date(2000, 2, 29)


def test_make_pin_refuses_bad_serial() -> None:
    with pytest.raises(ValueError):
        make_pin(Gender.FEMALE, dt.date(1990, 1, 1), 100_000)
    with pytest.raises(ValueError):
        make_pin(Gender.FEMALE, dt.date(1990, 1, 1), -1)


@given(sex=st.sampled_from(list(Gender)), birth=dates, serial=st.integers(0, 99_999))
def test_mask_hides_most_of_the_pin(sex: Gender, birth: dt.date, serial: int) -> None:
    pin = make_pin(sex, birth, serial)
    masked = mask_pin(pin)
    assert len(masked) == 14
    assert masked[:4] == pin[:4] and masked[-2:] == pin[-2:]
    assert masked[4:12] == "********"


def test_mask_of_garbage_is_short_and_hidden() -> None:
    assert mask_pin("") == ""
    assert mask_pin("12345") == "*****"
    assert len(mask_pin("x" * 10_000)) == 24
