"""The one catalogue of event ids, read from `event_catalogue.csv`.

Station and central logs name events only from this catalogue, so that a log
exported as NIST SP 1500-101 means the same thing everywhere; the
documentation (docs/events.md) is generated from the same file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True)
class EventType:
    id: int
    name: str
    severity: Severity
    description: str


def _load() -> dict[str, EventType]:
    text = resources.files("election").joinpath("event_catalogue.csv").read_text("utf-8")
    out: dict[str, EventType] = {}
    ids: set[int] = set()
    for row in csv.DictReader(io.StringIO(text)):
        e = EventType(int(row["id"]), row["name"], Severity(row["severity"]), row["description"])
        if e.name in out or e.id in ids:
            raise ValueError(f"event catalogue repeats {e.name} / {e.id}")
        out[e.name] = e
        ids.add(e.id)
    return out


CATALOGUE: dict[str, EventType] = _load()


def event(name: str) -> EventType:
    """The catalogued event of this name; an unknown name is a programming error."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"event {name!r} is not in election/event_catalogue.csv") from None


def catalogue_markdown() -> str:
    """docs/events.md, generated from the catalogue."""
    lines = [
        "# Event catalogue",
        "",
        "Generated from `election/event_catalogue.csv` by `election.events.catalogue_markdown`;",
        "a test keeps it current. Do not edit.",
        "",
        "| id | name | severity | description |",
        "| --- | --- | --- | --- |",
    ]
    for e in sorted(CATALOGUE.values(), key=lambda e: e.id):
        lines.append(f"| {e.id} | `{e.name}` | {e.severity.value} | {e.description} |")
    return "\n".join(lines) + "\n"
