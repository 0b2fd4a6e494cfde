"""What a station bundle and the national index manifest say about themselves.

The CEC signs these bodies (as `crypto` envelopes of kind `station_bundle` and
`national_index`); a station refuses a bundle unless every file it holds is
listed here with the right hash and nothing else is present.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from election.definition import Frozen, Id

BUNDLE_KIND = "station_bundle"
INDEX_KIND = "national_index"
MANIFEST_FILE = "manifest.json"
HEX64 = r"^[0-9a-f]{64}$"

# Files every bundle carries (relative paths inside the bundle directory).
ELECTION_FILE = "election.json"
ROLL_FILE = "roll.jsonl"
TEMPLATES_FILE = "templates.npy"
TEMPLATES_META_FILE = "templates.json"
ROOT_CERT_FILE = "cec-root.pem"
CENTRAL_CERT_FILE = "cec-central.pem"  # signs the CEC's acknowledgements (not the root)
SIGNING_KEY_FILE = "device/signing-key.pem"
SIGNING_CERT_FILE = "device/signing-cert.pem"
TLS_KEY_FILE = "device/tls-key.pem"
TLS_CERT_FILE = "device/tls-cert.pem"
INDEX_KEY_FILE = "device/index-key.enc"
BROKER_FILE = "broker.json"
LAYOUTS_FILE = "ballots/layouts.json"  # election.ballot_layout.BallotLayouts, every style

INDEX_FILE = "index.bin"  # in the national-index directory, beside its manifest


class FileEntry(Frozen):
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0)


class IndexRef(FileEntry):
    entries: int = Field(ge=0)
    manifest_sha256: str = Field(pattern=HEX64)


class BundleManifest(Frozen):
    """The signed table of contents of one station's bundle."""

    format: Literal[1] = 1
    election_id: Id
    election_hash: str = Field(pattern=HEX64)
    station_id: Id
    station_number: int
    device_id: Id
    voters: int = Field(ge=0)
    enrolled: int = Field(ge=0)
    files: dict[str, FileEntry]
    national_index: IndexRef


class IndexManifest(Frozen):
    """The signed description of the national PIN index file."""

    format: Literal[1] = 1
    election_hash: str = Field(pattern=HEX64)
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0)
    entries: int = Field(ge=0)
    stations: int = Field(ge=1)


class BrokerSettings(Frozen):
    """Where a station sends its messages (MQTT over TLS with its device certificate)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8883, ge=1, le=65535)
    topic_prefix: str = "shailoo/v1"
