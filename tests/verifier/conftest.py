"""The verifier's tests build a real record on SQLite (the verifier reads the exported
files, never the database, so one database kind is enough)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central.db import Database, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = open_database(f"sqlite:///{tmp_path / 'central.sqlite'}")
    try:
        yield d
    finally:
        d.close()
