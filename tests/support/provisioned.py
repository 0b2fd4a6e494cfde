"""A small election provisioned end to end with the real pipeline, for tests that need bundles."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from central.kit import CentralKit, load_kit
from election.bundle import BrokerSettings
from election.definition import ElectionDefinition
from provisioning.bundle import BuildSummary, build_bundles
from provisioning.keyceremony import RootCA, create_root
from provisioning.roll import validate_roll
from provisioning.sample import Kind, generate_sample

REPO = Path(__file__).resolve().parents[2]
FACES = Path(os.environ.get("SHAILOO_FACES", REPO.parent / "shared" / "data" / "faces"))
NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=6)))
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Provisioned:
    definition: ElectionDefinition
    root: RootCA
    cec_dir: Path
    out_dir: Path
    summary: BuildSummary

    @property
    def bundles_dir(self) -> Path:
        return self.out_dir / "bundles"

    @property
    def index_dir(self) -> Path:
        return self.out_dir / "national-index"

    def bundle(self, number: int) -> Path:
        return self.bundles_dir / str(number)

    @property
    def central_dir(self) -> Path:
        return self.out_dir / "central"

    def central_passphrase(self) -> str:
        return (self.out_dir / "secrets" / "central-passphrase.txt").read_text().strip()

    def central_kit(self) -> CentralKit:
        return load_kit(self.central_dir, self.central_passphrase(), at=NOW)

    def passphrases(self) -> dict[int, str]:
        lines = (self.out_dir / "secrets" / "device-passphrases.csv").read_text().splitlines()
        return {int(r.split(",")[0]): r.split(",")[2] for r in lines[1:]}


def provision(
    base: Path, *, stations: int = 4, voters: int = 25, seed: int = 7, kind: Kind = "parliament"
) -> Provisioned:
    sample = generate_sample(
        base / "sample",
        stations=stations,
        voters_per_station=voters,
        seed=seed,
        kind=kind,
        faces_dir=FACES,  # type: ignore[arg-type]
    )
    validate_roll(sample.roll_path, sample.definition, sample.photos_dir, base / "roll")
    root = create_root(base / "cec", PASSPHRASE, now=NOW)
    summary = build_bundles(
        sample.definition,
        base / "roll",
        root,
        base / "provisioned",
        broker=BrokerSettings(),
        now=NOW,
        workers=2,
    )
    return Provisioned(sample.definition, root, base / "cec", base / "provisioned", summary)
