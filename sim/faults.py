"""Fault profiles for `shailoo sim day`: what goes wrong on the simulated election day.

A profile is a JSON file in `firmware_sim/faults/` (or any path) naming the faults and
the alerts the CEC must raise because of them:

    {"name": "modems", "description": "...",
     "modems": {"share": 0.3, "late_share": 0.5, ...},      station links cut and restored
     "broker": {"at": "20:02", "signal": "term"},            Mosquitto restarted
     "central": {"at": "20:03", "down_seconds": 3},          the CEC server killed with -9
     "attacker": {"start": "20:05", "flood": 300},           a stolen modem on the broker network
     "box": {"share": 0.3, "at_close_share": 0.5, ...},      ballot boxes fail: a deferred batch
     "spare": {"share": 0.3, "early": 0.5, ...},             appliances replaced by spare devices
     "expect_alerts": ["not_delivered"]}

`plan_faults` turns a profile into a seeded, reproducible plan for one election (which
stations lose their link when, on the simulated clock); `sim.day` applies it: modem
spells in the station worker processes (a `firmware_sim.modem.Modem` proxy per affected
station; ballot box failures, played by the fast station), the broker and central faults
and the attacker in the driver.  Times are
local "HH:MM" on election day.  Every profile must end with each station's final
reports accepted exactly once and the published results equal to the truth.

The attacker (`Attacker`) has stolen one station's modem, and with it that station's
TLS identity (the broker lets it publish on that station's up topics only), and has
extracted another station's signing key from a stolen appliance.  It replays old signed
reports (its own station's, another station's from the public record), signs with the
stolen key, signs under a root of its own, sends malformed and oversized payloads and
floods.  None of it may change a published number; each refusal is an alert.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import secrets
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

import firmware_sim

PROFILE_DIR = Path(firmware_sim.__file__).resolve().parent / "faults"
# Alerts any profile may raise on its own: transient holes while two ingest workers take
# a station's messages in another order (resolved when filled), stations still out when
# the server room's 2 h watch looks (resolved on delivery), and the turnout outlier rule.
BENIGN_ALERTS = frozenset({"gap", "not_delivered", "turnout_outlier"})


class FaultError(ValueError):
    """A profile cannot be read or applied; the message says what is wrong."""


def _hhmm(value: str) -> str:
    try:
        dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a local time HH:MM") from None
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]  # a local time of the election day


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModemFaults(_Model):
    """Station links (3G modems) going down: day spells, and some out until long after 20:00."""

    share: float = Field(0.0, ge=0, le=1)  # of the stations (at least one if > 0)
    spells: tuple[int, int] = (1, 2)  # day-time outages per affected station (min, max)
    spell_minutes: tuple[int, int] = (10, 90)
    window: tuple[HHMM, HHMM] = ("08:00", "19:30")  # when day spells start
    late_share: float = Field(0.0, ge=0, le=1)  # of the affected: also out over the close
    late_from: tuple[HHMM, HHMM] = ("19:00", "20:00")
    late_until: tuple[HHMM, HHMM] = ("22:15", "23:30")  # at least one late station, if any
    mid_packet: float = Field(0.0, ge=0, le=1)  # restores whose first connection dies mid-packet
    latency: tuple[float, float] = (0.0, 0.0)  # real seconds per forwarded chunk (a slow link)


class BrokerFault(_Model):
    """Mosquitto restarted (SIGTERM: saves its state) or killed (-9) during the closing storm."""

    at: HHMM
    signal: Literal["term", "kill"] = "term"
    down_seconds: float = Field(1.0, ge=0)  # real seconds before it starts again


class CentralFault(_Model):
    """The CEC server (main process and ingest workers) killed with -9, then started again."""

    at: HHMM
    down_seconds: float = Field(3.0, ge=0)  # real seconds before it starts again


class AttackerFault(_Model):
    """A stolen modem on the broker network; see the module docstring."""

    victim: int = -1  # index into the stations by number whose modem is stolen (-1: last)
    accomplice: int = 0  # index of the station whose appliance's signing key was extracted
    stolen_at: HHMM = "19:40"  # the victim's link goes down (the modem is gone)
    start: HHMM = "20:05"
    modem_back: HHMM = "21:00"  # the commission's spare modem, once the attacker is gone
    flood: int = Field(300, ge=0)  # payloads in the flood


class PowerFault(_Model):
    """Stations lose power at the close, after signing their final reports and before the
    uplink sends them (`share`), and while polls are open, in the middle of accepting a
    sheet (`mid_sheet_share`: the sheet held, not counted; half of them after it fell into
    the box, half before); power returns later and the appliance starts again from its disk."""

    share: float = Field(0.3, ge=0, le=1)  # of the stations (at least one if > 0)
    off_minutes: tuple[int, int] = (10, 60)
    mid_sheet_share: float = Field(0.0, ge=0, le=1)  # of the stations (at least one if > 0)
    mid_sheet_window: tuple[HHMM, HHMM] = ("09:00", "17:00")  # the cut: first sheet from then
    mid_sheet_off_minutes: tuple[int, int] = (3, 20)


class BoxFault(_Model):
    """Stations' ballot box (ASU) fails while polls are open: the voters go on voting into
    the spare ordinary box; when a spare ASU is connected (during the day, or only at the
    close) the commission scans those sheets as the deferred batch (chair's code)."""

    share: float = Field(0.3, ge=0, le=1)  # of the stations (at least one if > 0)
    window: tuple[HHMM, HHMM] = ("09:00", "17:00")  # when the box fails
    down_minutes: tuple[int, int] = (40, 180)  # until the spare ASU (if before the close)
    at_close_share: float = Field(0.5, ge=0, le=1)  # of the affected: no spare until the close


class SpareFault(_Model):
    """Stations' appliance dies while polls are open.  Its storage (the station's database:
    roll marks, ballots, counters, event log, outbox, signed chain) moves into a spare device
    with its own key, certified by the CEC for the station (`provision spare`), which takes
    it over (`Appliance.take_over`) and continues the station's chain.  The CEC authorises
    the spare's certificate (`central authorise-device`) before the spare runs, except for
    the `early` share of the stations: there the spare runs first, its messages are refused
    as `unknown_device` (no acknowledgement) and resent until the authorisation comes."""

    share: float = Field(0.3, ge=0, le=1)  # of the stations (at least one if > 0)
    window: tuple[HHMM, HHMM] = ("09:00", "16:00")  # when the appliance fails
    spare_minutes: tuple[int, int] = (20, 60)  # from the failure until the spare runs
    early: float = Field(0.5, ge=0, le=1)  # of the affected (at least one if > 0)
    authorise_minutes: tuple[int, int] = (10, 40)  # early: after the spare runs; else before

    @field_validator("spare_minutes", "authorise_minutes")
    @classmethod
    def _minutes(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"{list(v)} is not a range of minutes [min, max], min >= 1")
        return v


class Profile(_Model):
    name: str
    description: str = ""
    modems: ModemFaults | None = None
    broker: BrokerFault | None = None
    central: CentralFault | None = None
    attacker: AttackerFault | None = None
    power: PowerFault | None = None
    box: BoxFault | None = None
    spare: SpareFault | None = None
    expect_alerts: tuple[str, ...] = ()  # kinds that must be raised (others: BENIGN_ALERTS only)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by name (firmware_sim/faults/NAME.json) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaultError(
            f"no fault profile {name_or_path!r}; known: {', '.join(profile_names())}"
        ) from None
    except json.JSONDecodeError as e:
        raise FaultError(f"{path}: not JSON: {e}") from None
    try:
        return Profile.model_validate(data)
    except ValueError as e:
        raise FaultError(f"{path}: {e}") from None


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spell:
    """One outage of a station's link; `restore` None: the driver restores it (attacker)."""

    cut: dt.datetime
    restore: dt.datetime | None
    mid_packet: bool = False  # the first connection after the restore dies mid-packet
    late: bool = False  # out over the close


