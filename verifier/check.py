"""Certificates, signatures and chains: is every file of the record what the CEC signed,
and is every station message signed by a device the CEC authorised for that station?

Trust starts at one root certificate: the one the user pins with `--root` or, if none
is pinned, the record's own `cec-root.pem` (then anyone could have made a record that
verifies against its own root, and the report says so loudly).  From the root:

- MANIFEST.json is an envelope signed by the CEC server's key, whose certificate
  (cec-central.pem) chains to the root and is bound to this election and station
  "CEC"; it lists the SHA-256 of every other file, and no file may be missing or extra;
- every device certificate in devices.json chains to the root and is bound to its
  station, its device id and this election;
- every message parses strictly (crypto.envelope: the one canonical byte form), names
  this election and the station of its file, and is signed by an authorised device of
  that station; each station's messages chain: seq 0 starts from 64 zeros and each
  message's `prev` is the SHA-256 of the message before it.

Only messages that pass count in the recomputation (recompute.py): a published number
rests on signed station reports only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto import certs
from crypto.envelope import CEC_STATION, GENESIS_PREV, Envelope, verify_envelope
from crypto.errors import CryptoError
from election.definition import ElectionDefinition
from election.tally import ContestTally
from verifier.record import MANIFEST, RecordFiles

ROOT_FILE = "cec-root.pem"
CENTRAL_FILE = "cec-central.pem"
ELECTION_FILE = "election.json"
DEVICES_FILE = "devices.json"
RESULTS_FILE = "results.json"
ALERTS_FILE = "alerts.json"
RECORD_KIND = "election_record"
_MESSAGES = re.compile(r"^messages/([^/]+)\.jsonl$")
_MANUAL = re.compile(r"^manual/([^/]+)\.json$")
_SCAN = re.compile(r"^scans/([0-9a-f]{64})\.[a-z0-9]{1,8}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    """One thing found: an `error` makes verification fail; a `warning` is for a person
    to look at (and fails only with --strict)."""

    severity: str
    area: str  # root, manifest, files, election, devices, messages, chains, manual, scans
    subject: str  # a file, a station, a device
    message: str

    def to_obj(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "area": self.area,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass
class Chain:
    """One station's stored sequence, as the record holds it."""

    station_id: str
    messages: int = 0
    verified: int = 0
    last_seq: int | None = None
    holes: list[tuple[int, int]] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)  # seqs whose prev is not the hash before

    @property
    def complete(self) -> bool:
        return not self.holes and not self.breaks


@dataclass(frozen=True)
class ManualProtocol:
    """A station's current manual-count protocol as the record holds it (entered at the
    CEC, signed by the CEC's manifest, backed by a scan of the paper)."""

    station_id: str
    version: int
    scan_sha256: str
    tallies: dict[str, ContestTally]


@dataclass
class Checked:
    """Everything check_record established, and the inputs of the recomputation."""

    findings: list[Finding] = field(default_factory=list)
    definition: ElectionDefinition | None = None
    pinned: bool = False
    trusted_root: str | None = None  # SHA-256 fingerprint of the root trusted
    record_root: str | None = None  # fingerprint of the record's cec-root.pem
    central_cert: str | None = None  # fingerprint of the server's certificate
    manifest_signed: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    files_hashed: int = 0
    bytes_hashed: int = 0
    devices: int = 0
    devices_ok: int = 0
    messages: dict[str, list[Envelope]] = field(default_factory=dict)  # verified, seq order
    chains: dict[str, Chain] = field(default_factory=dict)
    manual: dict[str, ManualProtocol] = field(default_factory=dict)
    scans: int = 0
    alerts: dict[str, int] = field(default_factory=dict)  # open alerts by severity
    results: bytes | None = None

    def add(self, severity: str, area: str, subject: str, message: str) -> None:
        self.findings.append(Finding(severity, area, subject, message))

    @property
    def message_count(self) -> int:
        return sum(c.messages for c in self.chains.values())

    @property
    def verified_count(self) -> int:
        return sum(c.verified for c in self.chains.values())


def check_record(record: RecordFiles, pinned_root: x509.Certificate | None) -> Checked:
    """Check everything the record's integrity rests on; see the module docstring."""
    out = Checked()
    root = _root(record, pinned_root, out)
    out.definition = _definition(record, out)
    _manifest(record, root, out)
    devices = _devices(record, root, out)
    _messages(record, devices, out)
    _manual(record, out)
    _scans(record, out)
    _alerts(record, out)
    if RESULTS_FILE in record.paths:
        out.results = record.read(RESULTS_FILE)
    return out


