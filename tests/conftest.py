"""Fixtures shared across the parts' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.provisioned import FACES, Provisioned, provision


@pytest.fixture(scope="session")
def faces() -> Path:
    """The shared real face photos (../shared/data/faces, or $SHAILOO_FACES)."""
    if not (FACES / "obama" / "enroll.jpg").is_file():
        pytest.fail(f"face photos not found at {FACES}; set SHAILOO_FACES to the face test set")
    return FACES


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    """One small parliament election, provisioned once per test session with the real pipeline."""
    return provision(tmp_path_factory.mktemp("provisioned"))