@dataclass(frozen=True)
class BoxOutage:
    """A station's ballot box (ASU) fails at `fails`; a spare ASU is connected at `back`
    (None: only at the close, after the closing hour and before the final reports are
    signed), and the commission then scans the spare ordinary box's sheets as the deferred
    batch.  `sim.truth.with_box_failure` says which sheets those are."""

    fails: dt.datetime
    back: dt.datetime | None

    def describe(self) -> str:
        back = f"a spare ASU at {self.back:%H:%M}" if self.back else "a spare ASU only at the close"
        return (
            f"ballot box (ASU) fails at {self.fails:%H:%M}, sheets into the spare box; {back}, "
            "then the deferred batch is scanned"
        )


@dataclass(frozen=True)
class MidSheetCut:
    """A station's power fails in the middle of accepting a sheet: the first sheet the box
    accepts from `after` on is held (its pending record committed) and not counted;
    `dropped`: it had already fallen into the box (the box's drop counter moved), else it is
    still in the scanner.  `off_minutes` later the appliance boots from its database and
    the held sheet is resolved from the box's drop counter (`sim.fast_station.PowerCut`)."""

    after: dt.datetime
    off_minutes: int
    dropped: bool

    def describe(self) -> str:
        where = "had fallen into the box" if self.dropped else "was still in the scanner"
        return (
            f"power cut in the middle of accepting a sheet (the first from {self.after:%H:%M}), "
            f"which {where}; back {self.off_minutes} min later"
        )


