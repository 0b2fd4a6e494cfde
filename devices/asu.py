"""Message set of the automatic ballot box (ASU), carried in `devices.framing` frames.

Box -> host types are 0x01-0x7F, host -> box 0x80-0xFF, as for the combo
reader.  Payloads are fixed big-endian layouts, not TLV: an image chunk is
~4 KB and TLV values stop at 255 bytes, and every other message is a few
integers whose size is known, so a length mismatch is itself an error.  Each
image chunk travels in its own frame so the frame CRC protects that chunk and
the host can ask for just that chunk again; SHEET_INSERTED also carries a
CRC-32 of the whole image, which catches a chunk put in the wrong place or the
rare damage a CRC-16 misses.  Decoding never raises: an invalid payload comes
back as a `PayloadError`.  Byte layouts: docs/protocol-asu.md.  Pure: no I/O.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from devices.framing import DEFAULT_MAX_PAYLOAD, Frame

__all__ = [
    "ASU_MAX_PAYLOAD",
    "CHUNK_HEADER_SIZE",
    "MAX_CHUNK_DATA",
    "AcceptMsg",
    "AsuMessage",
    "BoxState",
    "ClearPathMsg",
    "DisableMsg",
    "EnableMsg",
    "ImageChunkMsg",
    "ImageDoneMsg",
    "ImageFormat",
    "MsgType",
    "PayloadError",
    "ResendChunkMsg",
    "ReturnMsg",
    "Sensor",
    "SensorMsg",
    "SheetDroppedMsg",
    "SheetInsertedMsg",
    "SheetReturnedMsg",
    "StatusMsg",
    "StatusRequestMsg",
    "chunk_image",
    "decode_message",
    "encode_message",
    "image_crc32",
]

ASU_MAX_PAYLOAD = DEFAULT_MAX_PAYLOAD  # 4096: a chunk frame fills it
CHUNK_HEADER_SIZE = 6  # sheet id (4) + chunk index (2)
MAX_CHUNK_DATA = ASU_MAX_PAYLOAD - CHUNK_HEADER_SIZE
MAX_ASCII_FIELD = 32
MAX_U32 = 0xFFFF_FFFF


class MsgType(IntEnum):
    SHEET_INSERTED = 0x01
    IMAGE_CHUNK = 0x02
    IMAGE_DONE = 0x03
    SHEET_DROPPED = 0x04
    SHEET_RETURNED = 0x05
    SENSOR = 0x06
    STATUS = 0x07
    STATUS_REQUEST = 0x81
    RESEND_CHUNK = 0x82
    ACCEPT = 0x83
    RETURN = 0x84
    CLEAR_PATH = 0x85
    ENABLE = 0x86
    DISABLE = 0x87


class ImageFormat(IntEnum):
    """How the scan is encoded.  The simulator and the reference box send PNG (lossless)."""

    PNG = 1
    JPEG = 2


class Sensor(IntEnum):
    JAM = 1  # a sheet stuck in the path; CLEAR_PATH tries to give it back
    DOUBLE_FEED = 2  # two sheets entered together; CLEAR_PATH gives both back
    COVER_OPEN = 3  # the box stops moving paper until the cover is closed
    COVER_CLOSED = 4
    BOX_FULL = 5  # no more drops until the container is emptied
    BOX_EMPTIED = 6
    PAPER_IN_PATH = 7  # at power-up: a sheet was left in the path


class BoxState(IntEnum):
    """What the box is doing, in STATUS.  Flags say which sensors are active."""

    READY = 0  # nothing moving; takes a sheet if feeding is enabled
    SCANNING = 1
    AWAITING_DECISION = 2  # sheet scanned, held in the path until ACCEPT or RETURN
    DROPPING = 3  # motion in progress: poll again
    RETURNING = 4  # motion in progress: poll again
    JAMMED = 5
    COVER_OPEN = 6
    BOX_FULL = 7


# STATUS flag bits
FLAG_FEEDING = 0x01
FLAG_PAPER_IN_PATH = 0x02
FLAG_JAMMED = 0x04
FLAG_COVER_OPEN = 0x08
FLAG_BOX_FULL = 0x10
_KNOWN_FLAGS = FLAG_FEEDING | FLAG_PAPER_IN_PATH | FLAG_JAMMED | FLAG_COVER_OPEN | FLAG_BOX_FULL


@dataclass(frozen=True, slots=True)
class SheetInsertedMsg:
    """A sheet entered and is being scanned; `sheet_id` counts sheets since power-up from 1."""

    sheet_id: int
    image_size: int
    chunk_count: int
    image_format: ImageFormat
    image_crc32: int


@dataclass(frozen=True, slots=True)
class ImageChunkMsg:
    sheet_id: int
    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageDoneMsg:
    """Every chunk was sent once; the sheet waits in the path for ACCEPT or RETURN."""

    sheet_id: int


@dataclass(frozen=True, slots=True)
class SheetDroppedMsg:
    """The drop sensor saw the sheet fall; `drops_total` is the box's non-volatile drop count."""

    sheet_id: int
    drops_total: int


