"""The Mosquitto test helper itself: free port, restart, crash, clean stop, clear errors."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.broker import Broker, BrokerError, render_config, start_mosquitto

PLAIN = "listener {port} 127.0.0.1\nallow_anonymous true\n"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_broker_listens_on_a_free_port_and_is_gone_after_the_with_block(tmp_path: Path) -> None:
    with start_mosquitto(PLAIN, tmp_path) as broker:
        assert broker.port != 1883
        assert broker.running and _accepts(broker.port)
        proc = broker.process
        assert proc is not None
    assert proc.poll() is not None
    assert not _accepts(broker.port)
    assert "running" in broker.log()
    assert (tmp_path / "mosquitto.conf").read_text().count(f"listener {broker.port}") == 1


def test_kill_and_restart_come_back_on_the_same_port(tmp_path: Path) -> None:
    with start_mosquitto(PLAIN, tmp_path) as broker:
        port = broker.port
        broker.kill()
        assert not broker.running and not _accepts(port)
        broker.restart()
        assert broker.port == port and _accepts(port)
        broker.restart()
        assert _accepts(port)
        broker.stop()
        broker.stop()  # idempotent


def test_unfilled_placeholder_is_named_before_mosquitto_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\{cafile\} has no value"):
        start_mosquitto(PLAIN + "cafile {cafile}\n", tmp_path)
    assert render_config("a {x} {port}", x=1, port=2) == "a 1 2"


def test_broken_config_raises_broker_error_with_mosquitto_log(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="exited at start"):
        start_mosquitto(PLAIN + "no_such_option 1\n", tmp_path)
    assert "no_such_option" in (tmp_path / "mosquitto.log").read_text()


def test_fixture_gives_each_broker_its_own_port_and_directory(
    mosquitto_factory: Callable[..., Broker],
) -> None:
    a = mosquitto_factory(PLAIN)
    b = mosquitto_factory(PLAIN)
    assert a.port != b.port and a.workdir != b.workdir
    assert _accepts(a.port) and _accepts(b.port)