@dataclass(frozen=True)
class DeviceSwap:
    """A station's appliance dies at `fails`; the spare device, with the storage moved into
    it, takes over at `runs`; the CEC authorises the spare's certificate at `authorised`
    (after `runs`: the spare's messages are refused until then, and resent)."""

    fails: dt.datetime
    runs: dt.datetime
    authorised: dt.datetime

    @property
    def early(self) -> bool:
        return self.authorised > self.runs

    def describe(self) -> str:
        when = "after" if self.early else "before"
        return (
            f"appliance fails at {self.fails:%H:%M}; its storage moves into a spare device, "
            f"which takes over at {self.runs:%H:%M}; the CEC authorises the spare at "
            f"{self.authorised:%H:%M} ({when} it runs)"
        )


@dataclass(frozen=True)
class TimedEvent:
    at: dt.datetime
    what: Literal["broker", "central", "attacker", "stolen", "modem_back", "authorise"]
    station: int | None = None  # "authorise": whose spare


@dataclass(frozen=True)
class FaultPlan:
    profile: Profile
    spells: dict[int, tuple[Spell, ...]] = field(default_factory=dict)  # station number ->
    latency: dict[int, float] = field(default_factory=dict)
    victim: int | None = None  # the attacker's stolen modem is this station's
    accomplice: int | None = None  # whose signing key the attacker extracted
    events: tuple[TimedEvent, ...] = ()  # driver-side, in time order
    power_off: dict[int, int] = field(default_factory=dict)  # station -> minutes without power
    box: dict[int, BoxOutage] = field(default_factory=dict)  # station -> its box's failure
    power_mid_sheet: dict[int, MidSheetCut] = field(default_factory=dict)  # station -> its cut
    spares: dict[int, DeviceSwap] = field(default_factory=dict)  # station -> its device swap

    @property
    def modem_stations(self) -> set[int]:
        """Stations that talk to the broker through a simulated modem."""
        out = set(self.spells) | set(self.latency)
        if self.victim is not None:
            out.add(self.victim)
        return out

    def describe(self) -> list[str]:
        lines = []
        for number, minutes in sorted(self.power_off.items()):
            lines.append(
                f"station {number}: power cut after signing its final reports, back "
                f"{minutes} min later"
            )
        for number, cut in sorted(self.power_mid_sheet.items()):
            lines.append(f"station {number}: {cut.describe()}")
        for number, outage in sorted(self.box.items()):
            lines.append(f"station {number}: {outage.describe()}")
        for number, swap in sorted(self.spares.items()):
            lines.append(f"station {number}: {swap.describe()}")
        for number, spells in sorted(self.spells.items()):
            parts = [
                f"{s.cut:%H:%M}-{s.restore:%H:%M}" if s.restore else f"{s.cut:%H:%M}-?"
                for s in spells
            ]
            late = " (out over the close)" if any(s.late for s in spells) else ""
            lines.append(f"station {number}: link down {', '.join(parts)}{late}")
        for e in self.events:
            whose = f" (station {e.station})" if e.station else ""
            lines.append(f"{e.at:%H:%M} {e.what}{whose}")
        return lines


