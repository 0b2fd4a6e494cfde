"""Accept a station bundle only if the CEC root we trust signed every byte of it.

The appliance runs nothing from a bundle it has not verified: a tampered file,
a file added or missing, another root's signature, another election, another
station's certificates, or a national index that is not the one the bundle
names are each refused with a sentence the operator can act on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from pydantic import ValidationError

from crypto import certs, envelope, keys
from election import bundle as B
from election.ballot_layout import BallotLayouts
from election.definition import ElectionDefinition, Station
from election.pin_index import PinIndex, PinIndexError


class BundleError(Exception):
    """The bundle is refused; the message says why and what to do."""


@dataclass
class VerifyCache:
    """What many bundles of one election share, verified once per run."""

    definitions: dict[str, ElectionDefinition] = field(default_factory=dict)
    indexes: dict[tuple[str, str], Path] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedBundle:
    path: Path
    manifest: B.BundleManifest
    definition: ElectionDefinition
    station: Station
    device_id: str
    index_path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def central_cert(self) -> x509.Certificate:
        """The CEC server's ack-signing certificate (checked against the root at verification)."""
        return certs.cert_from_pem(self.file(B.CENTRAL_CERT_FILE).read_bytes())

    def layouts(self) -> BallotLayouts:
        """Every ballot style of the election (checked against the election at verification)."""
        return BallotLayouts.model_validate_json(self.file(B.LAYOUTS_FILE).read_bytes())

    def open_index(self, passphrase: str) -> PinIndex:
        """The national PIN index, its key unlocked with the device passphrase."""
        from crypto import atrest

        secret = atrest.decrypt(self.file(B.INDEX_KEY_FILE).read_bytes(), passphrase)
        # Read, not mapped: ~50 MB at national scale, and no file stays open behind it.
        data = self.index_path.read_bytes()
        return PinIndex(data, secret, [s.id for s in self.definition.stations])


def default_index_dir(bundle_dir: Path) -> Path:
    """Where `provision build` puts the national index relative to a bundle."""
    return bundle_dir.parent.parent / "national-index"


def verify_bundle(
    bundle_dir: Path,
    *,
    root_cert: x509.Certificate,
    at: dt.datetime,
    expected_election_hash: str | None = None,
    index_dir: Path | None = None,
    cache: VerifyCache | None = None,
) -> VerifiedBundle:
    """Check the bundle against the trusted CEC root; return what it holds.

    `cache` lets one run that verifies many bundles parse the shared definition
    and hash the 50 MB national index once instead of once per bundle.
    """
    cache = cache if cache is not None else VerifyCache()
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir} is not a bundle directory")
    root_id = keys.key_id(root_cert.public_key())  # type: ignore[arg-type]
    env = _signed(bundle_dir / B.MANIFEST_FILE, B.BUNDLE_KIND, root_cert, root_id, "bundle")
    try:
        manifest = B.BundleManifest.model_validate(env.body)
    except ValidationError as e:
        raise BundleError(f"the bundle manifest is signed but malformed: {e}") from e
    if env.election != manifest.election_hash:
        raise BundleError("the manifest's envelope and body name different elections")

    _check_files(bundle_dir, manifest)

    definition_sha = manifest.files[B.ELECTION_FILE].sha256  # checked by _check_files
    definition = cache.definitions.get(definition_sha)
    if definition is None:
        definition = ElectionDefinition.from_json((bundle_dir / B.ELECTION_FILE).read_bytes())
        cache.definitions[definition_sha] = definition
    if definition.election_hash != manifest.election_hash:
        raise BundleError("the election definition does not hash to the election the CEC signed")
    if expected_election_hash and manifest.election_hash != expected_election_hash:
        raise BundleError(
            f"this bundle is for election {definition.id} ({manifest.election_hash[:12]}…), "
            f"not the election this device is set up for ({expected_election_hash[:12]}…). "
            "Ask the CEC for this election's bundle."
        )
    try:
        station = definition.station(manifest.station_id)
    except KeyError:
        raise BundleError(f"station {manifest.station_id} is not in the election") from None
    if station.number != manifest.station_number:
        raise BundleError("the manifest's station number does not match the definition")

    try:
        layouts = BallotLayouts.model_validate_json((bundle_dir / B.LAYOUTS_FILE).read_bytes())
    except ValidationError as e:
        raise BundleError(f"the ballot layouts are signed but malformed: {e}") from e
    if layouts.election_hash != manifest.election_hash:
        raise BundleError("the ballot layouts belong to another election")

    bundled_root = certs.cert_from_pem((bundle_dir / B.ROOT_CERT_FILE).read_bytes())
    if certs.fingerprint(bundled_root) != certs.fingerprint(root_cert):
        raise BundleError("the bundle carries a different CEC root certificate")
    purposes: tuple[tuple[str, certs.Purpose], ...] = (
        (B.SIGNING_CERT_FILE, "signing"),
        (B.TLS_CERT_FILE, "tls"),
    )
    for name, purpose in purposes:
        cert = certs.cert_from_pem((bundle_dir / name).read_bytes())
        try:
            ident = certs.verify_device_certificate(cert, root_cert, at=at, purpose=purpose)
        except certs.CertificateError as e:
            raise BundleError(f"{name}: {e}") from e
        if (ident.station_id, ident.device_id, ident.election_hash) != (
            station.id,
            manifest.device_id,
            manifest.election_hash,
        ):
            raise BundleError(f"{name} is bound to another station, device or election")
    central = certs.cert_from_pem((bundle_dir / B.CENTRAL_CERT_FILE).read_bytes())
    try:
        ident = certs.verify_device_certificate(central, root_cert, at=at, purpose="signing")
    except certs.CertificateError as e:
        raise BundleError(f"{B.CENTRAL_CERT_FILE}: {e}") from e
    if (ident.station_id, ident.election_hash) != (envelope.CEC_STATION, manifest.election_hash):
        raise BundleError(
            f"{B.CENTRAL_CERT_FILE} is not the CEC server's certificate for this election"
        )

    index_dir = index_dir or default_index_dir(bundle_dir)
    key = (str(index_dir.resolve()), manifest.national_index.manifest_sha256)
    index_path = cache.indexes.get(key)
    if index_path is None:
        index_path = _check_index(index_dir, manifest, root_cert, root_id)
        cache.indexes[key] = index_path
    return VerifiedBundle(bundle_dir, manifest, definition, station, manifest.device_id, index_path)


