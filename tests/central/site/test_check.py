""" "Check a report": a photo of a printed report (station/printing.py's own PNG) verifies and
sits beside the published numbers; a forged or altered one is refused; bad uploads get a 4xx."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from crypto.envelope import Envelope
from station.printing import qr_texts, render_report_png
from tests.central.fake_stations import FakeStation
from tests.central.site.support import (
    Election,
    cert_pem,
    device,
    parse,
    png_bytes,
    run,
    site,
)

Client = TestClient[Any, Any]


def _printed(e: Election, number: int, env: Envelope, out: Path) -> bytes:
    """The report as the station prints it (thermal roll, 200 dpi), photographed perfectly."""
    [png] = render_report_png(env, cert_pem(e.p, number), e.definition, layout="thermal80", out=out)
    return png.read_bytes()


def _photos(*files: tuple[str, bytes, str]) -> FormData:
    form = FormData()
    for name, data, media in files:
        form.add_field("photo", data, filename=name, content_type=media)
    return form


def test_a_photo_of_a_printed_report_verifies_and_matches_the_published_numbers(
    published: Election, tmp_path: Path
) -> None:
    ident = _printed(published, 1001, published.ident[1001], tmp_path / "ident.png")
    asu = _printed(published, 6001, published.asu[6001], tmp_path / "asu.png")

    async def scenario(client: Client) -> None:
        r = await client.post("/en/check", data=_photos(("door.png", ident, "image/png")))
        text = await r.text()
        assert r.status == 200, text[-2000:]
        page = parse(text)
        assert 'data-verified="true"' in text and 'data-verified="false"' not in text
        assert "signed by the device of station No. 1001" in text
        assert page.testids["check-received"] == "The CEC received exactly this message."
        lines = text.split('id="report-0-lines"')[1].split("</table>")[0]
        assert "DIFFERS" not in lines and lines.count(">same<") == 4
        assert r.headers["Cache-Control"] == "no-store"

        r = await client.post("/ru/check", data=_photos(("asu.png", asu, "image/png")))
        text = await r.text()
        assert r.status == 200 and "Подпись верна" in text
        lines = text.split('id="report-0-lines"')[1].split("</table>")[0]
        assert "РАСХОДИТСЯ" not in lines
        assert lines.count(">совпадает<") == sum(
            2 + len(t["votes"]) for t in published.asu[6001].body["tallies"]
        )

    run(site(published, kit_dir=published.p.central_dir), scenario)


def test_a_forged_or_altered_report_is_refused(published: Election, tmp_path: Path) -> None:
    real = published.ident[1001]
    forger = FakeStation(published.definition, real.station)  # another key, same device id
    forger.device = real.device
    forger.seq, forger.prev = real.seq, real.prev
    forged = forger.at(20).ident_report("final", {"08": 1, "12": 24})
    forged_png = _printed(published, 1001, forged, tmp_path / "forged.png")
    texts = qr_texts(real, cert_pem(published.p, 1001))
    head, content = texts[1].split("\n", 1)
    changed = content.replace('"voted":', '"voted":1', 1)  # 18 voters become 118
    altered = [texts[0], head + "\n" + changed, *texts[2:]]

    async def scenario(client: Client) -> None:
        r = await client.post("/en/check", data=_photos(("forged.png", forged_png, "image/png")))
        text = await r.text()
        assert r.status == 422
        assert 'data-verified="false"' in text and "The report did NOT verify" in text
        assert "signature" in parse(text).testids["check-error"].lower()

        r = await client.post("/en/check", data={"text": "\n\n".join(altered)})
        text = await r.text()
        assert r.status == 422 and "is altered" in parse(text).testids["check-error"]

        r = await client.post(
            "/api/v1/check", data="\n".join(altered), headers={"Content-Type": "text/plain"}
        )
        body = await r.json()
        assert r.status == 422 and body["ok"] is False
        assert body["reports"][0]["verified"] is False

    run(site(published, kit_dir=published.p.central_dir), scenario)


def test_the_api_compares_a_pasted_report_and_says_if_the_cec_holds_it(
    published: Election,
) -> None:
    p = published.p
    asu = published.asu[2001]
    # a report 7001 signed but never sent, and one 1001 signed with a number already used
    late = device(p, 7001)
    late.seq, late.prev = len(published.signed[7001]), published.signed[7001][-1].hash
    unsent = late.at(20).ident_report("final", {"09": 3, "15": 4})
    again = device(p, 1001)
    again.seq, again.prev = 2, published.signed[1001][1].hash
    conflicting = again.at(14).turnout(11)

    async def scenario(client: Client) -> None:
        pasted = "\n".join(qr_texts(asu, cert_pem(p, 2001)))
        r = await client.post("/api/v1/check", data=pasted, headers={"Content-Type": "text/plain"})
        body = await r.json()
        assert r.status == 200 and body["ok"] and body["published_version"] == 2
        [report] = body["reports"]
        assert report["verified"] and report["received"] == "same" and report["final"]
        assert report["report"]["number"] == 2001 and report["body"] == asu.body
        assert all(line["same"] is True for line in report["lines"])
        assert len(report["lines"]) == sum(2 + len(t["votes"]) for t in asu.body["tallies"])

        both = "\n".join(
            qr_texts(unsent, cert_pem(p, 7001)) + qr_texts(conflicting, cert_pem(p, 1001))
        )
        r = await client.post("/en/check", data={"text": both})
        text = await r.text()
        assert r.status == 200 and text.count('data-verified="true"') == 2
        assert "The CEC has not received this message yet." in text
        assert "the CEC holds a DIFFERENT message with this number" in text

    run(site(published, kit_dir=published.p.central_dir), scenario)


def _jpeg_without_codes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (240, 240, 240)).save(buf, format="JPEG")
    return buf.getvalue()


def test_bad_uploads_get_a_clear_4xx(published: Election) -> None:
    async def scenario(client: Client) -> None:
        cases: list[tuple[Any, int, str]] = [
            (FormData({"text": ""}), 400, "No photo and no text"),
            (_photos(("notes.txt", b"hello, not an image", "text/plain")), 400, "cannot be read"),
            (_photos(("wall.jpg", _jpeg_without_codes(), "image/jpeg")), 422, "No report QR codes"),
            (
                _photos(*[(f"{i}.png", png_bytes(), "image/png") for i in range(3)]),
                400,
                "at most 2",
            ),
            (_photos(("big.png", b"x" * 300_000, "image/png")), 413, "too large"),
            ({"text": "SHAILOO-QR1 broken header\nnothing"}, 422, "did NOT verify"),
        ]
        for data, status, said in cases:
            r = await client.post("/en/check", data=data)
            text = await r.text()
            assert r.status == status, (said, r.status, text[-1500:])
            assert said in text, (said, text[-1500:])
            assert "Traceback" not in text
        r = await client.post(
            "/en/check",
            data=b"--xyz\r\nthis is not a multipart body",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert r.status == 400, await r.text()
        r = await client.post(
            "/api/v1/check", data=b"\xff\xfe", headers={"Content-Type": "text/plain"}
        )
        assert r.status == 400 and (await r.json())["error"]["status"] == 400
        huge = Image.new("L", (2000, 2000), 255)
        buf = io.BytesIO()
        huge.save(buf, format="PNG")
        r = await client.post("/en/check", data=_photos(("huge.png", buf.getvalue(), "image/png")))
        assert r.status == 400 and "more than" in await r.text()

    app = site(
        published,
        kit_dir=published.p.central_dir,
        max_upload_bytes=200_000,
        max_photos=2,
        max_photo_pixels=1_000_000,
    )
    run(app, scenario)


def test_without_the_root_certificate_checking_is_off_and_says_so(published: Election) -> None:
    async def scenario(client: Client) -> None:
        form = await (await client.get("/en/check")).text()
        assert "not enabled on this server" in form and 'id="check-form"' not in form
        r = await client.post("/en/check", data={"text": "x"})
        assert r.status == 503 and "not enabled" in await r.text()

    run(site(published, kit_dir=None), scenario)
