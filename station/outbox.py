"""The durable outbox: the station's signed messages that the CEC has not yet acknowledged.

It is a view over the `messages` table (station.store), not a copy: the signer
stores every message in the transaction that produced it, so a message is in
the outbox from the moment it exists, through `kill -9` and power loss, until
the CEC's own signed acknowledgement names its sequence number and hash.
Nothing is ever re-signed: a resend is the stored bytes, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from station.store import Store

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Outgoing:
    """One stored message as it goes on the wire."""

    seq: int
    kind: str
    hash: str
    body: bytes


class Outbox:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def pending(self, after_seq: int = -1) -> list[Outgoing]:
        """Unacknowledged messages in signing order (optionally only those after `after_seq`)."""
        rows = self._store.query(
            "SELECT seq, kind, hash, body FROM messages "
            "WHERE acked_at IS NULL AND seq > ? ORDER BY seq",
            (after_seq,),
        )
        return [Outgoing(r["seq"], r["kind"], r["hash"], bytes(r["body"])) for r in rows]

    def pending_count(self) -> int:
        """How many messages still wait for the CEC (what the operator screen shows)."""
        row = self._store.one("SELECT COUNT(*) AS n FROM messages WHERE acked_at IS NULL")
        return 0 if row is None else int(row["n"])

    def is_pending(self, seq: int) -> bool:
        """True while `seq` exists and is unacknowledged (the uplink skips acked resends)."""
        row = self._store.one("SELECT acked_at FROM messages WHERE seq = ?", (seq,))
        return row is not None and row["acked_at"] is None

    def mark_acked(self, seq: int, hash: str) -> bool:
        """Record the CEC's acknowledgement, committed before returning.

        Only if `hash` is the stored message's hash: an ack for other bytes
        with the same sequence number acknowledges nothing. Returns True if this
        call acknowledged the message, False if it was already acknowledged or
        does not match.
        """
        at = self._clock().astimezone(dt.UTC).isoformat()
        with self._store.transaction() as tx:
            cur = tx.execute(
                "UPDATE messages SET acked_at = ? WHERE seq = ? AND hash = ? AND acked_at IS NULL",
                (at, seq, hash),
            )
            return cur.rowcount == 1

    def acked_at(self, seq: int) -> dt.datetime | None:
        """When the CEC's acknowledgement of `seq` was recorded, if it was."""
        row = self._store.one("SELECT acked_at FROM messages WHERE seq = ?", (seq,))
        if row is None or row["acked_at"] is None:
            return None
        return dt.datetime.fromisoformat(row["acked_at"])

    def stored(self, seq: int) -> Outgoing | None:
        """The stored message `seq`, acknowledged or not."""
        r = self._store.one("SELECT seq, kind, hash, body FROM messages WHERE seq = ?", (seq,))
        return None if r is None else Outgoing(r["seq"], r["kind"], r["hash"], bytes(r["body"]))
