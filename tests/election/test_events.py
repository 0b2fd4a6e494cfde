"""One catalogue of event ids: code and documentation come from it."""

from __future__ import annotations

import re
from pathlib import Path

from election.events import CATALOGUE, catalogue_markdown, event

REPO = Path(__file__).resolve().parents[2]


def test_documentation_is_generated_from_the_catalogue() -> None:
    assert (REPO / "docs" / "events.md").read_text() == catalogue_markdown()


def test_every_event_the_code_records_is_in_the_catalogue() -> None:
    used = set()
    for path in REPO.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        used |= set(re.findall(r"\.record\(\s*\"([a-z_]+)\"", path.read_text()))
    assert used, "no recorded events found: the scan is broken"
    assert used <= set(CATALOGUE), used - set(CATALOGUE)


def test_ids_and_names_are_unique_and_lookups_fail_loudly() -> None:
    assert len({e.id for e in CATALOGUE.values()}) == len(CATALOGUE)
    try:
        event("no_such_event")
    except KeyError as e:
        assert "event_catalogue.csv" in str(e)
    else:
        raise AssertionError("unknown event accepted")