@dataclass(frozen=True, slots=True)
class SheetReturnedMsg:
    """The sheet (both, after a double feed) left the path back to the voter."""

    sheet_id: int


@dataclass(frozen=True, slots=True)
class SensorMsg:
    """A sensor event; `sheet_id` is the sheet concerned, 0 when none."""

    sensor: Sensor
    sheet_id: int = 0


@dataclass(frozen=True, slots=True)
class StatusMsg:
    """The box's state.  `drops_total` survives power loss (written by the drop sensor
    before SHEET_DROPPED is sent); `drops_since_power_up` does not."""

    state: BoxState
    feeding_enabled: bool
    paper_in_path: bool
    jammed: bool
    cover_open: bool
    box_full: bool
    sheet_in_path: int  # 0 when none
    drops_since_power_up: int
    drops_total: int
    firmware_version: str
    serial_number: str


@dataclass(frozen=True, slots=True)
class StatusRequestMsg:
    pass


@dataclass(frozen=True, slots=True)
class ResendChunkMsg:
    sheet_id: int
    index: int


@dataclass(frozen=True, slots=True)
class AcceptMsg:
    """Drop the sheet into the box.  Acted on only if that sheet awaits a decision and the
    box is ready; otherwise ignored, never queued for later."""

    sheet_id: int


@dataclass(frozen=True, slots=True)
class ReturnMsg:
    """Give the sheet back to the voter."""

    sheet_id: int


@dataclass(frozen=True, slots=True)
class ClearPathMsg:
    """Give back whatever is in the path (after a jam, a double feed, at power-up)."""


@dataclass(frozen=True, slots=True)
class EnableMsg:
    """Take sheets (polls open).  The box powers up disabled."""


@dataclass(frozen=True, slots=True)
class DisableMsg:
    """Take no more sheets (polls closed, or while the host checks the sensors)."""


AsuMessage = (
    SheetInsertedMsg
    | ImageChunkMsg
    | ImageDoneMsg
    | SheetDroppedMsg
    | SheetReturnedMsg
    | SensorMsg
    | StatusMsg
    | StatusRequestMsg
    | ResendChunkMsg
    | AcceptMsg
    | ReturnMsg
    | ClearPathMsg
    | EnableMsg
    | DisableMsg
)


@dataclass(frozen=True, slots=True)
class PayloadError:
    """A well-framed message whose payload is not valid; `reason` is a short machine code."""

    msg_type: int
    reason: str
    detail: str


