"""Combo reader messages: every type round-trips, every invalid payload is an error value."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.combo_reader import (
    Beep,
    Card,
    CardInsertedMsg,
    CardRemovedMsg,
    CardRequestMsg,
    ComboMessage,
    ErrorCode,
    ErrorMsg,
    IndicateMsg,
    Led,
    MsgType,
    PayloadError,
    ReaderState,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    decode_tlv,
    encode_message,
    encode_tlv,
)
from devices.framing import Frame
from tests.devices.samples import card_hasanova, card_tashiev

MESSAGES: list[ComboMessage] = [
    CardInsertedMsg(card_hasanova()),
    CardInsertedMsg(card_tashiev()),
    CardRemovedMsg(),
    StatusMsg(ReaderState.OK, "CR-SIM 1.0.0", "SIM-000001", card_present=False),
    StatusMsg(
        ReaderState.BIOMETRIC_SENSOR_FAULT, "2.4", "KG-77", card_present=True, detail="линза"
    ),
    ErrorMsg(ErrorCode.CARD_UNREADABLE),
    ErrorMsg(ErrorCode.CHIP_AUTH_FAILED, detail="BAC failed"),
    StatusRequestMsg(),
    CardRequestMsg(),
    IndicateMsg(Led.GREEN, Beep.SHORT),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_a_frame(msg: ComboMessage) -> None:
    frame = encode_message(msg)
    assert decode_message(Frame(frame.msg_type, frame.payload)) == msg


def test_reader_to_host_and_host_to_reader_types_are_in_separate_ranges() -> None:
    for t in MsgType:
        host_to_reader = t.name.endswith("REQUEST") or t is MsgType.INDICATE
        assert (t >= 0x80) == host_to_reader


def test_card_payload_is_tlv_with_utf8_names() -> None:
    payload = encode_message(CardInsertedMsg(card_hasanova())).payload
    assert payload.startswith(b"\x01\x0e11503198500123\x02\x09ID1234567\x03\x10")
    assert "Хасанова".encode() in payload
    assert payload.endswith(b"\x06\x0819850315")


def test_card_repr_masks_the_pin_and_leaves_names_out() -> None:
    text = repr(CardInsertedMsg(card_hasanova()))
    assert "11503198500123" not in text and "1150********23" in text
    assert "Хасанова" not in text


def card_payload(**override: bytes | None) -> bytes:
    fields = {
        "pin": (0x01, b"11503198500123"),
        "doc": (0x02, b"ID1234567"),
        "last": (0x03, "Хасанова".encode()),
        "first": (0x04, "Айгүл".encode()),
        "patronymic": (0x05, "Өмүрбековна".encode()),
        "birth": (0x06, b"19850315"),
    }
    items = []
    for name, (tag, value) in fields.items():
        v = override.get(name, value)
        if v is not None:
            items.append((tag, v))
    return encode_tlv(items)


def reason(msg_type: int, payload: bytes) -> str:
    out = decode_message(Frame(msg_type, payload))
    assert isinstance(out, PayloadError), out
    assert out.msg_type == msg_type
    return out.reason


def test_the_card_payload_helper_builds_a_valid_card() -> None:
    out = decode_message(Frame(MsgType.CARD_INSERTED, card_payload()))
    assert out == CardInsertedMsg(card_hasanova())


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"pin": b"1150319850012"}, "bad_pin"),  # 13 digits
        ({"pin": b"115031985001234"}, "bad_pin"),  # 15 digits
        ({"pin": b"1150319850012X"}, "bad_pin"),
        ({"pin": "1150319850012٣".encode()}, "bad_pin"),  # an Arabic-Indic digit
        ({"pin": None}, "missing_field"),
        ({"doc": None}, "missing_field"),
        ({"doc": b"id1234567"}, "bad_document"),
        ({"doc": b"ID 12345"}, "bad_document"),
        ({"doc": "ІД1234567".encode()}, "bad_document"),
        ({"last": b"\xd0"}, "bad_utf8"),  # cut in the middle of a Cyrillic letter
        ({"first": b"\xff\xfe"}, "bad_utf8"),
        ({"last": b""}, "bad_text"),
        ({"first": None}, "missing_field"),
        ({"last": "Хасанова\n".encode()}, "bad_text"),
        ({"last": " Хасанова".encode()}, "bad_text"),
        ({"patronymic": b""}, "bad_text"),
        ({"birth": b"19850230"}, "bad_date"),
        ({"birth": b"1985-3-1"}, "bad_date"),
        ({"birth": b"850315"}, "bad_date"),
        ({"birth": None}, "missing_field"),
    ],
)
def test_invalid_card_fields_are_a_payload_error(
    override: dict[str, bytes | None], expected: str
) -> None:
    assert reason(MsgType.CARD_INSERTED, card_payload(**override)) == expected


def test_malformed_tlv_is_a_payload_error() -> None:
    good = card_payload()
    assert reason(MsgType.CARD_INSERTED, good + b"\x07") == "bad_tlv"  # cut after the tag
    assert reason(MsgType.CARD_INSERTED, good + b"\x07\x05ab") == "bad_tlv"  # value too short
    assert reason(MsgType.CARD_INSERTED, good[:-1]) == "bad_tlv"
    assert decode_tlv(b"\x01\x00\x02\x01z") == [(1, b""), (2, b"z")]


def test_duplicate_and_unknown_tags_are_errors_but_optional_extensions_are_skipped() -> None:
    good = card_payload()
    assert reason(MsgType.CARD_INSERTED, good + b"\x01\x0e11503198500123") == "duplicate_tag"
    assert reason(MsgType.CARD_INSERTED, good + b"\x07\x01z") == "unknown_tag"
    extended = decode_message(Frame(MsgType.CARD_INSERTED, good + b"\x90\x03new"))
    assert extended == CardInsertedMsg(card_hasanova())


def test_unknown_message_type_is_a_payload_error() -> None:
    assert reason(0x42, b"") == "unknown_type"
    assert reason(0xFF, b"\x01\x00") == "unknown_type"


@pytest.mark.parametrize(
    "msg_type",
    [MsgType.CARD_REMOVED, MsgType.STATUS_REQUEST, MsgType.CARD_REQUEST],
)
def test_messages_without_payload_refuse_one(msg_type: MsgType) -> None:
    assert reason(msg_type, b"\x00") == "unexpected_payload"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x01\x01\x09\x02\x011\x03\x01S\x04\x01\x00", "bad_value"),  # unknown state 9
        (b"\x01\x02\x00\x00\x02\x011\x03\x01S\x04\x01\x00", "bad_value"),  # 2-byte state
        (b"\x01\x01\x00\x02\x011\x03\x01S\x04\x01\x02", "bad_value"),  # card present = 2
        (b"\x01\x01\x00\x02\x00\x03\x01S\x04\x01\x00", "bad_text"),  # empty firmware
        (b"\x01\x01\x00\x02\x02\xd0\x96\x03\x01S\x04\x01\x00", "bad_text"),  # non-ASCII serial
        (b"\x01\x01\x00\x02\x011\x04\x01\x00", "missing_field"),
        (b"\x01\x01\x00\x02\x011\x03\x01S\x04\x01\x00\x05\x01\xff", "bad_utf8"),
    ],
)
def test_invalid_status_payloads_are_errors(payload: bytes, expected: str) -> None:
    assert reason(MsgType.STATUS, payload) == expected


def test_invalid_error_and_indicate_payloads_are_errors() -> None:
    assert reason(MsgType.ERROR, b"") == "missing_field"
    assert reason(MsgType.ERROR, b"\x01\x01\x63") == "bad_value"
    assert reason(MsgType.INDICATE, b"\x01\x01\x01") == "missing_field"
    assert reason(MsgType.INDICATE, b"\x01\x01\x07\x02\x01\x00") == "bad_value"


def test_encoding_an_invalid_card_raises_at_the_sender() -> None:
    bad = Card("123", "ID1", "A", "B", "", dt.date(1990, 1, 1))
    with pytest.raises(ValueError, match="PIN"):
        encode_message(CardInsertedMsg(bad))
    too_long = Card("11503198500123", "ID1", "Я" * 200, "B", "", dt.date(1990, 1, 1))
    with pytest.raises(ValueError, match="longer"):
        encode_message(CardInsertedMsg(too_long))


def test_payload_errors_do_not_quote_field_values() -> None:
    out = decode_message(Frame(MsgType.CARD_INSERTED, card_payload(pin=b"1150319850012")))
    assert isinstance(out, PayloadError)
    assert "1150319850012" not in out.detail


@given(st.integers(0, 255), st.binary(max_size=120))
def test_decoding_any_payload_never_raises_and_what_it_accepts_re_encodes(
    msg_type: int, payload: bytes
) -> None:
    out = decode_message(Frame(msg_type, payload))
    if not isinstance(out, PayloadError):
        assert decode_message(encode_message(out)) == out


@given(st.sampled_from(MESSAGES), st.data())
def test_mutated_valid_payloads_never_raise(msg: ComboMessage, data: st.DataObject) -> None:
    payload = bytearray(encode_message(msg).payload)
    if payload:
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    decode_message(Frame(encode_message(msg).msg_type, bytes(payload)))


DOCUMENTED: dict[str, ComboMessage] = {  # the example hex dumps of docs/protocol-combo-reader.md
    "a5 00 00 81 4d 35": StatusRequestMsg(),
    "a5 00 00 02 ec de": CardRemovedMsg(),
    "a5 00 03 04 01 01 01 3e 13": ErrorMsg(ErrorCode.CARD_UNREADABLE),
    "a5 00 06 83 01 01 01 02 01 01 3f f7": IndicateMsg(Led.GREEN, Beep.SHORT),
    "a5 00 20 03 01 01 00 02 0c 43 52 2d 53 49 4d 20 31 2e 30 2e 30 03 0a 53 49 4d 2d 30"
    " 30 30 30 30 31 04 01 00 15 f3": StatusMsg(
        ReaderState.OK, "CR-SIM 1.0.0", "SIM-000001", card_present=False
    ),
}


@pytest.mark.parametrize("dump", DOCUMENTED)
def test_documented_hex_dumps_match_the_encoder(dump: str) -> None:
    assert encode_message(DOCUMENTED[dump]).encode() == bytes.fromhex(dump)


def test_documented_card_frame_matches_the_encoder() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol-combo-reader.md").read_text()
    block = doc.split("CARD_INSERTED, Хасанова")[1].split("```")[1]
    tokens: list[str] = []
    for line in block.splitlines():
        for word in line.split():
            if word == "|":
                continue
            if not re.fullmatch(r"[0-9a-f]{2}", word):
                break  # the field label after the bytes
            tokens.append(word)
    wire = encode_message(CardInsertedMsg(card_hasanova())).encode()
    assert bytes.fromhex("".join(tokens)) == wire
