"""A simulated ID-card and biometric combo reader on a real pseudo-terminal.

The pty, its stable symlink (e.g. /run/shailoo/ttyREADER -> /dev/pts/7),
`unplug()` / `plug()` and the device thread come from `firmware_sim.pty_device`,
shared with the ballot box simulator.  It speaks `devices.combo_reader` frames
and answers the host's requests.  Tests drive it through the methods; demos run it as a process:

    python -m firmware_sim.combo_reader /tmp/ttyREADER --cards cards.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices.combo_reader import (
    COMBO_MAX_PAYLOAD,
    Card,
    CardInsertedMsg,
    CardRemovedMsg,
    CardRequestMsg,
    ComboMessage,
    ErrorCode,
    ErrorMsg,
    IndicateMsg,
    PayloadError,
    ReaderState,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
)
from devices.framing import Frame
from election.pin import mask_pin
from firmware_sim.pty_device import PtyDevice

__all__ = ["ComboReaderSim", "card_from_json", "main"]

log = logging.getLogger(__name__)


class ComboReaderSim(PtyDevice):
    """One simulated reader.  All pty file descriptors belong to its own thread.

    Public methods queue a command to that thread and wait until it has run,
    so "unplug() returned" means the device is gone (see `PtyDevice`).
    """

    kind = "combo-reader"

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        *,
        firmware_version: str = "CR-SIM 1.0.0",
        serial_number: str = "SIM-000001",
    ) -> None:
        super().__init__(link_path, max_payload=COMBO_MAX_PAYLOAD)
        self.firmware_version = firmware_version
        self.serial_number = serial_number
        self._state = ReaderState.OK
        self._state_detail = ""
        self._card: Card | None = None
        self._received: list[ComboMessage] = []

    # --- what a person or a test does to the reader ----------------------

    def insert_card(self, card: Card) -> None:
        """A voter puts a card in: the reader sends CARD_INSERTED."""

        def go() -> None:
            self._card = card
            log.info("sim: card inserted, PIN %s", mask_pin(card.pin))
            self._send(CardInsertedMsg(card))

        self._call(go)

    def remove_card(self) -> None:
        """The card is taken out: the reader sends CARD_REMOVED."""

        def go() -> None:
            self._card = None
            self._send(CardRemovedMsg())

        self._call(go)

    def card_error(self, code: ErrorCode, detail: str = "") -> None:
        """A card the reader could not read: the reader sends ERROR."""
        self._call(lambda: self._send(ErrorMsg(code, detail)))

    def set_state(self, state: ReaderState, detail: str = "") -> None:
        """What the next STATUS reports (e.g. a failed biometric sensor)."""

        def go() -> None:
            self._state, self._state_detail = state, detail

        self._call(go)

    @property
    def received(self) -> list[ComboMessage]:
        """Every valid message the host sent, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    # --- the protocol (device thread) ------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        msg = decode_message(frame)
        if isinstance(msg, PayloadError):
            self._count_host_error(f"bad payload from host: {msg.reason}: {msg.detail}")
            return
        with self._lock:
            self._received.append(msg)
        match msg:
            case StatusRequestMsg():
                self._send(
                    StatusMsg(
                        state=self._state,
                        firmware_version=self.firmware_version,
                        serial_number=self.serial_number,
                        card_present=self._card is not None,
                        detail=self._state_detail,
                    )
                )
            case CardRequestMsg():
                self._send(CardInsertedMsg(self._card) if self._card else CardRemovedMsg())
            case IndicateMsg(led=led, beep=beep):
                log.info("sim: LED %s, beep %s", led.name, beep.name)
            case _:
                self._count_host_error(f"host sent a reader-to-host message {type(msg).__name__}")

    def _send(self, msg: ComboMessage) -> None:
        self._write(encode_message(msg).encode())


# --- standalone process -------------------------------------------------------


def card_from_json(obj: dict[str, Any]) -> Card:
    """A card from a script entry: pin, document_number, last_name, first_name,
    patronymic (optional), birth_date (YYYY-MM-DD)."""
    return Card(
        pin=str(obj["pin"]),
        document_number=str(obj["document_number"]),
        last_name=str(obj["last_name"]),
        first_name=str(obj["first_name"]),
        patronymic=str(obj.get("patronymic", "")),
        birth_date=dt.date.fromisoformat(str(obj["birth_date"])),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a reader on LINK, insert each scripted card in turn, then serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="combo-reader-sim", description=main.__doc__)
    ap.add_argument("link", type=Path, help="symlink to create for the device, e.g. /tmp/ttyREADER")
    ap.add_argument("--cards", type=Path, help="JSON list of cards to insert in order")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between cards")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds each card stays inserted")
    ap.add_argument("--serial-number", default="SIM-000001")
    ap.add_argument("--exit-when-done", action="store_true", help="stop after the last card")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    cards: list[Card] = []
    if args.cards is not None:
        try:
            cards = [card_from_json(o) for o in json.loads(args.cards.read_text("utf-8"))]
            for c in cards:
                encode_message(CardInsertedMsg(c))  # refuse a script the reader could not send
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"combo-reader-sim: bad card script {args.cards}: {e}")
            return 2

    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ComboReaderSim(args.link, serial_number=args.serial_number) as sim:
        print(f"combo reader at {args.link} -> {sim.device_path}", flush=True)
        for card in cards:
            if done.wait(args.interval):
                break
            sim.insert_card(card)
            if done.wait(args.hold):
                break
            sim.remove_card()
        if not args.exit_when_done:
            done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
