"""`shailoo verify` on real records: clean ones verify, every kind of tampering is caught."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import evidence
from central.db import Database
from crypto import certs
from crypto.envelope import Envelope, sign_envelope
from tests.central.fake_stations import FakeStation, random_tally, tiny_definition
from tests.verifier.support import (
    RECEIVED,
    Authority,
    accept_shuffled,
    authority,
    build_election,
    bump_number,
    day,
    enter_manual,
    export,
    forge,
    manifest_with,
    publish,
    run,
    write_root,
)


@pytest.fixture
def election(db: Database, tmp_path: Path) -> Authority:
    return build_election(db, tmp_path)


@pytest.fixture
def record(db: Database, election: Authority, tmp_path: Path) -> Path:
    return export(db, election, tmp_path / "record")


def _verify(record: Path, auth: Authority, tmp: Path, capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, dict]:  # fmt: skip
    code, out = run([str(record), "--root", str(write_root(auth, tmp / "root.pem")), "--json",
                     *extra], capsys)  # fmt: skip
    return code, json.loads(out)


def _messages(report: dict, area: str) -> list[str]:
    return [f"{e['subject']}: {e['message']}" for e in report["errors"] if e["area"] == area]


def _paths(report: dict) -> list[str]:
    return [d["path"] for d in report["comparison"]["differences"]]


# --- a clean record ----------------------------------------------------------------------------


def test_clean_record_verifies_with_pinned_root_and_exits_0(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_root(election, tmp_path / "root.pem")
    code, out = run([str(record), "--root", str(root)], capsys)
    assert code == 0, out
    assert certs.fingerprint(election.root) in out
    assert "pinned with --root" in out and "NOT PINNED" not in out
    assert "byte for byte" in out and "VERDICT: VERIFIED" in out

    code, text = run([str(record), "--root", str(root), "--json"], capsys)
    report = json.loads(text)
    assert code == 0 and report["ok"] is True
    assert report["comparison"]["identical_bytes"] is True
    assert report["comparison"]["differences_total"] == 0
    assert report["checked"]["messages"] == report["checked"]["messages_verified"] > 40
    assert report["checked"]["manual_protocols"] == 2
    # what the day's script put in is recognised as such, not as an error
    assert report["recomputed"]["not_counted"] == {
        "body does not read": 1,
        "more voted than registered": 1,
        "test mode": 4,
    }
    assert report["recomputed"]["by_state"] == {
        "not_opened": 0, "open": 1, "closed": 0, "delivered": 5,
    }  # fmt: skip


def test_unpinned_root_warns_loudly_and_fails_only_with_strict(
    record: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run([str(record)], capsys)
    assert code == 0
    assert "THE ROOT IS NOT PINNED" in out
    code, out = run([str(record), "--strict"], capsys)
    assert code == 1 and "VERDICT: FAILED" in out


# --- tampering in the central database -------------------------------------------------------


def _move_votes(db: Database, sid: str, contest: str, source: str, n: int) -> None:
    """A consistent lie: n votes moved from "against all" to pa at the station and at every
    unit above it, so every invariant the server checks before publishing still holds."""
    units = [("station", sid), ("commission", "c1"), ("district", "d1"), ("region", "north"),
             ("nation", "nation")]  # fmt: skip
    with db.transaction() as tx:
        for level, unit in units:
            key = (level, unit, contest, source)
            where = " WHERE level = ? AND unit = ? AND contest_id = ? AND source = ?"
            row = tx.one("SELECT tally FROM tallies" + where, key)
            assert row is not None
            t = json.loads(row["tally"])
            t["votes"]["pa"] += n
            t["votes"]["against-all"] -= n
            text = json.dumps(t, sort_keys=True, separators=(",", ":"))
            tx.execute("UPDATE tallies SET tally = ?" + where, (text, *key))


def _add_voters(db: Database, sid: str, n: int) -> None:
    units = [("station", sid), ("commission", "c1"), ("district", "d1"), ("region", "north"),
             ("nation", "nation")]  # fmt: skip
    with db.transaction() as tx:
        for level, unit in units:
            tx.execute(
                "UPDATE turnout SET voted = voted + ? WHERE level = ? AND unit = ?",
                (n, level, unit),
            )


def test_tampered_tally_rows_published_by_the_server_are_caught(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _move_votes(db, "uik-101", "list", "asu", 25)
    pub = publish(db, election)
    assert pub.new and not pub.problems  # the server's own checks see nothing wrong
    record = export(db, election, tmp_path / "record")

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1 and report["ok"] is False
    assert report["errors"] == []  # every file and signature is genuine: only numbers lie
    diffs = {d["path"]: d for d in report["comparison"]["differences"]}
    for unit in ("station[uik-101]", "commission[c1]", "district[d1]", "region[north]",
                 "nation[nation]"):  # fmt: skip
        d = diffs[f"contests[list].units.{unit}.asu.votes.pa"]
        assert d["published"] == d["recomputed"] + 25
    assert "contests[list].units.station[uik-102].asu.votes.pa" not in diffs


def test_tampered_turnout_rows_published_by_the_server_are_caught(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_voters(db, "uik-102", 40)
    assert publish(db, election).new
    record = export(db, election, tmp_path / "record")

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    d = {x["path"]: x for x in report["comparison"]["differences"]}
    assert d["turnout.station[uik-102].voted"]["published"] == (
        d["turnout.station[uik-102].voted"]["recomputed"] + 40
    )
    assert "turnout.nation[nation].percent" in d or "turnout.nation[nation].voted" in d


def test_changed_byte_of_a_stored_message_in_the_database_is_caught(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    row = db.one(
        "SELECT seq, raw FROM messages WHERE station_id = 'uik-102' AND kind = 'asu_report'"
        " ORDER BY seq DESC LIMIT 1"
    )
    assert row is not None
    changed = bump_number(bytes(row["raw"]), b"voters_identified")
    assert len(changed) == len(row["raw"]) and changed != bytes(row["raw"])
    with db.transaction() as tx:
        tx.execute(
            "UPDATE messages SET raw = ? WHERE station_id = 'uik-102' AND seq = ?",
            (changed, row["seq"]),
        )
    record = export(db, election, tmp_path / "record")  # the manifest hashes the changed bytes

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert report["checked"]["messages_verified"] == report["checked"]["messages"] - 1
    messages = _messages(report, "messages")
    assert any(
        m.startswith("station uik-102") and f"seq {row['seq']}" in m and "does not verify" in m
        for m in messages
    ), messages
    assert any("broken chain" in m for m in _messages(report, "chains"))
    # without its final report the station has no ASU count: the published one differs
    assert "contests[list].units.station[uik-102].asu" in _paths(report)


def test_changed_byte_of_an_exported_message_file_is_caught(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = record / "messages" / "uik-103.jsonl"
    path.write_bytes(bump_number(path.read_bytes(), b"voted"))

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert any("messages/uik-103.jsonl: changed" in m for m in _messages(report, "files"))
    assert any("does not verify" in m for m in _messages(report, "messages"))


def test_a_report_the_station_never_signed_is_caught_though_the_server_counted_it(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server itself stores a fabricated final report (evidence does not check
    signatures: the ingest does) and publishes its numbers."""
    definition = election.kit.definition
    last = db.one("SELECT seq, hash FROM messages WHERE station_id = 'uik-302' "
                  "ORDER BY seq DESC LIMIT 1")  # fmt: skip
    assert last is not None
    rng = random.Random(9)
    tallies = [random_tally(c, rng, 500) for c in definition.contests_for_station("uik-302")]
    body = {"phase": "final", "mode": "live", "sheets": 500, "deferred_sheets": 0,
            "returned": {}, "tallies": [t.to_obj() for t in tallies], "deferred_tallies": [],
            "voters_identified": 500, "problems": []}  # fmt: skip
    fake = sign_envelope(
        Ed25519PrivateKey.generate(), kind="asu_report", election=definition.election_hash,
        station="uik-302", device="dev-302", seq=last["seq"] + 1, prev=last["hash"],
        time="2026-11-29T21:00:00+06:00", body=body,
    )  # fmt: skip
    [decision] = evidence.accept_batch(db, definition, [(fake, fake.to_bytes(), RECEIVED)])
    assert decision.status == "accepted"
    assert publish(db, election).new
    record = export(db, election, tmp_path / "record")

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert any("uik-302" in m and "does not verify" in m for m in _messages(report, "messages"))
    assert "contests[list].units.station[uik-302].asu.ballots" in _paths(report)