class _Invalid(Exception):
    """Internal: carries a reason out of nested checks; never leaves this module."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- helpers ------------------------------------------------------------------


def image_crc32(image: bytes) -> int:
    """CRC-32 (zlib) of a whole image, as carried in SHEET_INSERTED."""
    return zlib.crc32(image) & MAX_U32


def chunk_image(image: bytes, chunk_size: int = MAX_CHUNK_DATA) -> list[bytes]:
    """Split an image into chunks of at most `chunk_size` bytes (one chunk for b"")."""
    if not 1 <= chunk_size <= MAX_CHUNK_DATA:
        raise ValueError(f"chunk size must be 1..{MAX_CHUNK_DATA}, got {chunk_size}")
    if not image:
        return [b""]
    return [image[i : i + chunk_size] for i in range(0, len(image), chunk_size)]


def _sheet_id(value: int) -> None:
    if not 1 <= value <= MAX_U32:
        raise _Invalid("bad_sheet_id", f"sheet id must be 1..{MAX_U32}, got {value}")


def _u32(value: int, name: str) -> None:
    if not 0 <= value <= MAX_U32:
        raise _Invalid("bad_value", f"{name} must be 0..{MAX_U32}")


def _ascii(value: str, name: str) -> bytes:
    ok = 1 <= len(value) <= MAX_ASCII_FIELD and value.isascii() and value.isprintable()
    if not ok:
        raise _Invalid("bad_text", f"{name} must be 1..{MAX_ASCII_FIELD} printable ASCII")
    return value.encode("ascii")


def _size(payload: bytes, expected: int, name: str) -> None:
    if len(payload) != expected:
        raise _Invalid("bad_length", f"{name} payload must be {expected} bytes, got {len(payload)}")


def _enum(value: int, enum: type[IntEnum], name: str) -> int:
    try:
        return enum(value)
    except ValueError:
        raise _Invalid("bad_value", f"{name} {value:#04x} is not a known value") from None


# --- encoding -----------------------------------------------------------------


def encode_message(msg: AsuMessage) -> Frame:
    """The frame carrying `msg`; raises ValueError if `msg` holds a value the wire cannot carry."""
    try:
        return _encode(msg)
    except _Invalid as e:
        raise ValueError(e.detail) from None


def _encode(msg: AsuMessage) -> Frame:
    match msg:
        case SheetInsertedMsg():
            _sheet_id(msg.sheet_id)
            _u32(msg.image_size, "image size")
            _u32(msg.image_crc32, "image CRC-32")
            if not 1 <= msg.chunk_count <= 0xFFFF:
                raise _Invalid("bad_value", "chunk count must be 1..65535")
            fmt = ImageFormat(msg.image_format)
            body = struct.pack(
                ">IIHBI", msg.sheet_id, msg.image_size, msg.chunk_count, fmt, msg.image_crc32
            )
            return Frame(MsgType.SHEET_INSERTED, body)
        case ImageChunkMsg():
            _sheet_id(msg.sheet_id)
            if not 0 <= msg.index <= 0xFFFE:
                raise _Invalid("bad_value", "chunk index must be 0..65534")
            if len(msg.data) > MAX_CHUNK_DATA:
                raise _Invalid("bad_length", f"chunk data is longer than {MAX_CHUNK_DATA}")
            header = struct.pack(">IH", msg.sheet_id, msg.index)
            return Frame(MsgType.IMAGE_CHUNK, header + msg.data)
        case SheetDroppedMsg():
            _sheet_id(msg.sheet_id)
            _u32(msg.drops_total, "drops total")
            return Frame(MsgType.SHEET_DROPPED, struct.pack(">II", msg.sheet_id, msg.drops_total))
        case SensorMsg():
            _u32(msg.sheet_id, "sheet id")
            body = struct.pack(">BI", Sensor(msg.sensor), msg.sheet_id)
            return Frame(MsgType.SENSOR, body)
        case StatusMsg():
            for value, name in (
                (msg.sheet_in_path, "sheet in path"),
                (msg.drops_since_power_up, "drops since power-up"),
                (msg.drops_total, "drops total"),
            ):
                _u32(value, name)
            flags = (
                (FLAG_FEEDING if msg.feeding_enabled else 0)
                | (FLAG_PAPER_IN_PATH if msg.paper_in_path else 0)
                | (FLAG_JAMMED if msg.jammed else 0)
                | (FLAG_COVER_OPEN if msg.cover_open else 0)
                | (FLAG_BOX_FULL if msg.box_full else 0)
            )
            fw = _ascii(msg.firmware_version, "firmware version")
            serial_no = _ascii(msg.serial_number, "serial number")
            body = struct.pack(
                ">BBIII",
                BoxState(msg.state),
                flags,
                msg.sheet_in_path,
                msg.drops_since_power_up,
                msg.drops_total,
            )
            body += bytes([len(fw)]) + fw + bytes([len(serial_no)]) + serial_no
            return Frame(MsgType.STATUS, body)
        case ResendChunkMsg():
            _sheet_id(msg.sheet_id)
            if not 0 <= msg.index <= 0xFFFE:
                raise _Invalid("bad_value", "chunk index must be 0..65534")
            return Frame(MsgType.RESEND_CHUNK, struct.pack(">IH", msg.sheet_id, msg.index))
        case ImageDoneMsg() | SheetReturnedMsg() | AcceptMsg() | ReturnMsg():
            _sheet_id(msg.sheet_id)
            return Frame(_ID_ONLY_TYPES[type(msg)], struct.pack(">I", msg.sheet_id))
        case StatusRequestMsg() | ClearPathMsg() | EnableMsg() | DisableMsg():
            return Frame(_EMPTY_TYPES[type(msg)], b"")
    raise TypeError(f"not an ASU message: {type(msg).__name__}")


_ID_ONLY_TYPES: dict[type, MsgType] = {
    ImageDoneMsg: MsgType.IMAGE_DONE,
    SheetReturnedMsg: MsgType.SHEET_RETURNED,
    AcceptMsg: MsgType.ACCEPT,
    ReturnMsg: MsgType.RETURN,
}
_EMPTY_TYPES: dict[type, MsgType] = {
    StatusRequestMsg: MsgType.STATUS_REQUEST,
    ClearPathMsg: MsgType.CLEAR_PATH,
    EnableMsg: MsgType.ENABLE,
    DisableMsg: MsgType.DISABLE,
}


# --- decoding -----------------------------------------------------------------


def decode_message(frame: Frame) -> AsuMessage | PayloadError:
    """The message in `frame`, or a PayloadError saying what is wrong with it; never raises."""
    try:
        return _decode(frame)
    except _Invalid as e:
        return PayloadError(frame.msg_type, e.reason, e.detail)


def _id_only(payload: bytes, name: str) -> int:
    _size(payload, 4, name)
    (sheet_id,) = struct.unpack(">I", payload)
    _sheet_id(sheet_id)
    return int(sheet_id)


def _decode(frame: Frame) -> AsuMessage:
    t, p = frame.msg_type, frame.payload
    if t == MsgType.SHEET_INSERTED:
        _size(p, 15, "SHEET_INSERTED")
        sheet_id, size, count, fmt, crc = struct.unpack(">IIHBI", p)
        _sheet_id(sheet_id)
        if count == 0:
            raise _Invalid("bad_value", "chunk count must be at least 1")
        if size > count * MAX_CHUNK_DATA or (size and count > size):
            raise _Invalid("bad_value", "image size does not fit the chunk count")
        image_format = ImageFormat(_enum(fmt, ImageFormat, "image format"))
        return SheetInsertedMsg(sheet_id, size, count, image_format, crc)
    if t == MsgType.IMAGE_CHUNK:
        if len(p) < CHUNK_HEADER_SIZE:
            raise _Invalid("bad_length", "IMAGE_CHUNK is shorter than its header")
        sheet_id, index = struct.unpack(">IH", p[:CHUNK_HEADER_SIZE])
        _sheet_id(sheet_id)
        if index == 0xFFFF:
            raise _Invalid("bad_value", "chunk index 65535 is reserved")
        return ImageChunkMsg(sheet_id, index, bytes(p[CHUNK_HEADER_SIZE:]))
    if t == MsgType.IMAGE_DONE:
        return ImageDoneMsg(_id_only(p, "IMAGE_DONE"))
    if t == MsgType.SHEET_DROPPED:
        _size(p, 8, "SHEET_DROPPED")
        sheet_id, total = struct.unpack(">II", p)
        _sheet_id(sheet_id)
        if total == 0:
            raise _Invalid("bad_value", "drops total after a drop cannot be 0")
        return SheetDroppedMsg(sheet_id, total)
    if t == MsgType.SHEET_RETURNED:
        return SheetReturnedMsg(_id_only(p, "SHEET_RETURNED"))
    if t == MsgType.SENSOR:
        _size(p, 5, "SENSOR")
        sensor, sheet_id = struct.unpack(">BI", p)
        return SensorMsg(Sensor(_enum(sensor, Sensor, "sensor")), sheet_id)
    if t == MsgType.STATUS:
        return _decode_status(p)
    if t == MsgType.RESEND_CHUNK:
        _size(p, 6, "RESEND_CHUNK")
        sheet_id, index = struct.unpack(">IH", p)
        _sheet_id(sheet_id)
        if index == 0xFFFF:
            raise _Invalid("bad_value", "chunk index 65535 is reserved")
        return ResendChunkMsg(sheet_id, index)
    if t == MsgType.ACCEPT:
        return AcceptMsg(_id_only(p, "ACCEPT"))
    if t == MsgType.RETURN:
        return ReturnMsg(_id_only(p, "RETURN"))
    empty: dict[int, AsuMessage] = {
        MsgType.STATUS_REQUEST: StatusRequestMsg(),
        MsgType.CLEAR_PATH: ClearPathMsg(),
        MsgType.ENABLE: EnableMsg(),
        MsgType.DISABLE: DisableMsg(),
    }
    if t in empty:
        if p:
            raise _Invalid("unexpected_payload", f"type {t:#04x} carries no payload")
        return empty[t]
    raise _Invalid("unknown_type", f"unknown message type {t:#04x}")


def _decode_status(p: bytes) -> StatusMsg:
    fixed = 14
    if len(p) < fixed + 2:
        raise _Invalid("bad_length", "STATUS is shorter than its fixed part")
    state, flags, in_path, since, total = struct.unpack(">BBIII", p[:fixed])
    box_state = BoxState(_enum(state, BoxState, "box state"))
    if flags & ~_KNOWN_FLAGS:
        raise _Invalid("bad_value", f"unknown STATUS flags {flags:#04x}")
    texts: list[str] = []
    i = fixed
    for name in ("firmware version", "serial number"):
        if i >= len(p):
            raise _Invalid("bad_length", f"STATUS ends before the {name}")
        n = p[i]
        raw = p[i + 1 : i + 1 + n]
        if len(raw) != n:
            raise _Invalid("bad_length", f"STATUS {name} is cut short")
        text = raw.decode("ascii", errors="replace")
        _ascii(text, name)
        texts.append(text)
        i += 1 + n
    if i != len(p):
        raise _Invalid("bad_length", f"STATUS has {len(p) - i} trailing bytes")
    paper = bool(flags & FLAG_PAPER_IN_PATH)
    if paper != (in_path != 0):
        raise _Invalid("bad_value", "paper-in-path flag disagrees with the sheet in path")
    return StatusMsg(
        state=box_state,
        feeding_enabled=bool(flags & FLAG_FEEDING),
        paper_in_path=paper,
        jammed=bool(flags & FLAG_JAMMED),
        cover_open=bool(flags & FLAG_COVER_OPEN),
        box_full=bool(flags & FLAG_BOX_FULL),
        sheet_in_path=in_path,
        drops_since_power_up=since,
        drops_total=total,
        firmware_version=texts[0],
        serial_number=texts[1],
    )
