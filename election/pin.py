"""The Kyrgyz 14-digit personal number (PIN), which keys the voter roll.

Layout: digit 1 is the sex (1 = female, 2 = male), digits 2-9 the birth date as
ddmmyyyy, digits 10-14 a serial.  The roll cross-checks the PIN against the
birth date and gender columns, so the parsing lives here once.  Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from election.definition import Gender

PIN_LENGTH = 14
MIN_BIRTH_YEAR = 1900
_SEX_DIGITS = {"1": Gender.FEMALE, "2": Gender.MALE}
_DIGIT_FOR_SEX = {Gender.FEMALE: "1", Gender.MALE: "2"}


class PinError(ValueError):
    """A PIN that cannot be a real one; `reason` is a short machine code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PinInfo:
    sex: Gender
    birth_date: dt.date


def is_pin_shaped(s: str) -> bool:
    """True if `s` is exactly 14 ASCII digits (str.isdigit alone also accepts other scripts)."""
    return len(s) == PIN_LENGTH and s.isascii() and s.isdigit()


def parse_pin(s: str) -> PinInfo:
    """Read sex and birth date out of a PIN, or raise PinError saying what is wrong with it."""
    if not is_pin_shaped(s):
        raise PinError(
            "pin_format",
            f"PIN must be exactly {PIN_LENGTH} digits, got {len(s)} characters"
            + ("" if s.isascii() and s.isdigit() else " including non-digits"),
        )
    sex = _SEX_DIGITS.get(s[0])
    if sex is None:
        raise PinError(
            "pin_sex_digit", f"PIN first digit must be 1 (female) or 2 (male), got {s[0]}"
        )
    day, month, year = int(s[1:3]), int(s[3:5]), int(s[5:9])
    try:
        birth = dt.date(year, month, day)
    except ValueError:
        raise PinError(
            "pin_birth_date",
            f"PIN digits 2-9 must be a birth date ddmmyyyy, got {s[1:3]}.{s[3:5]}.{s[5:9]}",
        ) from None
    if year < MIN_BIRTH_YEAR:
        raise PinError("pin_birth_date", f"PIN birth year {year} is before {MIN_BIRTH_YEAR}")
    return PinInfo(sex=sex, birth_date=birth)


def make_pin(sex: Gender, birth_date: dt.date, serial: int) -> str:
    """Build a PIN (for sample rolls and tests); parse_pin gives back sex and birth_date."""
    if not 0 <= serial <= 99_999:
        raise ValueError(f"PIN serial must be 0..99999, got {serial}")
    if birth_date.year < MIN_BIRTH_YEAR:
        raise ValueError(f"birth year {birth_date.year} is before {MIN_BIRTH_YEAR}")
    return f"{_DIGIT_FOR_SEX[Gender(sex)]}{birth_date:%d%m%Y}{serial:05d}"


def mask_pin(pin: str) -> str:
    """The PIN as logs may show it: first 4 and last 2 characters, the rest starred.

    Logs name a voter only this way, so a log leak does not give out whole PINs
    or birth dates; the line number beside it finds the row.
    """
    s = pin[:24]  # a garbage "PIN" from a bad row must not flood the log
    if len(s) <= 6:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 6) + s[-2:]
