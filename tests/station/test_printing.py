"""Printed reports carry their signed envelope in QR codes that read back and verify."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from crypto import certs, keys
from crypto.envelope import Envelope
from crypto.qrchain import parse_part, verify_parts
from election import bundle as B
from station.appliance import Appliance
from station.printing import qr_texts, render_report_pdf, render_report_png
from station.qrread import main_verify_qr, read_qr_texts
from station.state import Mode
from tests.support.clock import FakeClock, election_day
from tests.support.station import CHAIR_CODE, StationKit


@pytest.fixture(scope="module")
def closed(
    kit: StationKit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Appliance, Envelope, Envelope]]:
    clock: FakeClock = election_day(kit.p.definition.date, 7, 30)
    app = kit.start(tmp_path_factory.mktemp("station"), clock, mode=Mode.TEST)
    clock.set(8)
    app.open_polls("chair")
    clock.set(20, 0)
    ident = app.close_polls("chair", CHAIR_CODE)
    asu = app.signer.messages("asu_report")[-1]
    yield app, ident, asu
    app.close()


@pytest.fixture(scope="module")
def cert_pem(kit: StationKit) -> bytes:
    return (kit.bundle / B.SIGNING_CERT_FILE).read_bytes()


@pytest.fixture(scope="module")
def root_pem(kit: StationKit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("root") / "root.pem"
    path.write_bytes(certs.cert_to_pem(kit.p.root.cert))
    return path


def read_all(paths: list[Path]) -> list[str]:
    return [t for p in paths for t in read_qr_texts(p)]


def test_a4_identification_report_reads_back_to_the_exact_signed_bytes(
    closed: tuple[Appliance, Envelope, Envelope], cert_pem: bytes, kit: StationKit, tmp_path: Path
) -> None:
    app, ident, _ = closed
    pdf = render_report_pdf(ident, cert_pem, app.definition, layout="a4", out=tmp_path / "r.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    pngs = render_report_png(ident, cert_pem, app.definition, layout="a4", out=tmp_path / "r.png")
    texts = read_all(pngs)
    assert sorted(texts) == sorted(qr_texts(ident, cert_pem))
    report = verify_parts(texts, kit.p.root.cert)
    assert report.envelope_bytes == ident.to_bytes()
    assert report.identity.station_id == app.station.id


def test_thermal_asu_report_verifies_with_the_command(
    closed: tuple[Appliance, Envelope, Envelope],
    cert_pem: bytes,
    root_pem: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, _, asu = closed
    out = tmp_path / "asu.png"
    [png] = render_report_png(asu, cert_pem, app.definition, layout="thermal80", out=out)
    with Image.open(png) as im:
        assert im.width == 630  # 80 mm at 200 dpi
    render_report_pdf(asu, cert_pem, app.definition, layout="thermal80", out=tmp_path / "a.pdf")
    assert main_verify_qr([str(png), "--root", str(root_pem)]) == 0
    said = capsys.readouterr().out
    assert f"OK  asu_report station {app.station.id} seq {asu.seq}" in said
    assert "sheets: 0" in said


def test_a_blanked_qr_code_is_named_as_the_missing_part(
    closed: tuple[Appliance, Envelope, Envelope],
    cert_pem: bytes,
    root_pem: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, ident, _ = closed
    [png] = render_report_png(
        ident, cert_pem, app.definition, layout="thermal80", out=tmp_path / "t.png"
    )
    with Image.open(png) as im:
        img = im.convert("L")
    hit = next(r for r in zxingcpp.read_barcodes(img) if parse_part(r.text).index == 1)
    pos = hit.position
    xs = [pos.top_left.x, pos.top_right.x, pos.bottom_left.x, pos.bottom_right.x]
    ys = [pos.top_left.y, pos.top_right.y, pos.bottom_left.y, pos.bottom_right.y]
    ImageDraw.Draw(img).rectangle((min(xs) - 4, min(ys) - 4, max(xs) + 4, max(ys) + 4), fill=255)
    img.save(png)
    total = parse_part(hit.text).total
    assert main_verify_qr([str(png), "--root", str(root_pem)]) == 2
    assert f"missing part 1 of {total}" in capsys.readouterr().out


def test_a_report_checked_against_another_root_fails(
    closed: tuple[Appliance, Envelope, Envelope],
    cert_pem: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, ident, _ = closed
    now = dt.datetime.now(dt.UTC)
    other = certs.make_root(
        keys.generate_signing_key(),
        not_before=now - dt.timedelta(days=400),
        not_after=now + dt.timedelta(days=400),
    )
    (tmp_path / "other.pem").write_bytes(certs.cert_to_pem(other))
    [png] = render_report_png(
        ident, cert_pem, app.definition, layout="thermal80", out=tmp_path / "t.png"
    )
    assert main_verify_qr([str(png), "--root", str(tmp_path / "other.pem")]) == 2
    assert "not signed by this root" in capsys.readouterr().out


def test_a_report_printed_with_another_stations_certificate_fails(
    closed: tuple[Appliance, Envelope, Envelope],
    kit: StationKit,
    root_pem: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, ident, _ = closed
    other_station = kit.p.definition.stations[1].number
    other_cert = (kit.p.bundle(other_station) / B.SIGNING_CERT_FILE).read_bytes()
    [png] = render_report_png(
        ident, other_cert, app.definition, layout="thermal80", out=tmp_path / "t.png"
    )
    assert main_verify_qr([str(png), "--root", str(root_pem)]) == 2
    assert "does not match the certificate" in capsys.readouterr().out
