"""The polling-station appliance: set up from a verified bundle, then run the day.

Everything durable lives in the station's SQLite database (station.store); the
bundle is verified again at every start, and the database must belong to the
same election, station and device, or the appliance refuses to start.  A spare device
takes over a failed one's storage only explicitly (`Appliance.take_over`: same station
and election, the chair's code), and from then on signs the station's chain with its
own key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import numpy as np
from cryptography import x509

from crypto import keys
from crypto.envelope import Envelope
from election import bundle as B
from station import reports
from station.bundle import VerifiedBundle, VerifyCache, verify_bundle
from station.count import BallotBox, CountSettings
from station.eventlog import EventLog
from station.identify import Desk, FaceMatcher, IndexLookup, chair_code_matches, hash_chair_code
from station.signer import Signer
from station.state import Mode, State, Transition, TransitionError, next_state
from station.store import Store

DB_FILE = "station.sqlite"
Clock = Callable[[], dt.datetime]


class ApplianceError(RuntimeError):
    """The appliance cannot start or act; the message says what to do."""


@dataclass(frozen=True)
class Health:
    """What the heartbeat says about the box itself (None where the hardware cannot tell)."""

    battery_percent: int | None = None
    on_mains: bool | None = None
    signal_dbm: int | None = None


@dataclass(frozen=True)
class Settings:
    turnout_every_minutes: int = 60
    heartbeat_every_minutes: int = 10
    log_digest_every_minutes: int = 60
    count: CountSettings = field(default_factory=CountSettings)


class Appliance:
    def __init__(
        self,
        store: Store,
        bundle: VerifiedBundle,
        passphrase: str,
        matcher: FaceMatcher,
        clock: Clock,
        *,
        index: IndexLookup | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.bundle = bundle
        self.definition = bundle.definition
        self.station = bundle.station
        self.clock = clock
        self.settings = settings or Settings()
        self.tz = ZoneInfo(self.definition.timezone)
        self.log = EventLog(store, clock)
        try:
            key = keys.load_private_key(bundle.file(B.SIGNING_KEY_FILE).read_bytes(), passphrase)
        except keys.KeyDecryptError as e:
            raise ApplianceError("the device passphrase is wrong: type it again") from e
        self.signer = Signer(
            store,
            key,
            election_hash=self.definition.election_hash,
            station_id=self.station.id,
            device_id=bundle.device_id,
            clock=clock,
        )
        self.index = index if index is not None else bundle.open_index(passphrase)
        self.box = BallotBox(
            store,
            self.log,
            self.definition,
            self.definition.contests_for_station(self.station.id),
            self.settings.count,
        )
        self.desk = Desk(
            store,
            self.log,
            self.definition,
            self.index,
            matcher,
            clock,
            polls_open=lambda: self.state is State.OPEN,
            chair_code_ok=self.chair_code_ok,
        )

    # --- start ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        data_dir: Path,
        bundle_dir: Path,
        *,
        root_cert: x509.Certificate,
        passphrase: str,
        matcher: FaceMatcher,
        clock: Clock,
        chair_code: str | None = None,
        mode: Mode = Mode.LIVE,
        index_dir: Path | None = None,
        settings: Settings | None = None,
        cache: VerifyCache | None = None,
        index: IndexLookup | None = None,
    ) -> Appliance:
        """Verify the bundle; set the station up on first start, or resume where it was.

        `cache` and `index` let a simulator run many stations of one election in one
        process without verifying and loading the national index once per station.
        """
        bundle = verify_bundle(
            bundle_dir, root_cert=root_cert, at=clock(), index_dir=index_dir, cache=cache
        )
        try:  # before anything is written: a mistyped passphrase must leave no trace
            keys.load_private_key(bundle.file(B.SIGNING_KEY_FILE).read_bytes(), passphrase)
        except keys.KeyDecryptError as e:
            raise ApplianceError("the device passphrase is wrong: type it again") from e
        store = Store(data_dir / DB_FILE)
        fresh = store.meta("election_hash") is None
        if fresh:
            if chair_code is None:
                store.close()
                raise ApplianceError("first start: the chair must set a code of at least 4 digits")
            _load_bundle(store, bundle, hash_chair_code(chair_code), mode)
        else:
            _check_same(store, bundle)
        app = cls(store, bundle, passphrase, matcher, clock, index=index, settings=settings)
        if fresh:
            app.log.record(
                "device_setup",
                device=bundle.device_id,
                voters=bundle.manifest.voters,
                mode=mode.value,
            )
        app.log.record("app_started", state=app.state.value)
        if pending := app.desk.pending():
            app.log.record("recovered_after_restart", outcome="na", awaiting=len(pending))
        return app

    @classmethod
    def take_over(
        cls,
        data_dir: Path,
        bundle_dir: Path,
        *,
        root_cert: x509.Certificate,
        passphrase: str,
        chair_code: str,
        matcher: FaceMatcher,
        clock: Clock,
        actor: str = "chair",
        health: Health | None = None,
        index_dir: Path | None = None,
        settings: Settings | None = None,
        cache: VerifyCache | None = None,
        index: IndexLookup | None = None,
    ) -> Appliance:
        """A spare device takes over the storage of the station's failed one.

        The storage (this database: roll marks, ballots, counters, event log, outbox and
        the signed chain) was moved into the spare, as Brazil moves a failed urna's
        flash cards into the contingency urna.  The spare's bundle must be the CEC's,
        for the same station and election, and another device than the one that holds
        the storage (nor one replaced before); the chair's code must be right.  Then, in
        one transaction, the storage is the spare's, the event log records the handover
        (old device, new device, the last signed seq), and the spare signs its first
        message: a heartbeat whose `device_change` names the device it replaces.  The
        chain goes on: next seq, `prev` the hash of the failed device's last message.
        Anything refused changes nothing.
        """
        bundle = verify_bundle(
            bundle_dir, root_cert=root_cert, at=clock(), index_dir=index_dir, cache=cache
        )
        try:
            keys.load_private_key(bundle.file(B.SIGNING_KEY_FILE).read_bytes(), passphrase)
        except keys.KeyDecryptError as e:
            raise ApplianceError("the spare's device passphrase is wrong: type it again") from e
        path = data_dir / DB_FILE
        if not path.is_file():
            raise ApplianceError(
                f"no station database in {data_dir}: a spare takes over the storage of the "
                "failed device, moved here from it (a new station starts with `station run`)"
            )
        store = Store(path)
        try:
            replaced = _check_takeover(store, bundle, chair_code)
            app = cls(store, bundle, passphrase, matcher, clock, index=index, settings=settings)
        except BaseException:
            store.close()
            raise
        pending = store.one("SELECT COUNT(*) AS n FROM messages WHERE acked_at IS NULL")
        last = store.one("SELECT seq FROM messages ORDER BY seq DESC LIMIT 1")
        last_seq = None if last is None else int(last["seq"])
        with store.transaction():
            store.set_meta("device_id", bundle.device_id)
            app.log.record(
                "device_taken_over",
                actor=actor,
                from_device=replaced,
                to_device=bundle.device_id,
                last_seq=last_seq,
                state=app.state.value,
            )
            app.heartbeat(
                health or Health(),
                outbox_pending=0 if pending is None else int(pending["n"]),
                device_change={"from_device": replaced, "last_seq": last_seq},
            )
        app.log.record("app_started", state=app.state.value)
        if waiting := app.desk.pending():
            app.log.record("recovered_after_restart", outcome="na", awaiting=len(waiting))
        return app

    def replaced_devices(self) -> list[str]:
        """Devices that held this station's storage before the one running now."""
        return _replaced(self.store)

    # --- state ---------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return State(self.store.meta("state") or State.SETUP.value)

    @property
    def mode(self) -> Mode:
        return Mode(self.store.meta("mode") or Mode.LIVE.value)

    def chair_code_ok(self, code: str) -> bool:
        stored = self.store.meta("chair_code")
        return stored is not None and chair_code_matches(stored, code)

    def open_polls(self, actor: str) -> Envelope:
        """Open: only with every counter at zero; signs the first identification report."""
        target = self._transition(Transition.OPEN_POLLS, actor)
        counts = reports.identification_counts(self.store)
        if counts["voted"] or any(counts["refused"].values()):
            self._refused(Transition.OPEN_POLLS, actor, "counters are not zero: polls cannot open")
        if self.box.sheets() or self.box.pending():
            self._refused(
                Transition.OPEN_POLLS, actor, "the ballot box has counted sheets: polls cannot open"
            )
        with self.store.transaction():
            self.store.set_meta("state", target.value)
            self.store.set_meta("opened_at", self._utc())
            self.log.record("polls_opened", actor=actor, mode=self.mode.value)
            self._asu_report("zero")
            return self._report(reports.IDENTIFICATION_REPORT, phase="first")

    def close_polls(self, actor: str, chair_code: str) -> Envelope:
        """Close: from the closing hour (any time in test mode); signs the final report."""
        target = self._transition(Transition.CLOSE_POLLS, actor)
        if not self.chair_code_ok(chair_code):
            self._refused(Transition.CLOSE_POLLS, actor, "the chair's code is wrong")
        now = self.clock().astimezone(self.tz)
        closing = dt.time.fromisoformat(self.definition.polls_close)
        if self.mode is Mode.LIVE and now.time() < closing:
            self._refused(
                Transition.CLOSE_POLLS,
                actor,
                f"polls close at {self.definition.polls_close}, not before",
            )
        if self.desk.state.value == "marked" or self.desk.pending():
            self._refused(
                Transition.CLOSE_POLLS,
                actor,
                "a marked voter is not yet confirmed: confirm or cancel first",
            )
        with self.store.transaction():
            self.store.set_meta("state", target.value)
            self.store.set_meta("closed_at", self._utc())
            self.log.record("polls_closed", actor=actor)
            self._asu_report("final")
            final = self._report(reports.IDENTIFICATION_REPORT, phase="final")
            self.log_digest()  # the log as it stood at close, committed to with the reports
            return final

    def enter_test_mode(self, actor: str) -> None:
        """Logic-and-accuracy testing before the election: only in setup."""
        if self.state is not State.SETUP or self.mode is Mode.TEST:
            raise TransitionError("test mode can be entered only in setup, from live mode")
        with self.store.transaction():
            self.store.set_meta("mode", Mode.TEST.value)
            self.log.record("test_mode_entered", actor=actor)

    def leave_test_mode(self, actor: str, chair_code: str) -> None:
        """End testing: every test identification is cleared and the station is in setup, live.

        Signed test messages stay in the chain (marked mode "test"), so the chain never forks.
        """
        if self.mode is not Mode.TEST:
            raise TransitionError("the station is not in test mode")
        if not self.chair_code_ok(chair_code):
            raise TransitionError("the chair's code is wrong")
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM identifications")
            tx.execute("DELETE FROM refusals")
            self.box.clear_test_data()
            self.store.set_meta("mode", Mode.LIVE.value)
            self.store.set_meta("state", State.SETUP.value)
            self.log.record("test_mode_left", actor=actor)
        self.desk.clear()

    def turnout_snapshot(self) -> Envelope:
        """Signed counts only; the uplink sends them every N minutes while polls are open."""
        if self.state is not State.OPEN:
            raise TransitionError("turnout is reported while polls are open")
        with self.store.transaction():
            body = reports.turnout_snapshot(
                self.store, self.tz, mode=self.mode.value, at=self.clock()
            )
            env = self.signer.sign(reports.TURNOUT, body)
            self.log.record("turnout_snapshot", voted=body["voted"], seq=env.seq)
            return env

    def turnout_due(self) -> bool:
        """Whether the next snapshot is due (every `turnout_every_minutes` while open)."""
        if self.state is not State.OPEN:
            return False
        return self._due(reports.TURNOUT, self.settings.turnout_every_minutes)

    def heartbeat(
        self,
        health: Health,
        *,
        outbox_pending: int,
        device_change: dict[str, Any] | None = None,
    ) -> Envelope:
        """Signed status: state, power, signal, what waits to be sent; counts only.
        `device_change`: the first message of a spare (see `take_over`)."""
        from station.printing import software_version

        seq, head = self.log.head()
        counts = reports.identification_counts(self.store)
        body = {
            "state": self.state.value,
            "mode": self.mode.value,
            "battery_percent": health.battery_percent,
            "on_mains": health.on_mains,
            "signal_dbm": health.signal_dbm,
            "outbox_pending": outbox_pending,
            "voted": counts["voted"],
            "sheets": self.box.sheets(),
            "software": software_version(),
            "log_head": {"seq": seq, "hash": head},
        }
        if device_change is not None:
            body["device_change"] = device_change
        with self.store.transaction():
            return self.signer.sign(reports.HEARTBEAT, body)

    def heartbeat_due(self) -> bool:
        return self._due(reports.HEARTBEAT, self.settings.heartbeat_every_minutes)

    def log_digest(self) -> Envelope:
        """Signed head of the event log: the CEC can later check an exported log against it.

        The entries themselves stay on the device (they name operators and times);
        the digest commits to them, hash-chained, without revealing them.
        """
        with self.store.transaction():
            last = self.signer.messages(reports.LOG_DIGEST)
            after = int(last[-1].body["to_seq"]) if last else 0
            upto, head = self.log.head()
            body = {
                "from_seq": after + 1,
                "to_seq": upto,
                "count": upto - after,
                "head_hash": head,
                "by_severity": self.log.severities(after, upto),
                "mode": self.mode.value,
            }
            return self.signer.sign(reports.LOG_DIGEST, body)

    def log_digest_due(self) -> bool:
        if self.log.head()[0] == self._last_digest_upto():
            return False
        return self._due(reports.LOG_DIGEST, self.settings.log_digest_every_minutes)

    def _last_digest_upto(self) -> int:
        last = self.signer.last(reports.LOG_DIGEST)
        return int(last.body["to_seq"]) if last else 0

    def _due(self, kind: str, minutes: int) -> bool:
        last = self.signer.last_time(kind)
        return last is None or self.clock() - last >= dt.timedelta(minutes=minutes)

    def _transition(self, t: Transition, actor: str) -> State:
        try:
            return next_state(self.state, t)
        except TransitionError as e:
            self._refused(t, actor, str(e))
            raise  # unreachable: _refused raises

    def _refused(self, t: Transition, actor: str, why: str) -> NoReturn:
        """Log the refusal (its own transaction, so it survives) and raise."""
        self.log.record(
            "state_change_refused", actor=actor, outcome="failure", transition=t.value, why=why
        )
        raise TransitionError(why)

    def _report(self, kind: str, *, phase: str) -> Envelope:
        body = reports.identification_report(
            self.store, self.tz, phase=phase, mode=self.mode.value, at=self.clock()
        )
        env = self.signer.sign(kind, body)
        self.log.record("report_signed", kind=kind, phase=phase, seq=env.seq)
        return env

    def _asu_report(self, phase: str) -> Envelope:
        """The box's signed count: all zeros at opening, the final count at close."""
        body = self.box.report_body(phase=phase, mode=self.mode.value)
        if phase == "final":
            voted = reports.identification_counts(self.store)["voted"]
            body["voters_identified"] = voted
            body["problems"] = self.box.consistency_problems() + [
                f"{t.contest_id}: {t.ballots} ballots counted but {voted} voters identified"
                for t in self.box.tallies().values()
                if t.ballots > voted
            ]
        env = self.signer.sign(reports.ASU_REPORT, body)
        self.log.record("report_signed", kind=reports.ASU_REPORT, phase=phase, seq=env.seq)
        return env

    def _utc(self) -> str:
        return self.clock().astimezone(dt.UTC).isoformat(timespec="seconds")

    def close(self) -> None:
        self.store.close()


