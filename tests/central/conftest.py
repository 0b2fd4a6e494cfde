"""Every central test that takes `db_url` runs twice: on a fresh SQLite file and on a fresh
PostgreSQL database (the machine's server on 5432; SHAILOO_TEST_PG overrides where)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from central.db import Database, open_database
from central.mosquitto import Broker, start_for_kit
from tests.support.provisioned import Provisioned

PG_ADMIN = os.environ.get("SHAILOO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each kind, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.sqlite'}"
        return
    name = f"shailoo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = open_database(db_url)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def broker(provisioned: Provisioned, tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with the kit's production configuration (TLS, ACL), on a free port."""
    b = start_for_kit(provisioned.central_dir, tmp_path / "broker")
    try:
        yield b
    finally:
        b.stop()
