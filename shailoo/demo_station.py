"""The station part of the demo: one polling station's day at the identification desk.

A scripted queue of voters goes through the simulated combo reader (a real
pseudo-terminal and the real driver) and the camera (real photos of each
voter's person), the real 1:1 face match and the station's own database; the
commission admits by document, the polls close at 20:00 and the final
identification report is signed.  Each step prints what the operator's screen
says, in Kyrgyz and Russian.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from crypto import certs
from devices.combo_reader import Card, ErrorCode
from election import bundle as B
from firmware_sim.combo_reader import ComboReaderSim
from provisioning.sample import sample_faces
from station.appliance import Appliance
from station.camera import PhotoFrames
from station.facecheck import FaceCheck
from station.runtime import StationRuntime
from station.uplink import Uplink

CHAIR_CODE = "2468"
BISHKEK = dt.timezone(dt.timedelta(hours=6))


@dataclass
class _Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class DemoStation:
    """The station after its day: still running, so its operator screen can be served."""

    runtime: StationRuntime
    reader: ComboReaderSim

    def stop(self) -> None:
        self.runtime.stop()
        self.reader.stop()
        self.runtime.appliance.close()


def run_station_day(
    out: Path, *, queue_extra: int = 12, broker: tuple[str, int] | None = None
) -> DemoStation:
    """Run the scripted day at the first station; it is left running.

    With `broker`, the station's uplink sends every signed message to the CEC
    through it and the day ends when the CEC has acknowledged them all.
    """
    prov, sample = out / "provisioned", out / "sample"
    bundles = sorted((prov / "bundles").iterdir(), key=lambda d: int(d.name))
    here, elsewhere = bundles[0], bundles[1]
    passphrase = _passphrases(prov)[int(here.name)]
    person_of, probes = sample_faces(sample)
    definition_date = json.loads((here / B.ELECTION_FILE).read_text())["date"]
    clock = _Clock(
        dt.datetime.combine(dt.date.fromisoformat(definition_date), dt.time(7, 40), tzinfo=BISHKEK)
    )
    app = Appliance.start(
        out / "station" / "data",
        here,
        root_cert=certs.cert_from_pem((out / "cec" / "root-cert.pem").read_bytes()),
        passphrase=passphrase,
        matcher=FaceCheck().check,
        clock=clock,
        chair_code=CHAIR_CODE,
        index_dir=prov / "national-index",
    )
    voters = [json.loads(x) for x in (here / B.ROLL_FILE).read_text().splitlines()]
    # voters at the desk: enrolled, with a probe photo, not on the mobile-box list
    enrolled = [
        v
        for v in voters
        if probes.get(person_of.get(v["template"] or "", "")) and not v["home_vote"]
    ]
    bare = [v for v in voters if v["biometrics"] == "none" and not v["home_vote"]]
    other = json.loads((elsewhere / B.ROLL_FILE).read_text().splitlines()[0])

    sim = ComboReaderSim(out / "station" / "ttyREADER", serial_number="KG-DEMO-1")
    sim.start()
    uplink = None
    if broker is not None:
        uplink = Uplink.from_bundle(
            app.store, app.bundle, passphrase, clock=clock, host=broker[0], port=broker[1]
        )
    runtime = StationRuntime(
        app, reader_path=sim.device_path, camera=None, clock=clock, uplink=uplink
    )
    runtime.start()
    _wait(lambda: runtime.screen()["reader"]["state"] == "connected", "reader connects")

    def person(v: dict[str, Any]) -> str:
        return person_of[v["template"]]

    def face(p: str) -> None:
        runtime.camera = PhotoFrames([probes[p][0]], loop=True)

    def last_card_read() -> int:
        reads = [e["seq"] for e in runtime.events(limit=50) if e["name"] == "card_read"]
        return max(reads, default=0)

    def card(v: dict[str, Any], *, quiet: bool = False) -> None:
        before = last_card_read()
        sim.insert_card(_card(v))
        # the desk's result is set under the same lock that logs the read
        _wait(lambda: last_card_read() > before, "card read")
        if not quiet:
            _show("card", runtime.screen()["result"])
        sim.remove_card()

    print(
        f"\nStation {app.station.number} ({app.station.address.ru}), "
        f"{len(voters)} voters on the roll; chair's code {CHAIR_CODE} (demo only)"
    )
    clock.now = clock.now.replace(hour=8, minute=0)
    runtime.open_polls()
    zero = _print(app, out, "asu_report", "asu-zero-report")
    print(
        "08:00 polls open: the box's zero report (every counter 0) and the first "
        f"identification report signed; zero report printed to {zero}"
    )

    decision_ms: list[float] = []

    def genuine_voter(v: dict[str, Any], at: tuple[int, int], *, quiet: bool = False) -> None:
        clock.now = clock.now.replace(hour=at[0], minute=at[1])
        face(person(v))
        started = time.perf_counter()
        card(v, quiet=quiet)
        result = runtime.capture_face()
        decision_ms.append((time.perf_counter() - started) * 1000)
        _show("face", result, short=quiet)
        runtime.ballot_issued()

    a, b = enrolled[0], enrolled[1]
    print("\n-- a voter registered here; the camera sees the voter")
    genuine_voter(a, (8, 12))
    print("\n-- the same card again in the afternoon")
    clock.now = clock.now.replace(hour=15, minute=3)
    card(a)
    print("\n-- a voter of another station")
    card(other)
    print("\n-- a card whose PIN is on no roll in the country")
    card(
        {
            "pin": "21212199000077",
            "document_no": "ID0000077",
            "last_name": "Белгисиз",
            "first_name": "Адам",
            "patronymic": "",
            "birth_date": "1990-12-21",
        }
    )
    print("\n-- someone else in front of the camera: three attempts, then the commission")
    clock.now = clock.now.replace(hour=10, minute=40)
    face(next(p for p in sorted(probes) if p != person(b) and probes[p]))
    card(b)
    for _ in range(3):
        _show("face", runtime.capture_face())
    _show("admit", runtime.admit(CHAIR_CODE, "elderly_or_worn", "chair"))
    runtime.ballot_issued()
    if bare:
        print("\n-- a voter enrolled without a usable photo: admitted by document")
        card(bare[0])
        _show("admit", runtime.admit(CHAIR_CODE, "no_biometrics_enrolled", "chair"))
        runtime.ballot_issued()
    print("\n-- the reader's own errors and noise on the serial line")
    sim.card_error(ErrorCode.CHIP_ERROR)
    _wait(lambda: runtime.screen()["result"]["outcome"] == "card_unreadable", "card error")
    _show("reader", runtime.screen()["result"])
    sim.send_raw(b"\xa5\x00\x05\x01garbage-without-crc" + b"\x00" * 8)
    mobile = runtime.mobile_list()
    if mobile:
        print("\n-- the mobile ballot box returns; the chair marks its voters")
        for m in mobile[:2]:
            runtime.mark_mobile(m["ref"], CHAIR_CODE)
            print(f"   marked {m['last_name']} {m['first_name']} ({m['birth_year']})")
    print(f"\n-- {queue_extra} more voters through reader and camera")
    for i, v in enumerate(enrolled[2 : 2 + queue_extra]):
        genuine_voter(v, (11 + i // 2, (i % 2) * 30), quiet=True)
    count_stack(app, out, clock)
    clock.now = clock.now.replace(hour=20, minute=0)
    closed_at = time.perf_counter()
    runtime.close_polls(CHAIR_CODE)
    counts = runtime.screen()["counts"]
    final = app.signer.messages("identification_report")[-1]
    printed = [
        _print(app, out, "asu_report", "asu-final-report"),
        _print(app, out, "identification_report", "identification-final-report"),
    ]
    print(
        f"\n20:00 polls closed: final identification report signed (message {final.seq}, "
        f"hash {final.hash[:16]}...)"
    )
    print(
        f"   voted {counts['voted']} of {counts['registered']}: by face "
        f"{counts['identified_by_face']}, by document {counts['admitted_by_document']} "
        f"{_nonzero(counts['admitted_by_document_by_reason'])}, mobile box "
        f"{counts['mobile_box']}; refused {_nonzero(counts['refused'])}"
    )
    later = sorted(decision_ms[1:])  # the first one also loads the face model
    print(
        f"   decision time card -> 'issue the ballot' over the reader, camera, match and "
        f"commit: median {later[len(later) // 2]:.0f} ms, max {later[-1]:.0f} ms "
        f"({len(later)} voters; `make bench` measures it properly)"
    )
    log_path = out / "station" / "event-log-nist-1500-101.json"
    log_path.write_text(json.dumps(runtime.export_nist(), ensure_ascii=False, indent=1))
    (out / "station" / "participation.csv").write_text(runtime.participation_csv())
    print(
        f"   printed with their QR codes: {', '.join(str(p) for p in printed)} "
        "(check one with `shailoo verify-qr PNG --root cec/root-cert.pem`)"
    )
    broken = app.log.first_break()
    chain = "intact" if broken is None else f"BROKEN at {broken}"
    print(
        f"   event log: {len(app.log.entries())} entries, hash chain {chain}; "
        f"exported to {log_path}"
    )
    if uplink is not None:
        _wait(lambda: uplink.status().pending == 0, "the CEC acknowledges every message", 60.0)
        acked = max(uplink.outbox.acked_at(m.seq) or clock.now for m in app.signer.messages())
        print(
            f"   delivered: all {len(app.signer.messages())} signed messages acknowledged by "
            f"the CEC; the closing reports were acknowledged "
            f"{(time.perf_counter() - closed_at):.1f} s after the close, printing included "
            f"(last ack recorded at {acked.astimezone(BISHKEK):%H:%M})"
        )
    runtime.camera = None
    return DemoStation(runtime, sim)


def count_stack(app: Appliance, out: Path, clock: _Clock, sheets: int = 40) -> None:
    """The automatic ballot box counts a stack of marked, scanned sheets (with their truth)."""
    from firmware_sim.asu import AsuSim
    from firmware_sim.ballot_marks import ScanDefects, make_deck
    from firmware_sim.cli import station_styles
    from provisioning.ballots import render_png
    from station.asu import AsuSettings
    from station.scanning import Scanner

    layouts, styles = station_styles(app.bundle.path)
    deck = list(
        make_deck(
            layouts,
            styles,
            sheets,
            seed=2026,
            render=lambda sid: render_png(layouts, sid),
            defects=ScanDefects.mild(),
        )
    )
    print(
        f"\n-- the ballot box (ASU) counts a stack of {len(deck)} marked sheets "
        f"({', '.join(styles)}): people's ticks, crosses, fills, faint and stray marks, "
        "scanned with skew, blur and noise"
    )
    clock.now = clock.now.replace(hour=19, minute=30)
    started = time.perf_counter()
    link = out / "station" / "ttyASU"
    with AsuSim(link, serial_number="ASU-DEMO-1") as sim:
        scanner = Scanner(app, link, settings=AsuSettings(status_poll=0.05))
        scanner.start()
        try:
            import cv2

            images = {}
            for i, sheet in enumerate(deck):
                ok, png = cv2.imencode(".png", sheet.image)
                images[i] = png.tobytes()
                sim.feed(images[i], i)
            _wait(lambda: len(sim.dropped) + len(sim.returned) == len(deck), "stack", 120)
            back = list(sim.returned)
            returns = app.box.returns()
            print(
                f"   {len(sim.dropped)} sheets fell into the box; {len(back)} given back "
                f"to the voter with the reason shown: {_nonzero(returns)}"
            )
            for i in back:  # each voter casts the returned sheet as it is
                scanner.cast_as_is()
                sim.feed(images[i], i)
                _wait(partial(_fell, sim, i), "cast as is")
            print(
                f"   the voters cast those {len(back)} as they are: their flawed contests "
                "count as invalid, never as a vote"
            )
        finally:
            scanner.stop()
    seconds = time.perf_counter() - started
    verdicts: dict[str, int] = {}
    for i, sheet in enumerate(deck):  # the same reader, sheet by sheet, against the truth
        reading = {c.contest_id: c for c in scanner.read(images[i]).contests}
        for t in sheet.truth.contests:
            r = reading.get(t.contest_id)
            verdict = _verdict(
                t.status.value,
                t.option_id,
                r.status.value if r else "none",
                r.option_id if r else None,
            )
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
    for contest in app.box.contests:
        got = app.box.tallies()[contest.id]
        top = sorted(((v, k) for k, v in got.votes.items() if v), reverse=True)[:3]
        print(
            f"   {contest.id}: {got.ballots} ballots, {got.invalid} invalid "
            f"{_nonzero(got.invalid_by_reason)}; most votes: "
            f"{', '.join(f'{k} {v}' for v, k in top)}"
        )
    print(f"   each contest read against the sheets' truth: {_nonzero(verdicts)}")
    problems = app.box.consistency_problems()
    agree = "yes" if not problems else "; ".join(problems)
    print(
        f"   counters agree with the ballot records: {agree}; {len(deck)} sheets in "
        f"{seconds:.1f} s through the serial line, reader and count"
    )


def _fell(sim: Any, truth: int) -> bool:
    return truth in sim.dropped


def _verdict(truth: str, truth_option: str | None, read: str, read_option: str | None) -> str:
    if truth == read and truth_option == read_option:
        return "agrees"
    if truth == "valid" and read == "marginal":
        return "valid sent back as marginal (voter may correct)"
    if truth != "valid" and read == "valid":
        return "ERROR: counted a vote the voter did not make clearly"
    if truth == "valid" and read == "valid":
        return "ERROR: another option read"
    return f"{truth} read as {read}"


def _print(app: Appliance, out: Path, kind: str, name: str) -> Path:
    """The latest signed report of this kind as an A4 PDF and PNG pages with QR codes."""
    from station.printing import render_report_pdf, render_report_png

    env = app.signer.messages(kind)[-1]
    cert = app.bundle.file(B.SIGNING_CERT_FILE).read_bytes()
    pdf = out / "station" / f"{name}.pdf"
    render_report_pdf(env, cert, app.definition, layout="a4", out=pdf)
    render_report_png(env, cert, app.definition, layout="a4", out=pdf.with_suffix(".png"))
    return pdf


def _card(v: dict[str, Any]) -> Card:
    return Card(
        v["pin"],
        v["document_no"],
        v["last_name"],
        v["first_name"],
        v.get("patronymic") or "",
        dt.date.fromisoformat(v["birth_date"]),
    )


def _show(what: str, result: dict[str, Any], *, short: bool = False) -> None:
    voter = result.get("voter") or {}
    who = f"{voter.get('last_name', '')} {voter.get('first_name', '')}".strip()
    line = f"   [{what:6}] {result['outcome']:22} {who:28}"
    if short:
        print(line)
        return
    pad = " " * 12
    print(f"{line}\n{pad}ky: {result['message']['ky']}\n{pad}ru: {result['message']['ru']}")


def _nonzero(d: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in d.items() if v]
    return "(" + ", ".join(parts) + ")" if parts else "(none)"


def _passphrases(prov: Path) -> dict[int, str]:
    with (prov / "secrets" / "device-passphrases.csv").open() as f:
        return {int(r["station"]): r["passphrase"] for r in csv.DictReader(f)}


def _wait(pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo: timed out waiting for: {what}")
        time.sleep(0.01)
