"""Generic framed binary serial format, shared by every station device.

    START (0xA5) | LENGTH (2 bytes, big-endian, payload only) | TYPE (1) | PAYLOAD | CRC (2, BE)

CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
XOR) over LENGTH, TYPE and PAYLOAD.  A serial line gives no message boundaries
and may drop, add or flip bytes, so `FrameParser` is incremental and assumes
nothing: it resynchronises on the next start byte after any fault, and after a
failed candidate it rescans from the byte after that candidate's start byte,
because a start-byte value inside a payload or in line noise must not make the
parser swallow a real frame that follows.  Byte-level description with hex
dumps: docs/protocol-combo-reader.md.  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CRC_SIZE",
    "DEFAULT_MAX_PAYLOAD",
    "FRAME_OVERHEAD",
    "HEADER_SIZE",
    "MAX_LENGTH_FIELD",
    "START_BYTE",
    "Frame",
    "FrameFault",
    "FrameFaultKind",
    "FrameParser",
    "crc16_ccitt_false",
    "encode_frame",
]

START_BYTE = 0xA5
HEADER_SIZE = 4  # start, length (2), type
CRC_SIZE = 2
FRAME_OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_LENGTH_FIELD = 0xFFFF
DEFAULT_MAX_PAYLOAD = 4096


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_table()


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of `data` ("123456789" -> 0x29B1); `crc` continues a running value."""
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    """One well-framed message: its type byte and raw payload (not yet decoded)."""

    msg_type: int
    payload: bytes

    def encode(self) -> bytes:
        """The bytes on the wire."""
        return encode_frame(self.msg_type, self.payload)


FrameFaultKind = Literal["garbage", "crc", "length", "truncated"]


@dataclass(frozen=True, slots=True)
class FrameFault:
    """Bytes that did not make a frame, reported so the operator sees a noisy line.

    kind: "garbage" (bytes outside any frame were skipped), "crc" (a candidate
    frame failed its CRC), "length" (a candidate declared a payload longer than
    the maximum), "truncated" (a partial frame was abandoned by `flush`).
    `size` is the number of bytes involved; the bytes themselves are not kept,
    so a damaged card frame cannot leak a PIN into logs through a fault.
    """

    kind: FrameFaultKind
    detail: str
    size: int


def encode_frame(msg_type: int, payload: bytes = b"") -> bytes:
    """Frame `payload` as message `msg_type`; raises ValueError for out-of-range values."""
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"message type must be 0..255, got {msg_type}")
    if len(payload) > MAX_LENGTH_FIELD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_LENGTH_FIELD}")
    body = len(payload).to_bytes(2, "big") + bytes([msg_type]) + bytes(payload)
    return bytes([START_BYTE]) + body + crc16_ccitt_false(body).to_bytes(2, "big")


class FrameParser:
    """Turns a byte stream, fed in arbitrary pieces, into frames and faults, in stream order.

    Never raises on input.  Bytes that cannot start a frame are reported as
    "garbage"; a candidate that fails (CRC, impossible length) is reported and
    scanning resumes at the byte after its start byte, so a real frame hidden
    behind a false start is still found.  One damaged frame gives one fault: the
    bytes of a failed candidate that are then skipped, and false starts among
    them, are not reported again.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_LENGTH_FIELD:
            raise ValueError(f"max_payload must be 0..{MAX_LENGTH_FIELD}, got {max_payload}")
        self.max_payload = max_payload
        self._buf = bytearray()
        self._quiet = 0  # following discarded bytes already covered by a reported fault

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame (0 when idle)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameFault]:
        """Add received bytes; return every frame and fault they complete, in order."""
        self._buf += data
        out: list[Frame | FrameFault] = []
        self._scan(out)
        return out

    def flush(self) -> list[Frame | FrameFault]:
        """The line went quiet: abandon any partial frame as "truncated" and rescan what follows.

        The driver calls this after a named timeout of silence; the bytes after
        the abandoned start byte may still hold a complete frame.
        """
        out: list[Frame | FrameFault] = []
        while self._buf:
            size = len(self._buf)
            out.append(
                FrameFault(
                    "truncated",
                    f"partial frame of {size} bytes abandoned after the line went quiet",
                    size,
                )
            )
            del self._buf[0]
            self._quiet = size - 1
            self._scan(out)
        return out

    def reset(self) -> None:
        """Forget buffered bytes silently (a new connection starts a new stream)."""
        self._buf.clear()
        self._quiet = 0

    def _discard(self, n: int, out: list[Frame | FrameFault]) -> None:
        del self._buf[:n]
        reported = max(0, n - self._quiet)
        self._quiet = max(0, self._quiet - n)
        if reported:
            out.append(
                FrameFault("garbage", f"skipped {reported} bytes outside any frame", reported)
            )

    def _scan(self, out: list[Frame | FrameFault]) -> None:
        buf = self._buf
        while buf:
            start = buf.find(START_BYTE)
            if start < 0:
                self._discard(len(buf), out)
                return
            if start:
                self._discard(start, out)
            if len(buf) < HEADER_SIZE:
                return
            length = int.from_bytes(buf[1:3], "big")
            # A candidate starting inside an already reported bad frame is part of that
            # same fault: it is skipped without a second report.
            inside_reported = self._quiet > 0
            if length > self.max_payload:
                if not inside_reported:
                    out.append(
                        FrameFault(
                            "length",
                            f"declared payload of {length} bytes exceeds the maximum "
                            f"of {self.max_payload}",
                            1,
                        )
                    )
                del buf[0]
                self._quiet = max(0, self._quiet - 1)
                continue
            total = FRAME_OVERHEAD + length
            if len(buf) < total:
                return
            body = bytes(buf[1 : total - CRC_SIZE])
            expected = int.from_bytes(buf[total - CRC_SIZE : total], "big")
            if crc16_ccitt_false(body) != expected:
                if not inside_reported:
                    out.append(
                        FrameFault(
                            "crc",
                            f"CRC mismatch in a {total}-byte frame of type {body[2]:#04x}",
                            total,
                        )
                    )
                del buf[0]
                self._quiet = max(self._quiet - 1, total - 1)
                continue
            out.append(Frame(msg_type=body[2], payload=body[3:]))
            del buf[:total]
            self._quiet = 0
