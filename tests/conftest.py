"""Fixtures shared across the parts' tests."""

from __future__ import annotations

import pytest

from tests.support.provisioned import Provisioned, provision


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    """One small parliament election, provisioned once per test session with the real pipeline."""
    return provision(tmp_path_factory.mktemp("provisioned"))
