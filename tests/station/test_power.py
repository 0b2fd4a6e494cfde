from __future__ import annotations

from pathlib import Path

from station.power import read_health


def supply(base: Path, name: str, **files: str) -> None:
    d = base / name
    d.mkdir(parents=True)
    for k, v in files.items():
        (d / k).write_text(v + "\n")


def test_battery_and_mains_are_read_from_the_power_supply_class(tmp_path: Path) -> None:
    supply(tmp_path, "BAT0", type="Battery", capacity="63")
    supply(tmp_path, "AC", type="Mains", online="0")
    h = read_health(tmp_path)
    assert (h.battery_percent, h.on_mains) == (63, False)


def test_a_machine_without_a_battery_reports_unknown_not_a_number(tmp_path: Path) -> None:
    h = read_health(tmp_path / "absent")
    assert (h.battery_percent, h.on_mains, h.signal_dbm) == (None, None, None)


def test_a_garbled_capacity_is_unknown(tmp_path: Path) -> None:
    supply(tmp_path, "BAT0", type="Battery", capacity="??")
    assert read_health(tmp_path).battery_percent is None
