"""Child process for the kill -9 test: marks one voter, says so, then waits to be killed."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from biometrics.face import CAMERA_MAX_SIDE, downscale, load_rgb
from crypto import certs
from devices.combo_reader import Card
from station.appliance import Appliance
from station.facecheck import FaceCheck
from station.state import State


def main() -> None:
    data, bundle, root, index, passphrase, probe, pin, date, code = sys.argv[1:10]
    day = dt.date.fromisoformat(date)
    now = dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.timezone(dt.timedelta(hours=6)))
    app = Appliance.start(
        Path(data),
        Path(bundle),
        root_cert=certs.cert_from_pem(Path(root).read_bytes()),
        passphrase=passphrase,
        matcher=FaceCheck().check,
        clock=lambda: now,
        chair_code=code,
        index_dir=Path(index),
    )
    if app.state is State.SETUP:
        app.open_polls("chair")
    row = app.store.one("SELECT * FROM voters WHERE pin = ?", (pin,))
    assert row is not None
    app.desk.card_read(
        Card(
            pin,
            row["document_no"],
            row["last_name"],
            row["first_name"],
            row["patronymic"],
            dt.date.fromisoformat(row["birth_date"]),
        )
    )
    image = load_rgb(Path(probe).read_bytes())
    assert image is not None
    attempt = app.desk.face_attempt(downscale(image, CAMERA_MAX_SIDE)[0])
    print(attempt.status.upper(), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
