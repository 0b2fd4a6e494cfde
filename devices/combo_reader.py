"""Message set of the ID-card and biometric combo reader, carried in `devices.framing` frames.

Reader -> host types are 0x01-0x7F, host -> reader 0x80-0xFF, so a frame
looped back or sent the wrong way is recognisable.  Payloads are TLV (tag 1
byte, length 1 byte, value): compact, self-delimiting and strict to check,
unlike JSON.  Tags 0x80-0xFF are optional extensions a decoder skips when it
does not know them; an unknown tag below 0x80 is an error.  Decoding never
raises: a well-framed but invalid payload comes back as a `PayloadError`, so
the driver reports it and acts on nothing.  Byte layouts with examples:
docs/protocol-combo-reader.md.  Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from devices.framing import Frame
from election.pin import is_pin_shaped, mask_pin

__all__ = [
    "COMBO_MAX_PAYLOAD",
    "Beep",
    "Card",
    "CardInsertedMsg",
    "CardRemovedMsg",
    "CardRequestMsg",
    "ComboMessage",
    "ErrorCode",
    "ErrorMsg",
    "IndicateMsg",
    "Led",
    "MsgType",
    "PayloadError",
    "ReaderState",
    "StatusMsg",
    "StatusRequestMsg",
    "decode_message",
    "decode_tlv",
    "encode_message",
    "encode_tlv",
]

# The largest valid payload (a card with three 255-byte names) is under 900 bytes;
# anything declaring more is a false start or a broken reader.
COMBO_MAX_PAYLOAD = 1024
MAX_TLV_VALUE = 255
MAX_DOCUMENT_NUMBER = 20
MAX_ASCII_FIELD = 32


class MsgType(IntEnum):
    CARD_INSERTED = 0x01
    CARD_REMOVED = 0x02
    STATUS = 0x03
    ERROR = 0x04
    STATUS_REQUEST = 0x81
    CARD_REQUEST = 0x82
    INDICATE = 0x83


class ReaderState(IntEnum):
    """The reader's self-assessment in STATUS; anything but OK needs a technician."""

    OK = 0
    CARD_READER_FAULT = 1
    BIOMETRIC_SENSOR_FAULT = 2
    SELF_TEST_FAILED = 3


class ErrorCode(IntEnum):
    """Why a card inserted could not be read; the voter re-inserts or shows the card."""

    CARD_UNREADABLE = 1
    CHIP_ERROR = 2
    CARD_NOT_SUPPORTED = 3
    CHIP_AUTH_FAILED = 4
    CARD_REMOVED_DURING_READ = 5


class Led(IntEnum):
    OFF = 0
    GREEN = 1
    RED = 2
    AMBER = 3


class Beep(IntEnum):
    NONE = 0
    SHORT = 1
    LONG = 2
    DOUBLE = 3


# TLV tags, per message type.
TAG_PIN = 0x01
TAG_DOCUMENT = 0x02
TAG_LAST_NAME = 0x03
TAG_FIRST_NAME = 0x04
TAG_PATRONYMIC = 0x05
TAG_BIRTH_DATE = 0x06

TAG_STATE = 0x01
TAG_FIRMWARE = 0x02
TAG_SERIAL = 0x03
TAG_CARD_PRESENT = 0x04
TAG_DETAIL = 0x05

TAG_ERROR_CODE = 0x01
TAG_ERROR_DETAIL = 0x02

TAG_LED = 0x01
TAG_BEEP = 0x02

FIRST_OPTIONAL_TAG = 0x80

E = TypeVar("E", bound=IntEnum)


@dataclass(frozen=True, slots=True, repr=False)
class Card:
    """What the reader reads from an ID card's chip.  `patronymic` is "" when the card has none.

    repr masks the PIN and leaves names out, so logging a card by mistake leaks nothing.
    """

    pin: str
    document_number: str
    last_name: str
    first_name: str
    patronymic: str
    birth_date: dt.date

    def __repr__(self) -> str:
        return f"Card(pin={mask_pin(self.pin)!r}, document_number={self.document_number!r})"


@dataclass(frozen=True, slots=True)
class CardInsertedMsg:
    card: Card


@dataclass(frozen=True, slots=True)
class CardRemovedMsg:
    pass