def _load_bundle(store: Store, bundle: VerifiedBundle, chair_hash: str, mode: Mode) -> None:
    """Copy the roll and templates into the database in one transaction."""
    templates = np.load(bundle.file(B.TEMPLATES_FILE), allow_pickle=False)
    hashes = json.loads(bundle.file(B.TEMPLATES_META_FILE).read_text())["hashes"]
    if len(hashes) != len(templates):
        raise ApplianceError("the bundle's templates and their index differ in length")
    row_of = {h: i for i, h in enumerate(hashes)}
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO templates (idx, encoding) VALUES (?, ?)",
            ((i, np.asarray(t, dtype="<f4").tobytes()) for i, t in enumerate(templates)),
        )
        voters = []
        with bundle.file(B.ROLL_FILE).open("rb") as f:
            for line in f:
                v = json.loads(line)
                voters.append(
                    (
                        v["pin"],
                        v["last_name"],
                        v["first_name"],
                        v.get("patronymic") or "",
                        v["birth_date"],
                        v["gender"],
                        v["document_no"],
                        int(bool(v["home_vote"])),
                        v["biometrics"],
                        v.get("no_biometrics_reason"),
                        row_of.get(v["template"]) if v.get("template") else None,
                    )
                )
        tx.executemany(
            "INSERT INTO voters (pin, last_name, first_name, patronymic, birth_date, gender, "
            "document_no, home_vote, biometrics, no_bio_reason, template) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            voters,
        )
        for key, value in (
            ("election_hash", bundle.definition.election_hash),
            ("election_id", bundle.definition.id),
            ("station_id", bundle.station.id),
            ("device_id", bundle.device_id),
            ("state", State.SETUP.value),
            ("mode", mode.value),
            ("chair_code", chair_hash),
        ):
            store.set_meta(key, value)


