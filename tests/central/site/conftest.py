"""One published election for the site's read-only tests, built once per session on SQLite.

Tests that publish more (live updates) build their own with `db_url`, on SQLite and
PostgreSQL both.
"""

from __future__ import annotations

import pytest

from tests.central.site.support import Election, build
from tests.support.provisioned import Provisioned


@pytest.fixture(scope="session")
def published(provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Election:
    path = tmp_path_factory.mktemp("site") / "central.sqlite"
    return build(provisioned, f"sqlite:///{path}")