def _signed(
    path: Path, kind: str, root_cert: x509.Certificate, root_id: str, what: str
) -> envelope.Envelope:
    if not path.exists():
        raise BundleError(f"{path.name} is missing: this is not a complete {what}")
    try:
        env = envelope.Envelope.from_bytes(path.read_bytes())
    except envelope.EnvelopeError as e:
        raise BundleError(f"the {what} manifest is damaged: {e}") from e
    if env.kind != kind:
        raise BundleError(f"{path.name} is a {env.kind}, not a {kind}")
    try:
        envelope.verify_signed_by_root(env, root_cert)
    except envelope.BindingError as e:
        raise BundleError(
            f"the {what} is signed by another root ({env.device}), not the CEC root this "
            f"device trusts ({root_id}). Use a {what} from this CEC. ({e})"
        ) from e
    except envelope.SignatureError as e:
        raise BundleError(
            f"the {what} manifest's signature does not verify with the trusted CEC root: "
            "it was changed after signing or signed by another key"
        ) from e
    return env


def _check_files(bundle_dir: Path, manifest: B.BundleManifest) -> None:
    present = {
        p.relative_to(bundle_dir).as_posix()
        for p in bundle_dir.rglob("*")
        if p.is_file() or p.is_symlink()
    } - {B.MANIFEST_FILE}
    listed = set(manifest.files)
    if missing := sorted(listed - present):
        raise BundleError(f"file {missing[0]} is missing from the bundle")
    if extra := sorted(present - listed):
        raise BundleError(f"file {extra[0]} is in the bundle but not in its signed manifest")
    for name, entry in sorted(manifest.files.items()):
        path = bundle_dir / name
        if path.is_symlink():
            raise BundleError(f"file {name} is a symbolic link; bundles hold plain files")
        data = path.read_bytes()
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise BundleError(f"file {name} has been changed since the CEC signed the bundle")


def _check_index(
    index_dir: Path, manifest: B.BundleManifest, root_cert: x509.Certificate, root_id: str
) -> Path:
    manifest_path = index_dir / B.MANIFEST_FILE
    index_path = index_dir / B.INDEX_FILE
    if not index_path.exists() or not manifest_path.exists():
        raise BundleError(
            f"the national index is not in {index_dir}; copy it from the CEC media "
            "or name its directory with --index"
        )
    raw = manifest_path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != manifest.national_index.manifest_sha256:
        raise BundleError("the national index is not the one this bundle was built with")
    env = _signed(manifest_path, B.INDEX_KIND, root_cert, root_id, "national index")
    body = B.IndexManifest.model_validate(env.body)
    digest = hashlib.sha256()
    size = 0
    with index_path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if size != body.size or digest.hexdigest() != body.sha256:
        raise BundleError("the national index file has been changed since the CEC signed it")
    if body.sha256 != manifest.national_index.sha256:
        raise BundleError("the national index is not the one this bundle was built with")
    return index_path


__all__ = ["BundleError", "PinIndexError", "VerifiedBundle", "verify_bundle"]
