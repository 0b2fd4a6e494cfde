"""What the box knows about its own power, read from Linux's power-supply class.

On the appliance the battery and the mains adapter appear under
/sys/class/power_supply; on a machine without them every value is None
and the heartbeat says "unknown" rather than inventing a figure.
"""

from __future__ import annotations

from pathlib import Path

from station.appliance import Health

POWER_SUPPLY = Path("/sys/class/power_supply")


def read_health(base: Path = POWER_SUPPLY) -> Health:
    battery: int | None = None
    on_mains: bool | None = None
    if base.is_dir():
        for dev in sorted(base.iterdir()):
            kind = _read(dev / "type")
            if kind == "Battery" and battery is None:
                value = _read(dev / "capacity")
                battery = int(value) if value is not None and value.isdigit() else None
            elif kind == "Mains":
                online = _read(dev / "online")
                on_mains = (on_mains or False) or online == "1"
    return Health(battery_percent=battery, on_mains=on_mains)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