def plan_faults(
    profile: Profile,
    numbers: Sequence[int],
    date: dt.date,
    timezone: str,
    seed: int,
    *,
    exclude: Sequence[int] = (),
    closing: str = "20:00",
) -> FaultPlan:
    """Which station loses its link when, etc.: a pure function of its inputs.

    `exclude`: stations no modem fault is planned for (the "full" stations).  `closing`:
    the polls' closing hour (a ballot box not back before it is back only at the close)."""
    tz = ZoneInfo(timezone)
    rng = random.Random(f"shailoo-sim/{seed}/faults/{profile.name}")
    numbers = sorted(numbers)

    def at(hhmm: str) -> dt.datetime:
        return dt.datetime.combine(date, dt.time.fromisoformat(hhmm), tzinfo=tz)

    def between(a: str, b: str) -> dt.datetime:
        lo, hi = at(a), at(b)
        span = max(0, int((hi - lo).total_seconds()) // 60)
        return lo + dt.timedelta(minutes=rng.randint(0, span))

    spells: dict[int, tuple[Spell, ...]] = {}
    latency: dict[int, float] = {}
    victim = accomplice = None
    events: list[TimedEvent] = []
    candidates = [n for n in numbers if n not in set(exclude)]
    if profile.attacker is not None:
        a = profile.attacker
        if len(numbers) < 2:
            raise FaultError("the attacker profile needs at least 2 stations")
        victim = numbers[a.victim]
        accomplice = numbers[a.accomplice]
        if victim == accomplice:
            raise FaultError("the attacker's victim and accomplice must be different stations")
        candidates = [n for n in candidates if n != victim]
        events += [
            TimedEvent(at(a.stolen_at), "stolen"),
            TimedEvent(at(a.start), "attacker"),
            TimedEvent(at(a.modem_back), "modem_back"),
        ]
    m = profile.modems
    if m is not None and m.share > 0 and candidates:
        k = max(1, round(m.share * len(candidates)))
        chosen = sorted(rng.sample(candidates, min(k, len(candidates))))
        late_k = round(m.late_share * len(chosen))
        if m.late_share > 0:
            late_k = max(1, late_k)
        late = set(rng.sample(chosen, late_k))
        for n in chosen:
            out: list[Spell] = []
            for _ in range(rng.randint(*m.spells)):
                cut = between(*m.window)
                minutes = rng.randint(*m.spell_minutes)
                out.append(
                    Spell(cut, cut + dt.timedelta(minutes=minutes), rng.random() < m.mid_packet)
                )
            if n in late:
                cut = between(*m.late_from)
                restore = between(*m.late_until)
                out.append(Spell(cut, restore, rng.random() < m.mid_packet, late=True))
            spells[n] = _merge(out)
            if m.latency[1] > 0:
                latency[n] = round(rng.uniform(*m.latency), 3)
    power_off: dict[int, int] = {}
    if profile.power is not None and profile.power.share > 0 and candidates:
        k = max(1, round(profile.power.share * len(candidates)))
        for n in sorted(rng.sample(candidates, min(k, len(candidates)))):
            power_off[n] = rng.randint(*profile.power.off_minutes)
    mid_sheet: dict[int, MidSheetCut] = {}
    pw = profile.power
    if pw is not None and pw.mid_sheet_share > 0 and candidates:
        if at(pw.mid_sheet_window[1]) >= at(closing):
            raise FaultError(f"power.mid_sheet_window must end before the polls close at {closing}")
        k = max(1, round(pw.mid_sheet_share * len(candidates)))
        chosen = rng.sample(candidates, min(k, len(candidates)))
        first = rng.random() < 0.5  # the two cases alternate: both happen from two stations
        for j, n in enumerate(chosen):
            after = between(*pw.mid_sheet_window)
            off = rng.randint(*pw.mid_sheet_off_minutes)
            mid_sheet[n] = MidSheetCut(after, off, dropped=(j % 2 == 0) == first)
    box: dict[int, BoxOutage] = {}
    b = profile.box
    if b is not None and b.share > 0 and candidates:
        if at(b.window[1]) >= at(closing):
            raise FaultError(f"box.window must end before the polls close at {closing}")
        k = max(1, round(b.share * len(candidates)))
        chosen = sorted(rng.sample(candidates, min(k, len(candidates))))
        close_k = round(b.at_close_share * len(chosen))
        if b.at_close_share > 0:
            close_k = max(1, close_k)
        at_close = set(rng.sample(chosen, close_k))
        for n in chosen:
            fails = between(*b.window)
            spare = fails + dt.timedelta(minutes=rng.randint(*b.down_minutes))
            day_repair = n not in at_close and spare < at(closing)
            box[n] = BoxOutage(fails, spare if day_repair else None)
    spares: dict[int, DeviceSwap] = {}
    sp = profile.spare
    if sp is not None and sp.share > 0 and candidates:
        if at(sp.window[1]) + dt.timedelta(minutes=sp.spare_minutes[1]) >= at(closing):
            raise FaultError(
                f"spare.window and spare.spare_minutes must bring the spare before the polls "
                f"close at {closing}"
            )
        k = max(1, round(sp.share * len(candidates)))
        chosen = sorted(rng.sample(candidates, min(k, len(candidates))))
        early_k = round(sp.early * len(chosen))
        if sp.early > 0:
            early_k = max(1, early_k)
        early = set(rng.sample(chosen, early_k))
        for n in chosen:
            fails = between(*sp.window)
            runs = fails + dt.timedelta(minutes=rng.randint(*sp.spare_minutes))
            gap = dt.timedelta(minutes=rng.randint(*sp.authorise_minutes))
            authorised = runs + gap if n in early else max(fails, runs - gap)
            spares[n] = DeviceSwap(fails, runs, authorised)
            events.append(TimedEvent(authorised, "authorise", n))
    if profile.broker is not None:
        events.append(TimedEvent(at(profile.broker.at), "broker"))
    if profile.central is not None:
        events.append(TimedEvent(at(profile.central.at), "central"))
    events.sort(key=lambda e: e.at)
    return FaultPlan(
        profile,
        spells,
        latency,
        victim,
        accomplice,
        tuple(events),
        power_off,
        box=box,
        power_mid_sheet=mid_sheet,
        spares=spares,
    )


def _merge(spells: list[Spell]) -> tuple[Spell, ...]:
    """Overlapping outages become one (a link that is down cannot go down again)."""
    out: list[Spell] = []
    for s in sorted(spells, key=lambda s: s.cut):
        if out and out[-1].restore is not None and s.cut <= out[-1].restore:
            last = out[-1]
            end = max(last.restore, s.restore) if last.restore and s.restore else None
            out[-1] = Spell(last.cut, end, last.mid_packet or s.mid_packet, last.late or s.late)
        else:
            out.append(s)
    return tuple(out)


# --- the attacker -------------------------------------------------------------------------


@dataclass
class AttackLog:
    """What the attacker sent, and what it expects the CEC to make of it."""

    sent: list[tuple[str, str, int]] = field(default_factory=list)  # (what, expected, bytes)
    tls_forged_root_refused: bool | None = None
    published: int = 0
    seconds: float = 0.0

    def add(self, what: str, expected: str, size: int) -> None:
        self.sent.append((what, expected, size))

    def summary(self) -> list[str]:
        counts: dict[tuple[str, str], int] = {}
        for what, expected, _ in self.sent:
            counts[(what, expected)] = counts.get((what, expected), 0) + 1
        lines = [f"{n} x {what} (expected: {exp})" for (what, exp), n in counts.items()]
        if self.tls_forged_root_refused is not None:
            lines.append(
                "TLS login with a certificate of the attacker's own root: "
                + ("refused by the broker" if self.tls_forged_root_refused else "ACCEPTED (bug!)")
            )
        return lines


class Attacker:
    """Station `victim`'s stolen modem (its TLS identity) plus `accomplice`'s signing key.

    `public_messages()` is the public record the attacker replays from: every station's
    signed messages, as the results site publishes them (the central database here).
    """

    def __init__(
        self,
        prov_dir: Path,
        victim: int,
        accomplice: int,
        host: str,
        port: int,
        public_messages: Any,
        *,
        flood: int = 300,
    ) -> None:
        from election import bundle as B
        from election.definition import ElectionDefinition

        self.prov = prov_dir
        self.host, self.port = host, port
        self.flood = flood
        self.public_messages = public_messages
        self.definition = ElectionDefinition.from_json(
            (prov_dir / "central" / B.ELECTION_FILE).read_bytes()
        )
        self.passphrases = _passphrases(prov_dir)
        self.victim = self.definition.station_by_number(victim)
        self.accomplice = self.definition.station_by_number(accomplice)
        self.victim_bundle = prov_dir / "bundles" / str(victim)
        self.accomplice_bundle = prov_dir / "bundles" / str(accomplice)
        self.prefix = json.loads((self.victim_bundle / B.BROKER_FILE).read_bytes())["topic_prefix"]
        self.log = AttackLog()

    def topic(self, kind: str) -> str:
        return f"{self.prefix}/station/{self.victim.id}/up/{kind}"

    def run(self) -> AttackLog:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from crypto import keys
        from election import bundle as B

        started = time.perf_counter()
        self.log.tls_forged_root_refused = self._forged_root_login()
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cadata=(self.victim_bundle / B.ROOT_CERT_FILE).read_text()
        )
        ctx.load_cert_chain(
            str(self.victim_bundle / B.TLS_CERT_FILE),
            str(self.victim_bundle / B.TLS_KEY_FILE),
            self.passphrases[self.victim.number],
        )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.victim.id, protocol=mqtt.MQTTv5
        )
        client.tls_set_context(ctx)
        client.max_queued_messages_set(0)
        client.connect(self.host, self.port)
        client.loop_start()
        stolen_key = keys.load_private_key(
            (self.accomplice_bundle / B.SIGNING_KEY_FILE).read_bytes(),
            self.passphrases[self.accomplice.number],
        )
        infos = []

        def send(kind_topic: str, payload: bytes, what: str, expected: str) -> None:
            infos.append(client.publish(self.topic(kind_topic), payload, qos=1))
            self.log.add(what, expected, len(payload))

        try:
            own, other = self._public()
            for m in own[:2]:  # the station's own old reports again: duplicates, acked again
                send(
                    m["kind"],
                    m["raw"],
                    "replay of the station's own earlier report",
                    "duplicate (acked, no change)",
                )
            if other is not None:
                send(
                    other["kind"],
                    other["raw"],
                    f"replay of station {self.accomplice.number}'s report on the stolen topic",
                    "forged",
                )
            victim_device = _device_id(self.victim_bundle)
            accomplice_device = _device_id(self.accomplice_bundle)
            fake = self._final_body()
            send(
                "asu_report",
                self._sign(stolen_key, victim_device, fake, seq=900),
                "a final report signed with another station's key, as the victim's device",
                "forged",
            )
            send(
                "asu_report",
                self._sign(stolen_key, accomplice_device, fake, seq=901),
                "a final report signed with another station's key and device",
                "unknown_device",
            )
            send(
                "asu_report",
                self._sign(
                    stolen_key, victim_device, fake, seq=902, election=secrets.token_hex(32)
                ),
                "a report of another election",
                "wrong_election",
            )
            rogue_key = keys.generate_signing_key()
            send(
                "asu_report",
                self._sign(rogue_key, f"{self.victim.id}-spare", fake, seq=903),
                "a report from a device certified by the attacker's own root",
                "unknown_device",
            )
            send(
                "asu_report",
                self._sign(rogue_key, victim_device, fake, seq=904),
                "a report signed by the attacker's own key as the victim's device",
                "forged",
            )
            good = own[0]["raw"] if own else b"{}"
            for payload, what in (
                (b"\x00\xffnot a report at all", "binary garbage"),
                (b'{"kind": "asu_report"}', "JSON that is not an envelope"),
                (good[: len(good) // 2], "a truncated signed report"),
                (good.replace(b",", b", ", 1), "a signed report re-serialised (not canonical)"),
            ):
                send("asu_report", payload, what, "malformed")
            send("asu_report", b"x" * (300 * 1024), "a 300 kB payload", "oversized")
            for i in range(self.flood):
                if i % 2 and own:
                    send(own[0]["kind"], own[0]["raw"], "flood: replay", "duplicate (acked)")
                else:
                    send("heartbeat", b"flood " + str(i).encode(), "flood: garbage", "malformed")
            deadline = time.monotonic() + 60
            for info in infos:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            self.log.published = sum(i.is_published() for i in infos)
        finally:
            client.disconnect()
            client.loop_stop()
        self.log.seconds = time.perf_counter() - started
        return self.log

    def _public(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        rows = self.public_messages()
        own = [r for r in rows if r["station_id"] == self.victim.id]
        own.sort(key=lambda r: r["seq"])
        others = [r for r in rows if r["station_id"] == self.accomplice.id]
        others.sort(key=lambda r: (r["kind"] != "asu_report", -r["seq"]))
        return own, (others[0] if others else None)

    def _final_body(self) -> dict[str, Any]:
        """A final ASU report that would hand every vote to the first option of each contest."""
        tallies = []
        for c in self.definition.contests_for_station(self.victim.id):
            votes = {o.id: 0 for o in c.options}
            votes[c.options[0].id] = 999
            prefs = {x.id: 0 for o in c.options for x in o.candidates}
            tallies.append(
                {
                    "contest_id": c.id,
                    "ballots": 999,
                    "invalid": 0,
                    "invalid_by_reason": {},
                    "votes": votes,
                    "preferences": prefs,
                }
            )
        return {
            "phase": "final",
            "mode": "live",
            "sheets": 999,
            "deferred_sheets": 0,
            "returned": {},
            "tallies": tallies,
            "deferred_tallies": [],
            "voters_identified": 999,
            "problems": [],
        }

    def _sign(
        self, key: Any, device: str, body: dict[str, Any], *, seq: int, election: str | None = None
    ) -> bytes:
        from crypto.envelope import GENESIS_PREV, format_time, sign_envelope

        env = sign_envelope(
            key,
            kind="asu_report",
            election=election or self.definition.election_hash,
            station=self.victim.id,
            device=device,
            seq=seq,
            prev=GENESIS_PREV,
            time=format_time(dt.datetime.now(dt.UTC)),
            body=body,
        )
        return env.to_bytes()

    def _forged_root_login(self) -> bool:
        """Log in with a TLS certificate the attacker's own root issued: True if refused."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from crypto import certs, keys
        from election import bundle as B

        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        root_key = keys.generate_signing_key()
        root = certs.make_root(
            root_key, not_before=now - dt.timedelta(days=2), not_after=now + dt.timedelta(days=60)
        )
        tls_key = keys.generate_tls_key()
        cert = certs.issue_device_certificate(
            root_key,
            root,
            tls_key.public_key(),
            station_id=self.victim.id,
            device_id=f"{self.victim.id}-rogue",
            election_hash=self.definition.election_hash,
            purpose="tls",
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=30),
        )
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_path.write_bytes(certs.cert_to_pem(cert) + certs.cert_to_pem(root))
            key_path.write_bytes(keys.unencrypted_private_key_pem(tls_key))
            ctx = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cadata=(self.victim_bundle / B.ROOT_CERT_FILE).read_text()
            )
            ctx.load_cert_chain(str(cert_path), str(key_path))
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.victim.id, protocol=mqtt.MQTTv5
            )
            client.tls_set_context(ctx)
            refused = False
            try:
                client.connect(self.host, self.port)
                # TLS 1.3: the server checks the client certificate after the handshake
                # the client saw complete; the refusal arrives as a closed connection.
                end = time.monotonic() + 5
                connected = {"ok": False}
                client.on_connect = lambda c, u, f, rc, p: connected.update(ok=not rc.is_failure)
                while time.monotonic() < end and not connected["ok"]:
                    if client.loop(timeout=0.1) != 0:
                        refused = True
                        break
                refused = refused or not connected["ok"]
            except (OSError, ssl.SSLError):
                refused = True
            finally:
                with contextlib.suppress(Exception):  # already gone
                    client.disconnect()
            return refused


def _device_id(bundle: Path) -> str:
    from election import bundle as B

    return str(json.loads((bundle / B.MANIFEST_FILE).read_bytes())["body"]["device_id"])


def _passphrases(prov: Path) -> dict[int, str]:
    lines = (prov / "secrets" / "device-passphrases.csv").read_text().splitlines()[1:]
    return {int(r.split(",")[0]): r.split(",")[2] for r in lines}


__all__ = [
    "BENIGN_ALERTS",
    "PROFILE_DIR",
    "AttackLog",
    "Attacker",
    "BoxOutage",
    "DeviceSwap",
    "FaultError",
    "FaultPlan",
    "MidSheetCut",
    "Profile",
    "Spell",
    "TimedEvent",
    "load_profile",
    "plan_faults",
    "profile_names",
]
