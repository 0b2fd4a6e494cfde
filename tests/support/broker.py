"""A real Mosquitto for tests: central.mosquitto's process, plus a fixture that stops it.

with start_mosquitto(conf_text, tmp_path) as broker:
    client.connect("127.0.0.1", broker.port)
    broker.kill(); broker.restart()   # crash and come back on the same port
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central.mosquitto import (
    HOST,
    MOSQUITTO,
    Broker,
    BrokerError,
    free_port,
    render_config,
    start_for_kit,
    start_mosquitto,
)

__all__ = [
    "HOST",
    "MOSQUITTO",
    "Broker",
    "BrokerError",
    "free_port",
    "mosquitto_factory",
    "render_config",
    "start_for_kit",
    "start_mosquitto",
]


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Fixture: `mosquitto_factory(conf_text, **values)` starts brokers stopped after the test.

    Use from a conftest.py: `from tests.support.broker import mosquitto_factory  # noqa: F401`.
    Each broker gets its own directory `tmp_path/broker-N`.
    """
    started: list[Broker] = []

    def factory(conf_text: str, **values: Any) -> Broker:
        b = start_mosquitto(conf_text, tmp_path / f"broker-{len(started)}", **values)
        started.append(b)
        return b

    try:
        yield factory
    finally:
        for b in started:
            b.stop()