# --- tampering with the published files ------------------------------------------------------


def test_changed_results_json_is_caught_by_its_hash(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = record / "results.json"
    path.write_bytes(bump_number(path.read_bytes(), b"ballots"))

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert any(m.startswith("results.json: changed") for m in _messages(report, "files"))
    assert report["comparison"]["differences_total"] == 1
    [d] = report["comparison"]["differences"]
    assert d["path"].endswith(".ballots") and d["published"] != d["recomputed"]


def test_changed_results_json_with_a_rehashed_manifest_fails_the_signature(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = record / "results.json"
    path.write_bytes(bump_number(path.read_bytes(), b"ballots"))
    (record / "MANIFEST.json").write_bytes(manifest_with(record, "results.json"))

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert _messages(report, "files") == []  # the hashes now agree ...
    assert any(
        "not the CEC server's" in m for m in _messages(report, "manifest")
    )  # ... but the server never signed them
    assert report["manifest"]["signed_by_cec_server"] is False
    assert report["comparison"]["differences_total"] == 1


def test_missing_and_extra_files_are_caught(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = next((record / "scans").iterdir())
    scan.unlink()
    (record / "messages" / "notes.txt").write_text("not part of the record")

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    files = _messages(report, "files")
    assert any(
        m.startswith(f"scans/{scan.name}: listed in the manifest but missing") for m in files
    )
    assert any(m.startswith("messages/notes.txt: in the record but not in") for m in files)
    assert any("is not in the record" in m for m in _messages(report, "manual"))


# --- trust -----------------------------------------------------------------------------------


def test_forged_record_is_caught_when_the_root_is_pinned(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forge(record, election.kit.definition, tmp_path, shift=30)
    forged = tmp_path / "forged"

    # self-consistent: against its own root it verifies (which is why pinning matters)
    code, out = run([str(forged)], capsys)
    assert code == 0 and "THE ROOT IS NOT PINNED" in out

    code, report = _verify(forged, election, tmp_path, capsys)
    assert code == 1
    assert report["trust"]["root_fingerprint"] == certs.fingerprint(election.root)
    assert report["trust"]["record_root_fingerprint"] != certs.fingerprint(election.root)
    assert any("is not the root you pinned" in m for m in _messages(report, "root"))
    assert any("not the CEC server's" in m for m in _messages(report, "manifest"))
    assert report["checked"]["devices_valid"] == 0
    assert report["checked"]["messages_verified"] == 0


def test_unusable_root_file_exits_2(
    record: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "root.pem"
    bad.write_text("not a certificate")
    code, _ = run([str(record), "--root", str(bad)], capsys)
    assert code == 2


# --- chains ----------------------------------------------------------------------------------


def test_a_hole_in_a_chain_is_a_warning_and_fails_only_with_strict(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A turnout snapshot that never arrived: the server counts what it has (and keeps a
    gap alert open), the verifier agrees on the numbers and reports the hole."""
    definition = tiny_definition(registered=800)
    auth = authority(definition, tmp_path / "kit")
    evidence.load_stations(db, definition)
    envs = day(definition, auth.station_keys, 4)
    lost = next(e for e in envs if e.station == "uik-102" and e.kind == "turnout")
    accept_shuffled(db, definition, [e for e in envs if e is not lost], 4)
    enter_manual(db, definition, "uik-101", 4)
    publish(db, auth)
    record = export(db, auth, tmp_path / "record")

    code, report = _verify(record, auth, tmp_path, capsys)
    assert code == 0, report["errors"]
    [hole] = [w for w in report["warnings"] if w["area"] == "chains"]
    assert hole["subject"] == "station uik-102"
    assert hole["message"].startswith(f"messages {lost.seq} are not in the record")
    assert report["checked"]["chains_with_holes"] == 1
    code, report = _verify(record, auth, tmp_path, capsys, "--strict")
    assert code == 1


def test_messages_out_of_seq_order_in_the_file_are_an_error(
    record: Path, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = record / "messages" / "uik-201.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))
    (record / "MANIFEST.json").write_bytes(manifest_with(record, "messages/uik-201.jsonl"))

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 1
    assert any("not in seq order" in m for m in _messages(report, "chains"))
    Envelope.from_bytes(lines[0].rstrip(b"\n"))  # the lines themselves are intact


def test_text_report_names_every_difference_with_both_values(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _move_votes(db, "uik-101", "list", "asu", 3)
    publish(db, election)
    record = export(db, election, tmp_path / "record")
    shutil.copy(record / "cec-root.pem", tmp_path / "root.pem")

    code, out = run([str(record), "--root", str(tmp_path / "root.pem"), "--show", "500"], capsys)
    assert code == 1
    lines = out.splitlines()
    at = lines.index("    contests[list].units.station[uik-101].asu.votes.pa")
    published = int(lines[at + 1].split()[-1])
    recomputed = int(lines[at + 2].split()[-1])
    assert lines[at + 1].split()[0] == "published" and lines[at + 2].split()[0] == "recomputed"
    assert published == recomputed + 3
    assert "VERDICT: FAILED" in out


def test_reports_accepted_after_the_last_publication_are_published_by_the_export(
    db: Database, election: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The export publishes the evidence it exports, in one transaction that holds ingest
    off: a final report that arrived after the last publication is in both, and verifies."""
    definition = election.kit.definition
    last = db.one("SELECT seq, hash FROM messages WHERE station_id = 'uik-301' "
                  "ORDER BY seq DESC LIMIT 1")  # fmt: skip
    assert last is not None
    f = FakeStation(definition, "uik-301", key=election.station_keys["uik-301"])
    f.seq, f.prev = last["seq"] + 1, last["hash"]
    late = f.at(20, 50).final_report(f.tallies(random.Random(5), 300))
    evidence.accept_batch(db, definition, [(late, late.to_bytes(), RECEIVED)])
    record = export(db, election, tmp_path / "record")

    code, report = _verify(record, election, tmp_path, capsys)
    assert code == 0, report
    published = json.loads((record / "results.json").read_text())
    assert published["as_of"] == "2026-11-29T14:50:00+00:00"  # the late report is in it


@pytest.mark.parametrize(
    "name",
    ["MANIFEST.json", "election.json", "devices.json", "cec-root.pem", "cec-central.pem",
     "results.json", "alerts.json", "manual/uik-101.json", "messages/uik-102.jsonl"],
)  # fmt: skip
def test_garbage_in_any_file_is_a_failure_not_a_crash(
    record: Path,
    election: Authority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    (record / name).write_bytes(b'\xff{"not": [json\n')
    code, out = run([str(record), "--root", str(write_root(election, tmp_path / "r.pem"))], capsys)
    assert code == 1
    assert "VERDICT: FAILED" in out