# --- trust -----------------------------------------------------------------------------------


def load_root(pem: bytes) -> x509.Certificate:
    """A root certificate the user pins; CryptoError if it is not a usable CEC root."""
    cert = certs.cert_from_pem(pem)
    _check_root(cert)
    return cert


def _check_root(cert: x509.Certificate) -> None:
    if not isinstance(cert.public_key(), Ed25519PublicKey):
        raise CryptoError("the root's key is not Ed25519")
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CryptoError("the root is not self-signed") from None
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CryptoError("the root has no basicConstraints: not a CA") from None
    if not bc.ca:
        raise CryptoError("the root is not a CA certificate")


def _root(
    record: RecordFiles, pinned: x509.Certificate | None, out: Checked
) -> x509.Certificate | None:
    """The root everything is checked against: the pinned one if given."""
    own: x509.Certificate | None = None
    if ROOT_FILE not in record.paths:
        out.add(ERROR, "root", ROOT_FILE, "the record has no root certificate")
    else:
        try:
            own = certs.cert_from_pem(record.read(ROOT_FILE))
            out.record_root = certs.fingerprint(own)
            _check_root(own)
        except CryptoError as e:
            out.add(ERROR, "root", ROOT_FILE, f"the record's root certificate is unusable: {e}")
            own = None
    if pinned is not None:
        out.pinned = True
        out.trusted_root = certs.fingerprint(pinned)
        if out.record_root is not None and out.record_root != out.trusted_root:
            out.add(
                ERROR,
                "root",
                ROOT_FILE,
                f"the record's root ({out.record_root}) is not the root you pinned "
                f"({out.trusted_root}): everything is checked against the pinned one",
            )
        return pinned
    if own is not None:
        out.trusted_root = out.record_root
        out.add(
            WARNING,
            "root",
            ROOT_FILE,
            "the root is NOT PINNED: the record was checked against its own root, so "
            "anyone could have made it; compare the fingerprint with the one the CEC "
            "publishes, or pass --root with the CEC's root certificate",
        )
    return own


# --- the definition and the manifest --------------------------------------------------------


def _definition(record: RecordFiles, out: Checked) -> ElectionDefinition | None:
    if ELECTION_FILE not in record.paths:
        out.add(ERROR, "election", ELECTION_FILE, "the record has no election definition")
        return None
    data = record.read(ELECTION_FILE)
    try:
        definition = ElectionDefinition.from_json(data)
    except ValueError as e:
        out.add(ERROR, "election", ELECTION_FILE, f"not an election definition: {_first(e)}")
        return None
    if definition.canonical_bytes() != data:
        out.add(
            ERROR,
            "election",
            ELECTION_FILE,
            "not in canonical form: its SHA-256 is not the election hash every signature names",
        )
    return definition


