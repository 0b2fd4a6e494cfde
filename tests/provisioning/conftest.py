"""Shared fixtures for provisioning tests: a small election and the real face photos."""

from __future__ import annotations

import datetime as dt

import pytest

from election.definition import ElectionDefinition

ELECTION_DAY = dt.date(2026, 11, 29)


def _names(ky: str, ru: str | None = None) -> dict[str, str]:
    return {"ky": ky, "ru": ru or ky}


@pytest.fixture(scope="session")
def definition() -> ElectionDefinition:
    """Two regions, three stations (1001, 1002 in Bishkek; 2001 in Osh), one party-list contest."""
    station = {
        "lat": "42.8746000",
        "lon": "74.5698000",
        "registered_voters": 1500,
        "address": _names("Чүй проспекти 1", "проспект Чуй 1"),
    }
    return ElectionDefinition.model_validate(
        {
            "id": "test-2026",
            "name": _names("Жогорку Кеңешке шайлоо", "Выборы в Жогорку Кенеш"),
            "date": ELECTION_DAY.isoformat(),
            "regions": [
                {"id": "bishkek", "kind": "city", "name": _names("Бишкек")},
                {"id": "osh", "kind": "oblast", "name": _names("Ош облусу", "Ошская область")},
            ],
            "districts": [
                {"id": "d-bishkek", "region_id": "bishkek", "name": _names("Бишкек")},
                {"id": "d-osh", "region_id": "osh", "name": _names("Ош")},
            ],
            "commissions": [
                {"id": "tik-bishkek", "district_id": "d-bishkek", "name": _names("ТШК Бишкек")},
                {"id": "tik-osh", "district_id": "d-osh", "name": _names("ТШК Ош")},
            ],
            "stations": [
                {
                    **station,
                    "id": "uik-1001",
                    "number": 1001,
                    "commission_id": "tik-bishkek",
                    "name": _names("1001"),
                },
                {
                    **station,
                    "id": "uik-1002",
                    "number": 1002,
                    "commission_id": "tik-bishkek",
                    "name": _names("1002"),
                },
                {
                    **station,
                    "id": "uik-2001",
                    "number": 2001,
                    "commission_id": "tik-osh",
                    "name": _names("2001"),
                },
            ],
            "contests": [
                {
                    "id": "parliament",
                    "kind": "party_list",
                    "name": _names("Партиялык тизмелер", "Партийные списки"),
                    "options": [
                        {"id": "party-a", "kind": "party", "name": _names("Ата-Журт")},
                        {"id": "party-b", "kind": "party", "name": _names("Ынтымак")},
                        {
                            "id": "against",
                            "kind": "against_all",
                            "name": _names("Баарына каршы", "Против всех"),
                        },
                    ],
                    "rules": {"kind": "party_list", "seats": 90},
                }
            ],
        }
    )
