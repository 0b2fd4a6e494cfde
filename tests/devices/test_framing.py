"""The generic serial frame: CRC vectors, encoding, and a parser that survives a noisy line."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.framing import (
    FRAME_OVERHEAD,
    START_BYTE,
    Frame,
    FrameFault,
    FrameParser,
    crc16_ccitt_false,
    encode_frame,
)

START = bytes([START_BYTE])


def frames_of(items: list[Frame | FrameFault]) -> list[Frame]:
    return [i for i in items if isinstance(i, Frame)]


def faults_of(items: list[Frame | FrameFault]) -> list[FrameFault]:
    return [i for i in items if isinstance(i, FrameFault)]


# --- CRC ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0x29B1),  # the catalogue check value of CRC-16/CCITT-FALSE
        (b"", 0xFFFF),
        (b"A", 0xB915),
        (bytes(range(256)), binascii.crc_hqx(bytes(range(256)), 0xFFFF)),
    ],
)
def test_crc16_ccitt_false_matches_known_vectors(data: bytes, crc: int) -> None:
    assert crc16_ccitt_false(data) == crc


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc_agrees_with_an_independent_implementation_and_runs_incrementally(
    a: bytes, b: bytes
) -> None:
    assert crc16_ccitt_false(a + b) == binascii.crc_hqx(a + b, 0xFFFF)
    assert crc16_ccitt_false(b, crc16_ccitt_false(a)) == crc16_ccitt_false(a + b)


# --- encoding -------------------------------------------------------------------


def test_frame_bytes_are_start_length_type_payload_crc() -> None:
    assert encode_frame(0x81).hex(" ") == "a5 00 00 81 4d 35"
    assert encode_frame(0x01, b"hi") == bytes.fromhex("a5 0002 01 6869 b458")
    assert Frame(0x01, b"hi").encode() == encode_frame(0x01, b"hi")


@pytest.mark.parametrize(("msg_type", "payload"), [(-1, b""), (256, b""), (1, b"x" * 65536)])
def test_encoding_refuses_values_the_frame_cannot_carry(msg_type: int, payload: bytes) -> None:
    with pytest.raises(ValueError):
        encode_frame(msg_type, payload)


# --- parser: specific situations --------------------------------------------------


def test_frames_back_to_back_in_one_read_are_all_returned_in_order() -> None:
    wire = encode_frame(1, b"a") + encode_frame(2, b"") + encode_frame(3, b"ccc")
    assert FrameParser().feed(wire) == [Frame(1, b"a"), Frame(2, b""), Frame(3, b"ccc")]


def test_start_byte_values_inside_a_payload_do_not_break_the_frame() -> None:
    payload = START * 20 + bytes([0, 5]) + START
    assert FrameParser().feed(encode_frame(7, payload)) == [Frame(7, payload)]


def test_garbage_before_a_frame_is_reported_once_with_its_size() -> None:
    out = FrameParser().feed(b"\x00\xffnoise" + encode_frame(1, b"x"))
    assert out == [
        FrameFault("garbage", "skipped 7 bytes outside any frame", 7),
        Frame(1, b"x"),
    ]


def test_crc_error_is_reported_once_and_the_next_frame_is_recovered() -> None:
    bad = bytearray(encode_frame(1, b"hello"))
    bad[6] ^= 0x01
    out = FrameParser().feed(bytes(bad) + encode_frame(2, b"ok"))
    assert [f.kind for f in faults_of(out)] == ["crc"]  # the rest of the bad frame is not "garbage"
    assert frames_of(out) == [Frame(2, b"ok")]


def test_a_damaged_frame_with_start_bytes_inside_gives_exactly_one_fault() -> None:
    # Inside: a false start with an impossible length, and one with a plausible length.
    payload = b"abc" + START + b"\xff\xff\x01" + START + b"\x00\x02\x01zz\x00\x00" + b"tail"
    bad = bytearray(encode_frame(1, payload))
    bad[5] ^= 0x80
    out = FrameParser(max_payload=64).feed(bytes(bad) + encode_frame(2, b"ok"))
    assert [f.kind for f in faults_of(out)] == ["crc"]
    assert frames_of(out) == [Frame(2, b"ok")]


def test_false_start_in_noise_does_not_swallow_the_frame_behind_it() -> None:
    # A5 00 03 claims a 3-byte payload; the 9-byte candidate ends inside the real frame.
    out = FrameParser().feed(START + b"\x00\x03" + encode_frame(4, b"card"))
    assert frames_of(out) == [Frame(4, b"card")]
    assert faults_of(out)[0].kind == "crc"


def test_false_start_with_a_long_length_waits_then_flush_recovers_the_frame_behind_it() -> None:
    p = FrameParser()
    assert p.feed(START + b"\x00\xc8" + encode_frame(4, b"card")) == []  # 200 bytes expected
    out = p.flush()
    assert out[0].kind == "truncated"  # type: ignore[union-attr]
    assert frames_of(out) == [Frame(4, b"card")]
    assert p.buffered == 0


def test_impossible_length_is_reported_and_parsing_resumes() -> None:
    p = FrameParser(max_payload=16)
    out = p.feed(START + b"\x00\x11" + encode_frame(1, b"x" * 16))
    assert [type(i).__name__ for i in out] == ["FrameFault", "FrameFault", "Frame"]
    assert faults_of(out)[0].kind == "length"
    assert frames_of(out) == [Frame(1, b"x" * 16)]  # exactly the maximum is accepted


def test_half_frame_is_held_until_the_rest_arrives() -> None:
    wire = encode_frame(3, b"abcdef")
    p = FrameParser()
    assert p.feed(wire[:5]) == []
    assert p.buffered == 5
    assert p.feed(wire[5:]) == [Frame(3, b"abcdef")]
    assert p.buffered == 0


def test_half_frame_followed_by_silence_is_flushed_as_truncated() -> None:
    p = FrameParser()
    p.feed(encode_frame(3, b"abcdef")[:6])
    out = p.flush()
    assert [(f.kind, f.size) for f in faults_of(out)] == [("truncated", 6)]
    assert frames_of(out) == [] and p.buffered == 0
    assert p.flush() == []


def test_reset_forgets_a_partial_frame_silently() -> None:
    p = FrameParser()
    p.feed(encode_frame(3, b"abcdef")[:6])
    p.reset()
    assert p.buffered == 0
    assert p.feed(encode_frame(1)) == [Frame(1, b"")]


# --- parser: fuzzing -------------------------------------------------------------

frames = st.builds(Frame, st.integers(0, 255), st.binary(max_size=80))
no_start_garbage = st.binary(max_size=40).map(lambda b: b.replace(START, b""))


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@settings(max_examples=300)
@given(
    st.binary(max_size=600),
    st.lists(st.integers(0, 10_000), max_size=8),
    st.sampled_from([0, 8, 64, 4096]),
)
def test_arbitrary_byte_soup_never_raises_and_memory_stays_bounded(
    soup: bytes, cuts: list[int], max_payload: int
) -> None:
    p = FrameParser(max_payload=max_payload)
    for piece in chunks(soup, cuts):
        for item in p.feed(piece):
            assert isinstance(item, Frame | FrameFault)
        assert p.buffered < FRAME_OVERHEAD + max_payload
    p.flush()
    assert p.buffered == 0


@given(
    st.lists(st.tuples(no_start_garbage, frames), max_size=6),
    no_start_garbage,
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_frames_in_garbage_without_start_bytes_are_all_recovered_in_order(
    parts: list[tuple[bytes, Frame]], tail: bytes, cuts: list[int]
) -> None:
    wire = b"".join(g + f.encode() for g, f in parts) + tail
    p = FrameParser()
    out: list[Frame | FrameFault] = []
    for piece in chunks(wire, cuts):
        out += p.feed(piece)
    out += p.flush()
    assert frames_of(out) == [f for _, f in parts]
    assert {f.kind for f in faults_of(out)} <= {"garbage"}


@given(frames)
def test_a_frame_split_at_every_cut_point_is_recovered(frame: Frame) -> None:
    wire = frame.encode()
    for cut in range(len(wire) + 1):
        p = FrameParser()
        assert p.feed(wire[:cut]) + p.feed(wire[cut:]) == [frame]
        assert p.buffered == 0


@settings(max_examples=300)
@given(frames, st.data())
def test_any_single_flipped_bit_is_detected(frame: Frame, data: st.DataObject) -> None:
    wire = bytearray(frame.encode())
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    p = FrameParser()
    out = p.feed(bytes(wire)) + p.flush()
    assert frame not in frames_of(out)
    assert faults_of(out)
    if bit // 8 >= 3:  # type, payload or CRC: inside the CRC, caught by it at once
        assert out[0] == FrameFault("crc", out[0].detail, len(wire))  # type: ignore[union-attr]
