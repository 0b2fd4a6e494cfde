"""Fixtures shared by the station's tests."""

from __future__ import annotations

import pytest

from tests.support.provisioned import Provisioned
from tests.support.station import StationKit


@pytest.fixture(scope="module")
def kit(provisioned: Provisioned) -> StationKit:
    """The first station of the session's provisioned election: bundle, voters, photos."""
    return StationKit(provisioned, provisioned.definition.stations[0].number)
