"""A signed envelope cut into hash-chained QR texts, and put back together byte-exactly.

This is how a printed report carries its own proof (as Brazil's polling-station
tally does): anyone who photographs the QR codes on the door can rebuild the
exact signed envelope and check it against the CEC root, with no network.
Pure: texts in, bytes out; reading images lives in crypto/qrimage.py.

Every QR text is one ASCII header line, a newline, then content::

    SHAILOO-QR1 <kind> <station> <seq> <i>/<n> <prev> <hash>\\n<content>

Part 0 carries the device certificate (base64 DER, one line); parts 1..n carry consecutive
slices of the envelope's canonical JSON text, so the envelope is their plain
concatenation.  The slices are cut so that the whole `"sig":"..."` member lies
in part n: the last part carries the signature.  `hash` is the URL-safe
base64 (unpadded) SHA-512 of the part's text with ` <hash>` removed; `prev`
is the previous part's `hash` ("-" in part 0).  So each part checks itself and
names its predecessor, and a missing, reordered or altered part is reported by
number before any signature is checked.  See docs/printed-reports.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from crypto.certs import DeviceIdentity, cert_from_pem, cert_to_pem
from crypto.envelope import Envelope, verify_signed_by_certificate
from crypto.errors import CryptoError, EnvelopeError

__all__ = [
    "MAGIC",
    "MAX_QR_CHARS",
    "QrChainError",
    "QrPart",
    "VerifiedReport",
    "group_parts",
    "parse_part",
    "reassemble",
    "split_envelope",
    "verify_parts",
]

MAGIC = "SHAILOO-QR1"
# Whole QR text (header + content), in characters: about Brazil's 1,100, which keeps
# each code at QR version ~25 (117 modules), readable from a phone photo of a page.
MAX_QR_CHARS = 1100
_NO_PREV = "-"
_SIG_MEMBER = ',"sig":"'
_HASH_RE = r"[A-Za-z0-9_-]{86}"
_HEADER = re.compile(
    rf"^{MAGIC} ([a-z0-9_]{{1,40}}) ([A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}) (0|[1-9][0-9]{{0,15}}) "
    rf"(0|[1-9][0-9]{{0,5}})/([1-9][0-9]{{0,5}}) ({_HASH_RE}|-) ({_HASH_RE})$"
)


class QrChainError(CryptoError):
    """The QR set is incomplete, out of order, altered, or not one report; says which part."""


@dataclass(frozen=True)
class QrPart:
    """One parsed QR text."""

    kind: str
    station: str
    seq: int
    index: int  # 0 = certificate, 1..total = envelope slices
    total: int
    prev: str
    hash: str
    content: str

    @property
    def report(self) -> tuple[str, str, int]:
        """Which report the part belongs to: (kind, station, seq)."""
        return (self.kind, self.station, self.seq)

    @property
    def name(self) -> str:
        return "certificate part (0)" if self.index == 0 else f"part {self.index} of {self.total}"


@dataclass(frozen=True)
class VerifiedReport:
    """A reassembled envelope whose chain and signature verified, and who signed it."""

    envelope: Envelope
    envelope_bytes: bytes
    cert_pem: bytes
    identity: DeviceIdentity
    parts: int  # QR codes in the set, certificate included


def _digest(text: str) -> str:
    raw = hashlib.sha512(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _make(kind: str, station: str, seq: int, i: int, n: int, prev: str, content: str) -> str:
    head = f"{MAGIC} {kind} {station} {seq} {i}/{n} {prev}"
    h = _digest(f"{head}\n{content}")
    return f"{head} {h}\n{content}"


def _cuts(text: str, room: int) -> list[str]:
    """Slices of at most `room` characters, even in size, the sig member whole in the last."""
    sig_at = text.rfind(_SIG_MEMBER)
    if sig_at < 0:
        raise EnvelopeError("envelope text has no signature member")
    n = max(1, math.ceil(len(text) / room))
    while True:
        size = math.ceil(len(text) / n)
        bounds = [min(k * size, len(text)) for k in range(n)] + [len(text)]
        bounds[-2] = min(bounds[-2], sig_at)  # the signature must lie wholly in the last part
        parts = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        if all(0 < len(p) <= room for p in parts):
            return parts
        n += 1
        if n > len(text):
            raise EnvelopeError(f"cannot cut the envelope into parts of {room} characters")


def split_envelope(
    envelope_bytes: bytes, cert_pem: bytes, *, max_chars: int = MAX_QR_CHARS
) -> list[str]:
    """QR texts for a signed envelope: [certificate part, part 1, ..., part n (with the sig)].

    The envelope must be the exact signed wire bytes (it is parsed strictly), so
    what the QR codes rebuild is what the station signed and sent.
    """
    env = Envelope.from_bytes(envelope_bytes)
    cert = cert_from_pem(cert_pem)  # refuse to print something that is not one certificate
    text = envelope_bytes.decode("utf-8")
    # base64 of the DER on one line: 25% shorter than PEM, so it fits one QR
    cert_text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
    n = 1
    while True:
        # header: magic, ids, i/n (widest), two hashes, separators and the newline
        head = len(f"{MAGIC} {env.kind} {env.station} {env.seq} {n}/{n} ") + 2 * 86 + 2
        room = max_chars - head
        if room < 300:
            raise EnvelopeError(f"max_chars {max_chars} leaves no room for content")
        slices = _cuts(text, room)
        if len(str(len(slices))) <= len(str(n)):
            break
        n = len(slices)
    total = len(slices)
    out = [_make(env.kind, env.station, env.seq, 0, total, _NO_PREV, cert_text)]
    if len(out[0]) > max_chars:
        raise EnvelopeError(f"certificate is {len(cert_text)} characters, over one QR")
    prev = parse_part(out[0]).hash
    for i, content in enumerate(slices, start=1):
        out.append(_make(env.kind, env.station, env.seq, i, total, prev, content))
        prev = parse_part(out[-1]).hash
    return out


def parse_part(text: str) -> QrPart:
    """Parse one QR text and check its own hash; QrChainError if it is not a sound part."""
    if not isinstance(text, str):
        raise TypeError(f"a QR part is text, not {type(text).__name__}")
    head, sep, content = text.partition("\n")
    if not text.startswith(MAGIC + " "):
        raise QrChainError(f"not a Shailoo report QR code: {text[:40]!r}")
    m = _HEADER.match(head)
    if not sep or m is None:
        raise QrChainError(f"QR code header is damaged: {head[:160]!r}")
    kind, station, seq, i, n, prev, h = m.groups()
    part = QrPart(kind, station, int(seq), int(i), int(n), prev, h, content)
    if part.index > part.total:
        raise QrChainError(f"QR code says part {part.index} of {part.total}")
    if (part.index == 0) != (prev == _NO_PREV):
        raise QrChainError(f"{part.name}: header is damaged (previous-part hash)")
    if _digest(head[: -len(h) - 1] + "\n" + content) != h:
        raise QrChainError(f"{part.name} is altered: its hash does not match its content")
    return part


def group_parts(texts: list[str]) -> dict[tuple[str, str, int], list[str]]:
    """Shailoo QR texts grouped by report (kind, station, seq); exact duplicates dropped.

    A photo may hold two reports, or the same code twice; other QR codes are
    not ours and are left out (the caller may say so).
    """
    out: dict[tuple[str, str, int], list[str]] = {}
    for t in dict.fromkeys(texts):
        if not t.startswith(MAGIC + " "):
            continue
        head = t.partition("\n")[0].split(" ")
        try:
            key = (head[1], head[2], int(head[3]))
        except (IndexError, ValueError):
            key = ("?", "?", -1)
        out.setdefault(key, []).append(t)
    return out


def reassemble(parts: list[str]) -> tuple[bytes, bytes]:
    """Check the chain and rebuild (envelope bytes, certificate PEM) exactly as signed.

    Order of `parts` does not matter (photos come in any order) and exact
    duplicates are fine; any missing, altered, foreign or out-of-place part is a
    QrChainError naming it.  The signature is not checked here: see verify_parts.
    """
    parsed = [parse_part(t) for t in dict.fromkeys(parts)]
    if not parsed:
        raise QrChainError("no Shailoo QR codes found")
    reports = sorted({p.report for p in parsed})
    if len(reports) > 1:
        names = ", ".join(f"{k} station {s} seq {q}" for k, s, q in reports)
        raise QrChainError(f"QR codes of more than one report: {names}")
    totals = sorted({p.total for p in parsed})
    if len(totals) > 1:
        raise QrChainError(f"parts disagree on how many parts there are: {totals}")
    total = totals[0]
    by_index: dict[int, QrPart] = {}
    for p in parsed:
        if p.index in by_index:
            raise QrChainError(f"two different versions of {p.name}: one is altered")
        by_index[p.index] = p
    missing = [i for i in range(total + 1) if i not in by_index]
    if missing:
        names = ", ".join(
            "the certificate part (0)" if i == 0 else f"part {i} of {total}" for i in missing
        )
        raise QrChainError(f"missing {names}")
    for i in range(1, total + 1):
        if by_index[i].prev != by_index[i - 1].hash:
            raise QrChainError(
                f"part {i} of {total} does not follow {by_index[i - 1].name}: "
                "a part is altered or belongs to another printout"
            )
    last = by_index[total].content
    if _SIG_MEMBER not in last:
        raise QrChainError(f"part {total} of {total} does not carry the signature")
    data = "".join(by_index[i].content for i in range(1, total + 1)).encode("utf-8")
    try:
        env = Envelope.from_bytes(data)
    except EnvelopeError as e:
        raise QrChainError(f"the rebuilt report is not a valid envelope: {e}") from None
    if (env.kind, env.station, env.seq) != reports[0]:
        raise QrChainError("the QR headers name another report than the envelope they carry")
    if f'{_SIG_MEMBER}{env.sig}"' not in last:
        raise QrChainError(f"part {total} of {total} does not carry the signature")
    try:
        der = base64.b64decode(by_index[0].content, validate=True)
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise QrChainError("the certificate part (0) does not hold a certificate") from None
    return data, cert_to_pem(cert)


def verify_parts(
    parts: list[str], root_cert: x509.Certificate, *, at: dt.datetime | None = None
) -> VerifiedReport:
    """Rebuild the report and verify certificate chain, binding and signature.

    `at` defaults to the envelope's own signing time: a report posted on the
    door stays checkable after the device certificate expires.  Raises
    QrChainError, CertificateError, BindingError or SignatureError.
    """
    data, pem = reassemble(parts)
    env = Envelope.from_bytes(data)
    cert = cert_from_pem(pem)
    ident = verify_signed_by_certificate(env, cert, root_cert, at or env.when)
    return VerifiedReport(env, data, pem, ident, len(dict.fromkeys(parts)))