def _manifest(record: RecordFiles, root: x509.Certificate | None, out: Checked) -> None:
    """The server's signature over the file list, then every file against the list."""
    try:
        env = Envelope.from_bytes(record.read(MANIFEST))
    except CryptoError as e:
        out.add(ERROR, "manifest", MANIFEST, f"not a signed envelope: {e}")
        _unlisted(record, {}, out)
        return
    election = out.definition.election_hash if out.definition else None
    problems = []
    if env.kind != RECORD_KIND:
        problems.append(f"its kind is {env.kind!r}, not {RECORD_KIND!r}")
    if env.station != CEC_STATION:
        problems.append(f"it names station {env.station!r}, not {CEC_STATION!r}")
    if election is not None and env.election != election:
        problems.append("it is for another election than election.json")
    for p in problems:
        out.add(ERROR, "manifest", MANIFEST, p)
    if CENTRAL_FILE not in record.paths:
        out.add(ERROR, "manifest", CENTRAL_FILE, "the record has no server certificate")
    elif root is not None:
        try:
            cert = certs.cert_from_pem(record.read(CENTRAL_FILE))
            out.central_cert = certs.fingerprint(cert)
            ident = certs.verify_device_certificate(cert, root, at=env.when, purpose="signing")
            if ident.station_id != CEC_STATION:
                raise CryptoError(f"it is bound to station {ident.station_id!r}, not 'CEC'")
            if election is not None and ident.election_hash != election:
                raise CryptoError("it is bound to another election")
            if ident.device_id != env.device:
                raise CryptoError(
                    f"it is the key {ident.device_id!r}, but the manifest names {env.device!r}"
                )
            key = cert.public_key()
            assert isinstance(key, Ed25519PublicKey)  # verify_device_certificate checked
            verify_envelope(env, key)
            out.manifest_signed = not problems
        except Exception as e:  # CryptoError, or a malformed certificate's parsing error
            out.add(
                ERROR,
                "manifest",
                CENTRAL_FILE,
                f"the manifest's signature is not the CEC server's: {_first(e)}",
            )
    body = env.body
    listed = body.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.match(v) for k, v in listed.items()
    ):
        out.add(ERROR, "manifest", MANIFEST, "its file list is not {name: sha256}")
        listed = {}
    out.manifest = {k: v for k, v in body.items() if k != "files"}
    if election is not None and body.get("election") != election:
        out.add(ERROR, "manifest", MANIFEST, "it lists another election hash than election.json")
    for name, want in sorted(listed.items()):
        if name not in record.paths:
            out.add(ERROR, "files", name, "listed in the manifest but missing from the record")
            continue
        got = record.sha256(name)
        out.files_hashed += 1
        out.bytes_hashed += record.size(name)
        if got != want:
            out.add(
                ERROR,
                "files",
                name,
                f"changed: its SHA-256 is {got}, the signed manifest says {want}",
            )
    _unlisted(record, listed, out)


def _unlisted(record: RecordFiles, listed: dict[str, Any], out: Checked) -> None:
    for name in record.paths:
        if name != MANIFEST and name not in listed:
            out.add(ERROR, "files", name, "in the record but not in the signed manifest")
    for name in record.links:
        out.add(ERROR, "files", name, "a link or special file: a record holds plain files only")


# --- devices and messages --------------------------------------------------------------------


@dataclass(frozen=True)
class _Device:
    key: Ed25519PublicKey
    not_before: dt.datetime
    not_after: dt.datetime