@dataclass(frozen=True, slots=True)
class StatusMsg:
    state: ReaderState
    firmware_version: str
    serial_number: str
    card_present: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ErrorMsg:
    code: ErrorCode
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StatusRequestMsg:
    pass


@dataclass(frozen=True, slots=True)
class CardRequestMsg:
    """Ask the reader to send the current card state again (CARD_INSERTED or CARD_REMOVED)."""


@dataclass(frozen=True, slots=True)
class IndicateMsg:
    """Light the reader's LED and beep, so the voter at the reader sees the outcome too."""

    led: Led
    beep: Beep = Beep.NONE


ComboMessage = (
    CardInsertedMsg
    | CardRemovedMsg
    | StatusMsg
    | ErrorMsg
    | StatusRequestMsg
    | CardRequestMsg
    | IndicateMsg
)


@dataclass(frozen=True, slots=True)
class PayloadError:
    """A well-framed message whose payload is not valid; `reason` is a short machine code.

    `detail` never quotes field values (they may be a PIN or a name).
    """

    msg_type: int
    reason: str
    detail: str


class _Invalid(Exception):
    """Internal: carries a reason out of nested checks; never leaves this module."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- TLV -------------------------------------------------------------------


def encode_tlv(items: list[tuple[int, bytes]]) -> bytes:
    """Concatenate (tag, value) items; raises ValueError for a tag or value out of range."""
    out = bytearray()
    for tag, value in items:
        if not 0 <= tag <= 0xFF:
            raise ValueError(f"TLV tag must be 0..255, got {tag}")
        if len(value) > MAX_TLV_VALUE:
            raise ValueError(f"TLV value for tag {tag:#04x} is {len(value)} bytes, max 255")
        out += bytes([tag, len(value)]) + value
    return bytes(out)


def decode_tlv(payload: bytes) -> list[tuple[int, bytes]] | str:
    """Split a TLV payload into (tag, value) items, or return why it is malformed."""
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(payload):
        if i + 2 > len(payload):
            return f"TLV item at offset {i} is cut after its tag"
        tag, length = payload[i], payload[i + 1]
        if i + 2 + length > len(payload):
            return f"TLV item {tag:#04x} at offset {i} declares {length} bytes, payload ends first"
        items.append((tag, bytes(payload[i + 2 : i + 2 + length])))
        i += 2 + length
    return items


def _fields(payload: bytes, known: set[int]) -> dict[int, bytes]:
    items = decode_tlv(payload)
    if isinstance(items, str):
        raise _Invalid("bad_tlv", items)
    out: dict[int, bytes] = {}
    for tag, value in items:
        if tag in out:
            raise _Invalid("duplicate_tag", f"tag {tag:#04x} appears twice")
        if tag not in known:
            if tag >= FIRST_OPTIONAL_TAG:
                continue  # optional extension from newer firmware
            raise _Invalid("unknown_tag", f"unknown tag {tag:#04x}")
        out[tag] = value
    return out


def _required(fields: dict[int, bytes], tag: int, name: str) -> bytes:
    if tag not in fields:
        raise _Invalid("missing_field", f"{name} (tag {tag:#04x}) is missing")
    return fields[tag]


# --- field checks (shared by encoder and decoder) ------------------------------


def _check_pin(pin: str) -> None:
    if not is_pin_shaped(pin):
        raise _Invalid("bad_pin", f"PIN must be 14 ASCII digits, got {len(pin)} characters")


def _check_name(value: str, name: str, *, required: bool) -> None:
    if not value:
        if required:
            raise _Invalid("bad_text", f"{name} is empty")
        return
    if len(value.encode("utf-8")) > MAX_TLV_VALUE:
        raise _Invalid("bad_text", f"{name} is longer than {MAX_TLV_VALUE} bytes")
    if not value.isprintable() or value != value.strip():
        raise _Invalid("bad_text", f"{name} has control characters or edge spaces")


def _check_ascii(value: str, name: str, limit: int) -> None:
    if not 1 <= len(value) <= limit or not value.isascii() or not value.isprintable():
        raise _Invalid("bad_text", f"{name} must be 1..{limit} printable ASCII characters")


def _check_document(value: str) -> None:
    ok = 1 <= len(value) <= MAX_DOCUMENT_NUMBER and value.isascii() and value.isalnum()
    if not ok or value != value.upper():
        raise _Invalid(
            "bad_document",
            f"document number must be 1..{MAX_DOCUMENT_NUMBER} upper-case letters and digits",
        )


def _check_card(card: Card) -> None:
    _check_pin(card.pin)
    _check_document(card.document_number)
    _check_name(card.last_name, "last name", required=True)
    _check_name(card.first_name, "first name", required=True)
    _check_name(card.patronymic, "patronymic", required=False)
    if not isinstance(card.birth_date, dt.date) or card.birth_date.year < 1000:
        raise _Invalid("bad_date", "birth date must be a date with a 4-digit year")


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("bad_utf8", f"{name} is not valid UTF-8") from None


def _enum_byte(value: bytes, enum: type[E], name: str) -> E:
    if len(value) != 1:
        raise _Invalid("bad_value", f"{name} must be 1 byte, got {len(value)}")
    try:
        return enum(value[0])
    except ValueError:
        raise _Invalid("bad_value", f"{name} {value[0]:#04x} is not a known value") from None


def _date(value: bytes) -> dt.date:
    text = value.decode("ascii", errors="replace")
    if len(value) != 8 or not text.isdigit():
        raise _Invalid("bad_date", "birth date must be 8 ASCII digits YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise _Invalid("bad_date", "birth date YYYYMMDD is not a calendar date") from None


# --- messages ---------------------------------------------------------------


def encode_message(msg: ComboMessage) -> Frame:
    """The frame carrying `msg`; raises ValueError if `msg` holds a value the wire cannot carry."""
    try:
        return _encode(msg)
    except _Invalid as e:
        raise ValueError(e.detail) from None


def _encode(msg: ComboMessage) -> Frame:
    match msg:
        case CardInsertedMsg(card=c):
            _check_card(c)
            items = [
                (TAG_PIN, c.pin.encode("ascii")),
                (TAG_DOCUMENT, c.document_number.encode("ascii")),
                (TAG_LAST_NAME, c.last_name.encode("utf-8")),
                (TAG_FIRST_NAME, c.first_name.encode("utf-8")),
            ]
            if c.patronymic:
                items.append((TAG_PATRONYMIC, c.patronymic.encode("utf-8")))
            items.append((TAG_BIRTH_DATE, f"{c.birth_date:%Y%m%d}".encode("ascii")))
            return Frame(MsgType.CARD_INSERTED, encode_tlv(items))
        case CardRemovedMsg():
            return Frame(MsgType.CARD_REMOVED, b"")
        case StatusMsg():
            _check_ascii(msg.firmware_version, "firmware version", MAX_ASCII_FIELD)
            _check_ascii(msg.serial_number, "serial number", MAX_ASCII_FIELD)
            _check_name(msg.detail, "status detail", required=False)
            items = [
                (TAG_STATE, bytes([ReaderState(msg.state)])),
                (TAG_FIRMWARE, msg.firmware_version.encode("ascii")),
                (TAG_SERIAL, msg.serial_number.encode("ascii")),
                (TAG_CARD_PRESENT, bytes([int(msg.card_present)])),
            ]
            if msg.detail:
                items.append((TAG_DETAIL, msg.detail.encode("utf-8")))
            return Frame(MsgType.STATUS, encode_tlv(items))
        case ErrorMsg():
            _check_name(msg.detail, "error detail", required=False)
            items = [(TAG_ERROR_CODE, bytes([ErrorCode(msg.code)]))]
            if msg.detail:
                items.append((TAG_ERROR_DETAIL, msg.detail.encode("utf-8")))
            return Frame(MsgType.ERROR, encode_tlv(items))
        case StatusRequestMsg():
            return Frame(MsgType.STATUS_REQUEST, b"")
        case CardRequestMsg():
            return Frame(MsgType.CARD_REQUEST, b"")
        case IndicateMsg():
            items = [(TAG_LED, bytes([Led(msg.led)])), (TAG_BEEP, bytes([Beep(msg.beep)]))]
            return Frame(MsgType.INDICATE, encode_tlv(items))
    raise TypeError(f"not a combo reader message: {type(msg).__name__}")


def decode_message(frame: Frame) -> ComboMessage | PayloadError:
    """The message in `frame`, or a PayloadError saying what is wrong with it; never raises."""
    try:
        return _decode(frame)
    except _Invalid as e:
        return PayloadError(frame.msg_type, e.reason, e.detail)


def _empty(frame: Frame, name: str) -> None:
    if frame.payload:
        raise _Invalid("unexpected_payload", f"{name} carries no payload, got {len(frame.payload)}")


def _decode(frame: Frame) -> ComboMessage:
    t = frame.msg_type
    if t == MsgType.CARD_INSERTED:
        f = _fields(
            frame.payload,
            {
                TAG_PIN,
                TAG_DOCUMENT,
                TAG_LAST_NAME,
                TAG_FIRST_NAME,
                TAG_PATRONYMIC,
                TAG_BIRTH_DATE,
            },
        )
        pin_raw = _required(f, TAG_PIN, "PIN")
        if not pin_raw.isascii():
            raise _Invalid("bad_pin", "PIN must be 14 ASCII digits")
        if TAG_PATRONYMIC in f and not f[TAG_PATRONYMIC]:
            raise _Invalid("bad_text", "patronymic, when present, is not empty")
        doc_raw = _required(f, TAG_DOCUMENT, "document number")
        if not doc_raw.isascii():
            raise _Invalid("bad_document", "document number must be ASCII")
        card = Card(
            pin=pin_raw.decode("ascii"),
            document_number=doc_raw.decode("ascii"),
            last_name=_text(_required(f, TAG_LAST_NAME, "last name"), "last name"),
            first_name=_text(_required(f, TAG_FIRST_NAME, "first name"), "first name"),
            patronymic=_text(f.get(TAG_PATRONYMIC, b""), "patronymic"),
            birth_date=_date(_required(f, TAG_BIRTH_DATE, "birth date")),
        )
        _check_card(card)
        return CardInsertedMsg(card)
    if t == MsgType.CARD_REMOVED:
        _empty(frame, "CARD_REMOVED")
        return CardRemovedMsg()
    if t == MsgType.STATUS:
        f = _fields(
            frame.payload, {TAG_STATE, TAG_FIRMWARE, TAG_SERIAL, TAG_CARD_PRESENT, TAG_DETAIL}
        )
        state = _enum_byte(_required(f, TAG_STATE, "state"), ReaderState, "state")
        firmware = _text(_required(f, TAG_FIRMWARE, "firmware version"), "firmware version")
        serial_no = _text(_required(f, TAG_SERIAL, "serial number"), "serial number")
        _check_ascii(firmware, "firmware version", MAX_ASCII_FIELD)
        _check_ascii(serial_no, "serial number", MAX_ASCII_FIELD)
        present = _required(f, TAG_CARD_PRESENT, "card present")
        if present not in (b"\x00", b"\x01"):
            raise _Invalid("bad_value", "card present must be one byte 0 or 1")
        detail = _text(f.get(TAG_DETAIL, b""), "status detail")
        _check_name(detail, "status detail", required=False)
        return StatusMsg(state, firmware, serial_no, present == b"\x01", detail)
    if t == MsgType.ERROR:
        f = _fields(frame.payload, {TAG_ERROR_CODE, TAG_ERROR_DETAIL})
        code = _enum_byte(_required(f, TAG_ERROR_CODE, "error code"), ErrorCode, "error code")
        detail = _text(f.get(TAG_ERROR_DETAIL, b""), "error detail")
        _check_name(detail, "error detail", required=False)
        return ErrorMsg(code, detail)
    if t == MsgType.STATUS_REQUEST:
        _empty(frame, "STATUS_REQUEST")
        return StatusRequestMsg()
    if t == MsgType.CARD_REQUEST:
        _empty(frame, "CARD_REQUEST")
        return CardRequestMsg()
    if t == MsgType.INDICATE:
        f = _fields(frame.payload, {TAG_LED, TAG_BEEP})
        led = _enum_byte(_required(f, TAG_LED, "LED"), Led, "LED")
        beep = _enum_byte(_required(f, TAG_BEEP, "beep"), Beep, "beep")
        return IndicateMsg(led, beep)
    raise _Invalid("unknown_type", f"unknown message type {t:#04x}")
