"""A polling station started from a provisioned bundle, with real photos as camera frames."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biometrics.face import CAMERA_MAX_SIDE, downscale, load_rgb
from devices.combo_reader import Card
from election import bundle as B
from provisioning.sample import sample_faces
from station.appliance import Appliance
from station.facecheck import FaceCheck
from station.state import Mode
from tests.support.clock import FakeClock
from tests.support.provisioned import Provisioned

CHAIR_CODE = "2468"


@dataclass(frozen=True)
class Voter:
    pin: str
    record: dict[str, Any]
    person: str | None  # whose real face the template is

    @property
    def card(self) -> Card:
        r = self.record
        return Card(self.pin, r["document_no"], r["last_name"], r["first_name"],
                    r["patronymic"] or "", dt.date.fromisoformat(r["birth_date"]))  # fmt: skip


class StationKit:
    """The voters of one provisioned station and real frames of their faces."""

    def __init__(self, p: Provisioned, number: int) -> None:
        self.p = p
        self.number = number
        self.bundle = p.bundle(number)
        self.passphrase = p.passphrases()[number]
        person_of_hash, self.probes = sample_faces(p.out_dir.parent / "sample")
        self.voters = [
            Voter(v["pin"], v, person_of_hash.get(v["template"] or ""))
            for v in map(json.loads, (self.bundle / B.ROLL_FILE).read_text().splitlines())
        ]

    def enrolled(self, *, with_probe: bool = True) -> list[Voter]:
        return [
            v for v in self.voters if v.person and (not with_probe or self.probes.get(v.person))
        ]

    def without_biometrics(self) -> list[Voter]:
        return [v for v in self.voters if v.person is None]

    def frame(self, person: str, i: int = 0) -> np.ndarray:
        image = load_rgb(self.probes[person][i].read_bytes())
        assert image is not None
        return _as_camera_frame(image)

    def impostor_frame(self, voter: Voter) -> np.ndarray:
        other = next(p for p, probes in sorted(self.probes.items()) if p != voter.person and probes)
        return self.frame(other)

    def start(self, data_dir: Path, clock: FakeClock, *, mode: Mode = Mode.LIVE) -> Appliance:
        return Appliance.start(
            data_dir,
            self.bundle,
            root_cert=self.p.root.cert,
            passphrase=self.passphrase,
            matcher=FaceCheck().check,
            clock=clock,
            chair_code=CHAIR_CODE,
            mode=mode,
            index_dir=self.p.index_dir,
        )


def _as_camera_frame(image: np.ndarray) -> np.ndarray:
    """Downscaled as the station camera does it."""
    return np.ascontiguousarray(downscale(image, CAMERA_MAX_SIDE)[0])
