"""Child process for the kill -9 tests of accepting a sheet.

Runs a real station (appliance + Scanner) on the simulated box whose PTY the
parent test owns, and kills itself with SIGKILL at the named step:
  after_hold     the record is held durably, ACCEPT not yet sent
  after_count    never: runs normally (the parent kills it from outside instead)
  before_count   SHEET_DROPPED arrived, the count not yet committed
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from crypto import certs
from station.appliance import Appliance
from station.asu import AsuSettings, Decision, SheetCounted, SheetImage
from station.facecheck import FaceCheck
from station.scanning import Scanner
from station.state import State

FAST = AsuSettings(status_timeout=0.3, status_poll=0.05, chunk_timeout=0.3, drop_timeout=1.0,
                   return_timeout=1.0)  # fmt: skip


def main() -> None:
    data, bundle, root, index, passphrase, date, code, link, kill_at = sys.argv[1:10]
    now = dt.datetime.combine(dt.date.fromisoformat(date), dt.time(9, 0),
                              tzinfo=dt.timezone(dt.timedelta(hours=6)))  # fmt: skip
    app = Appliance.start(
        Path(data), Path(bundle), root_cert=certs.cert_from_pem(Path(root).read_bytes()),
        passphrase=passphrase, matcher=FaceCheck().check, clock=lambda: now,
        chair_code=code, index_dir=Path(index),
    )  # fmt: skip
    if app.state is State.SETUP:
        app.open_polls("chair")

    class Dying(Scanner):
        def decide(self, sheet: SheetImage) -> Decision:
            d = super().decide(sheet)
            if kill_at == "after_hold" and d.action == "accept":
                os.kill(os.getpid(), signal.SIGKILL)
            return d

        def on_event(self, event: Any) -> None:
            if kill_at == "before_count" and isinstance(event, SheetCounted):
                os.kill(os.getpid(), signal.SIGKILL)
            super().on_event(event)

    scanner = Dying(app, link, settings=FAST)
    scanner.start()
    print("READY", flush=True)
    while True:
        time.sleep(0.05)
        print(f"SHEETS {app.box.sheets()} PENDING {len(app.box.pending())}", flush=True)


if __name__ == "__main__":
    main()