def _devices(
    record: RecordFiles, root: x509.Certificate | None, out: Checked
) -> dict[tuple[str, str], _Device]:
    """(station, device) -> checked key; only certificates that chain to the trusted root
    and are bound to their station, device and this election."""
    found: dict[tuple[str, str], _Device] = {}
    if DEVICES_FILE not in record.paths:
        out.add(ERROR, "devices", DEVICES_FILE, "the record lists no devices")
        return found
    try:
        rows = json.loads(record.read(DEVICES_FILE))["devices"]
        assert isinstance(rows, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        out.add(ERROR, "devices", DEVICES_FILE, "not a {devices: [...]} list")
        return found
    definition = out.definition
    stations = {s.id for s in definition.stations} if definition else set()
    for row in rows:
        out.devices += 1
        station = row.get("station_id") if isinstance(row, dict) else None
        device = row.get("device_id") if isinstance(row, dict) else None
        subject = f"device {device} of station {station}"
        try:
            if not isinstance(station, str) or not isinstance(device, str):
                raise CryptoError("the entry has no station_id and device_id")
            if root is None:
                raise CryptoError("there is no root to check it against")
            cert = certs.cert_from_pem(str(row.get("signing_cert", "")).encode("ascii"))
            at = max(cert.not_valid_before_utc, root.not_valid_before_utc)
            ident = certs.verify_device_certificate(cert, root, at=at, purpose="signing")
            if (ident.station_id, ident.device_id) != (station, device):
                raise CryptoError(
                    f"the certificate is for device {ident.device_id} of station "
                    f"{ident.station_id}, not the one it is listed as"
                )
            if definition is not None and ident.election_hash != definition.election_hash:
                raise CryptoError("the certificate is for another election")
            if definition is not None and station not in stations:
                raise CryptoError(f"station {station} is not in this election")
            if (station, device) in found:
                raise CryptoError("listed twice")
        except Exception as e:  # untrusted certificates: a malformed extension raises too
            out.add(ERROR, "devices", subject, f"certificate refused: {_first(e)}")
            continue
        key = cert.public_key()
        assert isinstance(key, Ed25519PublicKey)
        found[(station, device)] = _Device(key, cert.not_valid_before_utc, cert.not_valid_after_utc)
        out.devices_ok += 1
    return found


def _messages(record: RecordFiles, devices: dict[tuple[str, str], _Device], out: Checked) -> None:
    definition = out.definition
    stations = {s.id for s in definition.stations} if definition else None
    for name in sorted(record.paths):
        m = _MESSAGES.match(name)
        if m is None:
            continue
        station = m.group(1)
        if stations is not None and station not in stations:
            out.add(ERROR, "messages", name, f"station {station} is not in this election")
            continue
        _station_file(station, name, record.read(name), devices, out)
    total = out.message_count
    claimed = out.manifest.get("messages")
    if isinstance(claimed, int) and claimed != total:
        out.add(
            ERROR,
            "messages",
            "MANIFEST.json",
            f"the manifest says {claimed} messages, the record holds {total}",
        )


def _station_file(
    station: str,
    name: str,
    data: bytes,
    devices: dict[tuple[str, str], _Device],
    out: Checked,
) -> None:
    chain = out.chains.setdefault(station, Chain(station))
    election = out.definition.election_hash if out.definition else None
    if data and not data.endswith(b"\n"):
        out.add(ERROR, "messages", name, "the file does not end with a newline (truncated?)")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    parsed: list[tuple[Envelope, str]] = []
    refused: dict[str, list[int]] = {}  # reason -> seqs (or line numbers)
    verified: list[Envelope] = []
    for n, line in enumerate(lines, start=1):
        chain.messages += 1
        try:
            env = Envelope.from_bytes(line)
        except CryptoError as e:
            out.add(ERROR, "messages", name, f"line {n} is not a valid signed message: {e}")
            continue
        parsed.append((env, hashlib.sha256(line).hexdigest()))
        reason = _refusal(env, station, election, devices)
        if reason is not None:
            refused.setdefault(reason, []).append(env.seq)
            continue
        device = devices[(station, env.device)]
        if not device.not_before <= env.when <= device.not_after:
            out.add(
                WARNING,
                "messages",
                f"station {station}",
                f"seq {env.seq} was signed at {env.time}, outside its device certificate's "
                f"validity ({device.not_before.isoformat()} .. {device.not_after.isoformat()})",
            )
        verified.append(env)
    for reason, seqs in refused.items():
        out.add(
            ERROR,
            "messages",
            f"station {station}",
            f"{len(seqs)} message(s) not counted ({_ranges(seqs)}): {reason}",
        )
    chain.verified = len(verified)
    _chain(chain, name, parsed, out)
    out.messages[station] = sorted(verified, key=lambda e: e.seq)


def _refusal(
    env: Envelope,
    station: str,
    election: str | None,
    devices: dict[tuple[str, str], _Device],
) -> str | None:
    if env.station != station:
        return f"signed as station {env.station}, stored under station {station}"
    if election is not None and env.election != election:
        return "signed for another election"
    device = devices.get((station, env.device))
    if device is None:
        return f"device {env.device} is not an authorised device of station {station}"
    try:
        verify_envelope(env, device.key)
    except CryptoError:
        return f"the signature of device {env.device} does not verify (the bytes were changed)"
    return None


def _chain(chain: Chain, name: str, parsed: list[tuple[Envelope, str]], out: Checked) -> None:
    """seq order in the file, no seq twice, seq 0 from 64 zeros, each prev the hash of
    the message before; holes are reported (the server stores messages above a hole)."""
    subject = f"station {chain.station_id}"
    seqs = [env.seq for env, _ in parsed]
    if seqs != sorted(seqs):
        out.add(ERROR, "chains", name, "messages are not in seq order")
    by_seq: dict[int, tuple[Envelope, str]] = {}
    for env, h in parsed:
        if env.seq in by_seq:
            out.add(
                ERROR,
                "chains",
                subject,
                f"two different messages with seq {env.seq}: the server never stores both",
            )
            continue
        by_seq[env.seq] = (env, h)
    if not by_seq:
        return
    chain.last_seq = max(by_seq)
    zero = by_seq.get(0)
    if zero is not None and zero[0].prev != GENESIS_PREV:
        chain.breaks.append(0)
        out.add(ERROR, "chains", subject, "seq 0 does not start the chain (prev is not 64 zeros)")
    for seq in sorted(by_seq):
        below = by_seq.get(seq - 1)
        if below is not None and by_seq[seq][0].prev != below[1]:
            chain.breaks.append(seq)
            out.add(
                ERROR,
                "chains",
                subject,
                f"broken chain: seq {seq}'s prev is not the hash of seq {seq - 1}",
            )
    start = -1
    for seq in sorted(by_seq):
        if seq > start + 1:
            chain.holes.append((start + 1, seq - 1))
        start = seq
    if chain.holes:
        out.add(
            WARNING,
            "chains",
            subject,
            f"messages {_holes(chain.holes)} are not in the record (later ones are): the "
            "server counts what it has, so a missing report may be missing from the results",
        )


# --- manual counts, scans, alerts ------------------------------------------------------------


def _manual(record: RecordFiles, out: Checked) -> None:
    definition = out.definition
    scans = {m.group(1) for n in record.paths if (m := _SCAN.match(n))}
    for name in sorted(record.paths):
        m = _MANUAL.match(name)
        if m is None:
            continue
        station = m.group(1)
        try:
            doc = json.loads(record.read(name))
            if doc["station_id"] != station:
                raise ValueError(f"it is the protocol of station {doc['station_id']}")
            if definition is None:
                raise ValueError("there is no definition to read it against")
            contests = {c.id: c for c in definition.contests_for_station(station)}
            tallies: dict[str, ContestTally] = {}
            for row in doc["contests"]:
                tally = ContestTally.from_obj(row["tally"])
                contest = contests.get(row["contest_id"])
                if contest is None or tally.contest_id != row["contest_id"]:
                    raise ValueError(f"contest {row['contest_id']} is not one of this station")
                if row["contest_id"] in tallies:
                    raise ValueError(f"contest {row['contest_id']} is there twice")
                if (row["ballots"], row["invalid"]) != (tally.ballots, tally.invalid):
                    raise ValueError(
                        f"contest {contest.id}: its ballots or invalid lines differ from its tally"
                    )
                problems = tally.problems(contest)
                if problems:
                    raise ValueError(f"contest {contest.id}: " + "; ".join(problems))
                tallies[contest.id] = tally
            sha, version = doc["scan_sha256"], doc["version"]
            if not isinstance(sha, str) or not isinstance(version, int):
                raise ValueError("scan_sha256 or version is not what the format says")
        except KeyError as e:
            out.add(ERROR, "manual", name, f"not a protocol: missing {e.args[0]!r}")
            continue
        except Exception as e:  # an untrusted file: bad JSON, wrong types, a tally that fails
            out.add(ERROR, "manual", name, f"not counted: {_first(e)}")
            continue
        if sha not in scans:
            out.add(ERROR, "manual", name, f"its scan {sha} is not in the record")
        out.manual[station] = ManualProtocol(station, version, sha, tallies)


def _scans(record: RecordFiles, out: Checked) -> None:
    for name in sorted(record.paths):
        m = _SCAN.match(name)
        if m is None:
            if name.startswith("scans/"):
                out.add(ERROR, "scans", name, "not named by its SHA-256")
            continue
        out.scans += 1
        got = record.sha256(name)
        if got != m.group(1):
            out.add(ERROR, "scans", name, f"its content's SHA-256 is {got}, not its name")


def _alerts(record: RecordFiles, out: Checked) -> None:
    if ALERTS_FILE not in record.paths:
        return
    try:
        alerts = json.loads(record.read(ALERTS_FILE))["alerts"]
        for a in alerts:
            if a.get("resolved_at") is None:
                sev = str(a.get("severity"))
                out.alerts[sev] = out.alerts.get(sev, 0) + 1
    except (ValueError, KeyError, TypeError, AttributeError):
        out.add(ERROR, "files", ALERTS_FILE, "not an {alerts: [...]} list")


# --- small helpers ---------------------------------------------------------------------------


def _first(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _ranges(values: Iterable[int]) -> str:
    """ "seq 3-5, 9" for a list of seqs."""
    ordered = sorted(set(values))
    spans: list[tuple[int, int]] = []
    for v in ordered:
        if spans and v == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], v)
        else:
            spans.append((v, v))
    return "seq " + _holes(spans)


def _holes(spans: list[tuple[int, int]]) -> str:
    text = [str(a) if a == b else f"{a}-{b}" for a, b in spans[:10]]
    if len(spans) > 10:
        text.append(f"and {len(spans) - 10} more ranges")
    return ", ".join(text)
