"""Real signed station messages without a running station: each provisioned device's own key,
chained exactly as station.signer chains them. For the central server's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crypto import keys
from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from election import bundle as B
from election.tally import ContestTally
from tests.support.provisioned import Provisioned

PREFIX = "shailoo/v1"


class DeviceSigner:
    """Signs messages as station `number`'s provisioned device, seq 0, 1, 2, ..."""

    def __init__(self, p: Provisioned, number: int) -> None:
        bundle = p.bundle(number)
        self.key = keys.load_private_key(
            (bundle / B.SIGNING_KEY_FILE).read_bytes(), p.passphrases()[number]
        )
        station = next(s for s in p.definition.stations if s.number == number)
        self.station = station
        self.station_id = station.id
        self.definition = p.definition
        import json

        self.device_id = json.loads((bundle / B.MANIFEST_FILE).read_bytes())["body"]["device_id"]
        self.seq = 0
        self.prev = GENESIS_PREV
        self.time = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)

    def sign(self, kind: str, body: dict[str, Any], *, advance: bool = True) -> Envelope:
        env = sign_envelope(
            self.key, kind=kind, election=self.definition.election_hash,
            station=self.station_id, device=self.device_id, seq=self.seq, prev=self.prev,
            time=format_time(self.time), body=body,
        )  # fmt: skip
        if advance:
            self.seq += 1
            self.prev = env.hash
        return env

    def topic(self, kind: str) -> str:
        return f"{PREFIX}/station/{self.station_id}/up/{kind}"

    def turnout(self, voted: int, *, mode: str = "live") -> Envelope:
        registered = self.station.registered_voters
        return self.sign("turnout", {"mode": mode, "as_of": format_time(self.time),
                                     "registered": registered, "voted": voted})  # fmt: skip

    def asu_report(
        self, tallies: list[ContestTally], *, phase: str = "final", mode: str = "live",
        voters_identified: int | None = None,
    ) -> Envelope:  # fmt: skip
        body: dict[str, Any] = {
            "phase": phase, "mode": mode, "sheets": max((t.ballots for t in tallies), default=0),
            "deferred_sheets": 0, "returned": {},
            "tallies": [t.to_obj() for t in tallies], "deferred_tallies": [],
        }  # fmt: skip
        if phase == "final":
            body["voters_identified"] = (
                voters_identified if voters_identified is not None else body["sheets"]
            )
            body["problems"] = []
        return self.sign("asu_report", body)


def station_client(p: Provisioned, number: int, port: int) -> Any:
    """A raw MQTT v5 client logged in with station `number`'s own TLS certificate."""
    import ssl

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    bundle = p.bundle(number)
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cadata=(bundle / B.ROOT_CERT_FILE).read_text()
    )
    passphrase = p.passphrases()[number]
    ctx.load_cert_chain(str(bundle / B.TLS_CERT_FILE), str(bundle / B.TLS_KEY_FILE), passphrase)
    station = next(s for s in p.definition.stations if s.number == number)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=station.id, protocol=mqtt.MQTTv5)
    c.tls_set_context(ctx)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c