def _check_same(store: Store, bundle: VerifiedBundle) -> None:
    for key, value in (
        ("election_hash", bundle.definition.election_hash),
        ("station_id", bundle.station.id),
        ("device_id", bundle.device_id),
    ):
        if key == "device_id" and value in _replaced(store):
            raise ApplianceError(
                f"device {value} was replaced: this station's storage is now device "
                f"{store.meta(key)}'s, and a replaced device never signs for it again"
            )
        if key == "device_id" and store.meta(key) != value:
            raise ApplianceError(
                f"the database in {store.path.parent} belongs to another device "
                f"({store.meta(key)}); use this bundle's own data directory, or, if this "
                "device is a spare replacing that one, take its storage over first "
                "(`shailoo station take-over`)"
            )
        if store.meta(key) != value:
            raise ApplianceError(
                f"the database in {store.path.parent} belongs to another {key.split('_')[0]} "
                f"({store.meta(key)}); use this bundle's own data directory"
            )


def _check_takeover(store: Store, bundle: VerifiedBundle, chair_code: str) -> str:
    """Whether the spare of `bundle` may take over this storage; the device it replaces."""
    held, election = store.meta("device_id"), store.meta("election_hash")
    if election is None or held is None:
        raise ApplianceError(
            f"the database in {store.path.parent} holds no station that was set up: "
            "there is nothing to take over"
        )
    if election != bundle.definition.election_hash:
        raise ApplianceError(
            f"this spare is for election {bundle.definition.id} "
            f"({bundle.definition.election_hash[:12]}…), the storage is of another election "
            f"({election[:12]}…): ask the CEC for a spare of this election"
        )
    if store.meta("station_id") != bundle.station.id:
        raise ApplianceError(
            f"this spare is for station {bundle.station.number} ({bundle.station.id}); the "
            f"storage is station {store.meta('station_id')}'s: a spare takes over only the "
            "station it was issued for"
        )
    if held == bundle.device_id:
        raise ApplianceError(
            f"device {held} already holds this storage: it is not a spare (start it with "
            "`shailoo station run`)"
        )
    if bundle.device_id in _replaced(store):
        raise ApplianceError(
            f"device {bundle.device_id} was replaced on this station before: a replaced "
            "device never signs for it again"
        )
    row = store.one("SELECT COUNT(*) AS n FROM voters")
    voters = 0 if row is None else int(row["n"])
    if voters != bundle.manifest.voters:
        raise ApplianceError(
            f"the spare's bundle holds {bundle.manifest.voters} voters, this storage "
            f"{voters}: not the same roll"
        )
    stored = store.meta("chair_code")
    if stored is None or not chair_code_matches(stored, chair_code):
        raise ApplianceError("the chair's code is wrong: the storage was not taken over")
    return held


def _replaced(store: Store) -> list[str]:
    """Devices a spare took this storage over from, oldest first (from the event log)."""
    rows = store.query("SELECT detail FROM events WHERE name = 'device_taken_over' ORDER BY seq")
    return [str(json.loads(r["detail"])["from_device"]) for r in rows]
