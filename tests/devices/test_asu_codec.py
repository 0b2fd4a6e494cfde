"""The ASU message codec: exact bytes, round trips, and invalid payloads as values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.asu import (
    MAX_CHUNK_DATA,
    AcceptMsg,
    AsuMessage,
    BoxState,
    ClearPathMsg,
    DisableMsg,
    EnableMsg,
    ImageChunkMsg,
    ImageDoneMsg,
    ImageFormat,
    MsgType,
    PayloadError,
    ResendChunkMsg,
    ReturnMsg,
    Sensor,
    SensorMsg,
    SheetDroppedMsg,
    SheetInsertedMsg,
    SheetReturnedMsg,
    StatusMsg,
    StatusRequestMsg,
    chunk_image,
    decode_message,
    encode_message,
    image_crc32,
)
from devices.framing import Frame, FrameParser

STATUS = StatusMsg(
    BoxState.AWAITING_DECISION, True, True, False, False, False, 3, 2, 1042, "ASU 1.0", "KG-7"
)
ALL: list[AsuMessage] = [
    SheetInsertedMsg(1, 9000, 3, ImageFormat.PNG, 0xDEADBEEF),
    ImageChunkMsg(1, 2, b"\xa5" * 100),
    ImageChunkMsg(7, 0, bytes(MAX_CHUNK_DATA)),
    ImageDoneMsg(1),
    SheetDroppedMsg(1, 1042),
    SheetReturnedMsg(4),
    SensorMsg(Sensor.JAM, 4),
    SensorMsg(Sensor.COVER_OPEN),
    STATUS,
    StatusRequestMsg(),
    ResendChunkMsg(1, 2),
    AcceptMsg(1),
    ReturnMsg(1),
    ClearPathMsg(),
    EnableMsg(),
    DisableMsg(),
]


@pytest.mark.parametrize("msg", ALL, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_a_frame_on_the_wire(msg: AsuMessage) -> None:
    (frame,) = FrameParser().feed(encode_message(msg).encode())
    assert isinstance(frame, Frame)
    assert decode_message(frame) == msg


def test_box_to_host_and_host_to_box_types_are_apart() -> None:
    assert all(t < 0x80 or t >= 0x80 for t in MsgType)
    assert {t for t in MsgType if t < 0x80} == {
        MsgType.SHEET_INSERTED,
        MsgType.IMAGE_CHUNK,
        MsgType.IMAGE_DONE,
        MsgType.SHEET_DROPPED,
        MsgType.SHEET_RETURNED,
        MsgType.SENSOR,
        MsgType.STATUS,
    }


def test_accept_and_sheet_dropped_have_the_documented_bytes() -> None:
    assert encode_message(AcceptMsg(1)).encode().hex(" ") == "a5 00 04 83 00 00 00 01 2b 4c"
    wire = encode_message(SheetDroppedMsg(1, 1042)).encode()
    assert wire[:4].hex(" ") == "a5 00 08 04" and wire[4:12].hex() == "0000000100000412"


def test_a_whole_image_chunked_and_reassembled_matches_its_crc32() -> None:
    image = bytes(range(256)) * 40
    chunks = chunk_image(image, 4000)
    assert [len(c) for c in chunks] == [4000, 4000, 2240]
    assert b"".join(chunks) == image
    assert image_crc32(b"123456789") == 0xCBF43926  # the standard CRC-32 check value
    assert chunk_image(b"") == [b""]
    with pytest.raises(ValueError):
        chunk_image(image, MAX_CHUNK_DATA + 1)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (Frame(MsgType.ACCEPT, b"\x00\x00\x01"), "bad_length"),
        (Frame(MsgType.ACCEPT, b"\x00\x00\x00\x00"), "bad_sheet_id"),
        (Frame(MsgType.SENSOR, b"\x09\x00\x00\x00\x01"), "bad_value"),
        (Frame(MsgType.STATUS_REQUEST, b"x"), "unexpected_payload"),
        (Frame(0x42, b""), "unknown_type"),
        (Frame(MsgType.IMAGE_CHUNK, b"\x00\x00\x00\x01\xff"), "bad_length"),
        (Frame(MsgType.SHEET_INSERTED, b"\x00\x00\x00\x01" + b"\x00" * 11), "bad_value"),
        (Frame(MsgType.SHEET_DROPPED, b"\x00\x00\x00\x01\x00\x00\x00\x00"), "bad_value"),
    ],
)
def test_invalid_payloads_come_back_as_errors(frame: Frame, reason: str) -> None:
    got = decode_message(frame)
    assert isinstance(got, PayloadError) and got.reason == reason, got


def test_a_status_whose_paper_flag_disagrees_with_the_sheet_in_path_is_refused() -> None:
    payload = bytearray(encode_message(STATUS).payload)
    payload[1] &= ~0x02  # clear paper-in-path, sheet 3 still named
    got = decode_message(Frame(MsgType.STATUS, bytes(payload)))
    assert isinstance(got, PayloadError) and got.reason == "bad_value"
    cut = decode_message(Frame(MsgType.STATUS, encode_message(STATUS).payload[:-2]))
    assert isinstance(cut, PayloadError) and cut.reason == "bad_length"


def test_values_the_wire_cannot_carry_are_refused_when_encoding() -> None:
    with pytest.raises(ValueError):
        encode_message(AcceptMsg(0))
    with pytest.raises(ValueError):
        encode_message(ImageChunkMsg(1, 0, bytes(MAX_CHUNK_DATA + 1)))
    with pytest.raises(ValueError):
        encode_message(
            StatusMsg(BoxState.READY, False, False, False, False, False, 0, 0, 0, "", "x")
        )


@given(st.sampled_from(list(MsgType) + [0x00, 0x7F, 0xFF]), st.binary(max_size=64))
def test_decoding_never_raises_on_any_payload(msg_type: int, payload: bytes) -> None:
    got = decode_message(Frame(int(msg_type), payload))
    assert isinstance(got, PayloadError) or encode_message(got).payload == payload
