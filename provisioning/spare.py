"""A spare device for one station: new keys and certificates under the CEC root, and a bundle.

When a station's appliance fails during the day, its storage (the SQLite database with
the roll marks, the ballot records, the counters, the event log and every signed
message) moves into a spare appliance, as Brazil moves the flash cards of a failed urna
into the contingency urna.  The spare has its own device keys: the failed device's key
stays in the failed device.  `make_spare` issues them, bound to the same station and
election as the build's device, and writes the spare's bundle: the very files of the
station's own bundle (definition, roll slice, templates, ballot layouts, CEC
certificates, broker settings), the spare's keys and certificates, and the national
index key encrypted with the spare's passphrase, under a manifest the root signs.

    OUT/<device id>/                      the spare's bundle (`shailoo station take-over`)
    OUT/<device id>-signing-cert.pem      for `shailoo central authorise-device`
    SECRETS/spare-passphrases.csv         station, device id, passphrase (appended, 0600)

OUT defaults to PROV/spares, beside PROV/bundles, so the station finds the national
index where it finds it for the build's bundles (PROV/national-index).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from crypto import atrest, certs
from crypto.envelope import Envelope, verify_signed_by_root
from crypto.errors import CryptoError
from election import bundle as B
from election.definition import ElectionDefinition, Station
from provisioning.bundle import file_entries, write_bundle
from provisioning.keyceremony import RootCA, issue_device

SPARES_DIR = "spares"
PASSPHRASES_FILE = "spare-passphrases.csv"
CERT_SUFFIX = "-signing-cert.pem"
# Files of the station's bundle that belong to its device, not to the station.
DEVICE_FILES = frozenset(
    {B.SIGNING_KEY_FILE, B.SIGNING_CERT_FILE, B.TLS_KEY_FILE, B.TLS_CERT_FILE, B.INDEX_KEY_FILE}
)


class SpareError(RuntimeError):
    """The spare cannot be made; the message says what to fix.  Nothing was written."""


@dataclass(frozen=True)
class Spare:
    station_id: str
    station_number: int
    device_id: str
    replaces: str  # the build's device of the station
    passphrase: str
    bundle_dir: Path
    cert_path: Path  # the signing certificate, for `shailoo central authorise-device`
    passphrases_file: Path


def make_spare(
    prov_dir: Path,
    root: RootCA,
    station_number: int,
    *,
    now: dt.datetime,
    out_dir: Path | None = None,
    secrets_file: Path | None = None,
    device_id: str | None = None,
) -> Spare:
    """Issue a spare device for station `station_number` of the build in `prov_dir`."""
    if now.tzinfo is None:
        raise SpareError("the time must carry a UTC offset")
    source = prov_dir / "bundles" / str(station_number)
    if not (source / B.MANIFEST_FILE).is_file():
        raise SpareError(
            f"no bundle for station {station_number} in {prov_dir / 'bundles'}: a spare is "
            "made from the station's bundle of `shailoo provision build`"
        )
    original = _signed_bundle(source, root)  # copy only what this root signed
    station = original.station
    device_id = device_id or f"spare-{station.id}-{secrets.token_hex(3)}"
    if not re.match(certs.ID_RE, device_id):
        raise SpareError(
            f"device id {device_id!r} is not a Shailoo id (letters, digits, '_', '.', '-'; "
            "at most 64)"
        )
    if device_id == original.device_id:
        raise SpareError(
            f"{device_id} is the station's own device: a spare needs a device id of its own"
        )
    out_dir = out_dir if out_dir is not None else prov_dir / SPARES_DIR
    secrets_file = secrets_file or prov_dir / "secrets" / PASSPHRASES_FILE
    final = out_dir / device_id
    cert_path = out_dir / f"{device_id}{CERT_SUFFIX}"
    if final.exists() or cert_path.exists():
        raise SpareError(f"{final} already exists: a device id is issued once")
    if _issued(secrets_file, device_id):
        raise SpareError(f"device {device_id} was already issued (see {secrets_file})")
    index_secret = _index_secret(prov_dir, source / B.INDEX_KEY_FILE, station_number)
    try:
        creds = issue_device(
            root,
            station_id=station.id,
            election_hash=original.definition.election_hash,
            now=now,
            until=dt.datetime.combine(original.definition.date, dt.time(23, 59), tzinfo=now.tzinfo),
            device_id=device_id,
        )
    except CryptoError as e:
        raise SpareError(f"device id {device_id!r} cannot be certified: {e}") from e

    files = {name: data for name, data in original.files.items() if name not in DEVICE_FILES}
    files.update(
        {
            B.SIGNING_KEY_FILE: creds.signing_key_pem,
            B.SIGNING_CERT_FILE: certs.cert_to_pem(creds.signing_cert),
            B.TLS_KEY_FILE: creds.tls_key_pem,
            B.TLS_CERT_FILE: certs.cert_to_pem(creds.tls_cert),
            B.INDEX_KEY_FILE: atrest.encrypt(
                index_secret, creds.passphrase, log2_n=atrest.MIN_LOG2_N
            ),  # random passphrase: a cheap KDF suffices, as in the build
        }
    )
    manifest = B.BundleManifest.model_validate(
        {**original.manifest.model_dump(), "device_id": device_id, "files": file_entries(files)}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_bundle(root, manifest, files, final, now)
    cert_path.write_bytes(files[B.SIGNING_CERT_FILE])
    _append_passphrase(secrets_file, station_number, device_id, creds.passphrase)
    return Spare(
        station_id=station.id,
        station_number=station_number,
        device_id=device_id,
        replaces=original.device_id,
        passphrase=creds.passphrase,
        bundle_dir=final,
        cert_path=cert_path,
        passphrases_file=secrets_file,
    )


@dataclass(frozen=True)
class _Original:
    manifest: B.BundleManifest
    definition: ElectionDefinition
    station: Station
    files: dict[str, bytes]  # every file the manifest lists, as signed

    @property
    def device_id(self) -> str:
        return self.manifest.device_id


def _signed_bundle(source: Path, root: RootCA) -> _Original:
    """The station's bundle, if this root signed its manifest and every file is as listed."""
    try:
        env = Envelope.from_bytes((source / B.MANIFEST_FILE).read_bytes())
        if env.kind != B.BUNDLE_KIND:
            raise SpareError(f"{source / B.MANIFEST_FILE} is a {env.kind}, not a bundle manifest")
        verify_signed_by_root(env, root.cert)
        manifest = B.BundleManifest.model_validate(env.body)
    except (CryptoError, ValidationError) as e:
        raise SpareError(
            f"the bundle {source} is not signed by this CEC root ({_first(e)}): a spare is "
            "made from the build's bundle with the root that signed it"
        ) from e
    files: dict[str, bytes] = {}
    for name, entry in sorted(manifest.files.items()):
        try:
            data = (source / name).read_bytes()
        except OSError as e:
            raise SpareError(f"{source / name} cannot be read: {e.strerror}") from e
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise SpareError(f"{source / name} has been changed since the CEC signed the bundle")
        files[name] = data
    try:
        definition = ElectionDefinition.from_json(files[B.ELECTION_FILE])
        station = definition.station(manifest.station_id)
    except (KeyError, ValueError) as e:
        raise SpareError(f"{source}: the election definition does not name the station") from e
    if definition.election_hash != manifest.election_hash:
        raise SpareError(f"{source}: the definition is not the election the CEC signed")
    return _Original(manifest, definition, station, files)


def _first(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _index_secret(prov_dir: Path, index_key: Path, station_number: int) -> bytes:
    """The national index key, opened with the build's device passphrase of the station."""
    table = prov_dir / "secrets" / "device-passphrases.csv"
    try:
        with table.open(newline="") as f:
            rows = {row["station"]: row["passphrase"] for row in csv.DictReader(f)}
    except (OSError, KeyError) as e:
        raise SpareError(f"cannot read the build's device passphrases {table}: {e}") from e
    passphrase = rows.get(str(station_number))
    if passphrase is None:
        raise SpareError(f"{table} has no passphrase for station {station_number}")
    try:
        return atrest.decrypt(index_key.read_bytes(), passphrase)
    except atrest.DecryptError as e:
        raise SpareError(
            f"the station's index key does not open with its passphrase in {table}: {e}"
        ) from e


def _issued(path: Path, device_id: str) -> bool:
    if not path.exists():
        return False
    with path.open(newline="") as f:
        return any(row.get("device_id") == device_id for row in csv.DictReader(f))


def _append_passphrase(path: Path, station_number: int, device_id: str, passphrase: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        if fresh:
            w.writerow(["station", "device_id", "passphrase"])
        w.writerow([station_number, device_id, passphrase])
