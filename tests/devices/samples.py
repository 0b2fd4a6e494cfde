"""Sample ID cards for the reader tests, with Kyrgyz Cyrillic names.

"Хасанова" holds U+0425, UTF-8 D0 A5: the frame start byte inside a payload.
"""

from __future__ import annotations

import datetime as dt

from devices.combo_reader import Card


def card_hasanova() -> Card:
    return Card(
        pin="11503198500123",
        document_number="ID1234567",
        last_name="Хасанова",
        first_name="Айгүл",
        patronymic="Өмүрбековна",
        birth_date=dt.date(1985, 3, 15),
    )


def card_tashiev() -> Card:
    """A card without a patronymic (the chip leaves the field out)."""
    return Card(
        pin="20207199000042",
        document_number="AN7654321",
        last_name="Ташиев",
        first_name="Нурлан",
        patronymic="",
        birth_date=dt.date(1990, 7, 2),
    )
