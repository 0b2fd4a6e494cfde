"""Signs the station's messages with the device key, each chained to the previous one.

A message is signed and stored in the same transaction as the state change it
reports, so after any crash the station holds either both or neither; and a
message once stored is never signed again with other contents: the uplink
resends the stored bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from station.store import Store

Clock = Callable[[], dt.datetime]


class Signer:
    def __init__(
        self,
        store: Store,
        key: Ed25519PrivateKey,
        *,
        election_hash: str,
        station_id: str,
        device_id: str,
        clock: Clock,
    ) -> None:
        self._store = store
        self._key = key
        self.election_hash = election_hash
        self.station_id = station_id
        self.device_id = device_id
        self._clock = clock

    def sign(self, kind: str, body: dict[str, Any]) -> Envelope:
        """Sign and store the next message (joins the caller's transaction)."""
        with self._store.transaction() as tx:
            last = tx.execute("SELECT seq, hash FROM messages ORDER BY seq DESC LIMIT 1").fetchone()
            seq = 0 if last is None else last["seq"] + 1
            prev = GENESIS_PREV if last is None else last["hash"]
            env = sign_envelope(
                self._key,
                kind=kind,
                election=self.election_hash,
                station=self.station_id,
                device=self.device_id,
                seq=seq,
                prev=prev,
                time=format_time(self._clock()),
                body=body,
            )
            tx.execute(
                "INSERT INTO messages (seq, kind, hash, body) VALUES (?, ?, ?, ?)",
                (seq, kind, env.hash, env.to_bytes()),
            )
        return env

    def last(self, kind: str) -> Envelope | None:
        """The newest message of `kind`, if any."""
        row = self._store.one(
            "SELECT body FROM messages WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)
        )
        return None if row is None else Envelope.from_bytes(row["body"])

    def last_time(self, kind: str) -> dt.datetime | None:
        """When the newest message of `kind` was signed: asked on every timer tick (is a
        heartbeat due?), so read in SQL rather than by parsing the whole envelope."""
        row = self._store.one(
            "SELECT json_extract(CAST(body AS TEXT), '$.time') AS t FROM messages "
            "WHERE kind = ? ORDER BY seq DESC LIMIT 1",
            (kind,),
        )
        return None if row is None else dt.datetime.fromisoformat(row["t"])

    def messages(self, kind: str | None = None) -> list[Envelope]:
        sql = "SELECT body FROM messages"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        return [
            Envelope.from_bytes(r["body"]) for r in self._store.query(sql + " ORDER BY seq", params)
        ]
