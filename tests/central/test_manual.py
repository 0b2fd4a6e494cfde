from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest

from central import aggregate, manual
from central.accounts import Account
from central.db import Database
from central.manual import (
    ContestCount,
    NotAllowed,
    ProtocolRefused,
    counts_from_form,
    csv_template,
    parse_csv,
    protocol_history,
    read_scan,
    save_csv,
    save_protocol,
)
from election.definition import ElectionDefinition
from tests.central.staff_support import (
    JPEG,
    PDF,
    PNG,
    T0,
    account,
    form_of,
    load,
    operator,
    protocol,
    replace,
    small_definition,
)

D = small_definition()
S101, S102, S201 = "uik-101", "uik-102", "uik-201"


@pytest.fixture
def clerk(db: Database) -> Account:
    load(db, D)
    return operator(db, "tik-a")


def _snapshot(db: Database) -> dict[str, list[Any]]:
    """Everything a saved protocol touches: its own tables, the aggregates, the alerts."""
    out = {}
    for table, order in (
        ("manual_protocols", "id"),
        ("manual_counts", "protocol_id, contest_id"),
        ("manual_scans", "sha256"),
        ("manual_tallies", "station_id, contest_id"),
        ("tallies", "level, unit, contest_id, source"),
        ("alerts", "id"),
        ("reconciliations", "station_id, contest_id"),
    ):
        out[table] = db.query(f"SELECT * FROM {table} ORDER BY {order}")
    return out


def _save(db: Database, who: Account, station: str = S101, **kw: Any) -> manual.Saved:
    counts = kw.pop("counts", None) or protocol(D, station)
    scan = kw.pop("scan", manual.Scan("application/pdf", PDF))
    return save_protocol(db, D, who, station, counts, scan, at=kw.pop("at", T0), **kw)


# --- a good protocol ----------------------------------------------------------------------
def test_a_good_protocol_becomes_the_stations_final_result(db: Database, clerk: Account) -> None:
    saved = _save(db, clerk)
    assert (saved.version, saved.changed) == (1, True)
    counts = protocol(D, S101)
    for cid, k in counts.items():
        final = aggregate.station_tally(db, S101, cid, "manual")
        assert final is not None
        assert (final.ballots, final.invalid, final.votes) == (k.ballots, k.invalid, k.votes)
    # and the commission above it
    row = db.one(
        "SELECT stations FROM tallies WHERE level = 'commission' AND unit = 'tik-a' "
        "AND contest_id = 'list' AND source = 'manual'"
    )
    assert row == {"stations": 1}


def test_the_saved_protocol_keeps_who_when_its_lines_and_the_scan_by_hash(
    db: Database, clerk: Account
) -> None:
    _save(db, clerk)
    (p,) = protocol_history(db, S101)
    assert (p.version, p.entered_by, p.source, p.reason) == (1, "clerk-a", "form", "")
    assert p.entered_at == "2026-11-29T15:30:00+00:00" and p.current
    assert p.counts == protocol(D, S101)
    assert p.scan_sha256 == hashlib.sha256(PDF).hexdigest()
    scan = manual.get_scan(db, p.scan_sha256)
    assert scan is not None and scan.data == PDF and scan.media_type == "application/pdf"


# --- refusals change nothing ---------------------------------------------------------------
def _list(**changes: object) -> Callable[[dict[str, ContestCount]], None]:
    def change(c: dict[str, ContestCount]) -> None:
        c["list"] = replace(c["list"], **changes)

    return change


def _votes(**votes: int) -> Callable[[dict[str, ContestCount]], None]:
    def change(c: dict[str, ContestCount]) -> None:
        c["list"] = replace(c["list"], votes={**c["list"].votes, **votes})

    return change


def _prefs(prefs: dict[str, int]) -> Callable[[dict[str, ContestCount]], None]:
    def change(c: dict[str, ContestCount]) -> None:
        c["list"] = replace(c["list"], preferences=prefs)

    return change


def _drop_vote(c: dict[str, ContestCount]) -> None:
    votes = dict(c["list"].votes)
    del votes["p2"]
    c["list"] = replace(c["list"], votes=votes)


def _drop_contest(c: dict[str, ContestCount]) -> None:
    del c["smd-1"]


def _other_districts_contest(c: dict[str, ContestCount]) -> None:
    c["smd-2"] = protocol(D, S201)["smd-2"]


FULL_PREFS = {"p1-1": 100, "p1-2": 50, "p1-3": 0, "p2-1": 80, "p2-2": 0, "p2-3": 10}

REFUSALS: list[tuple[str, Callable[[dict[str, ContestCount]], None], str, str, str, str]] = [
    # (case, change, problem key, field, Kyrgyz words in the message, Russian words)
    (
        "negative",
        _list(issued=-1),
        "negative",
        "list:issued",
        "Шайлоочуларга берилген бюллетендер",
        "Выдано бюллетеней избирателям",
    ),
    ("too large", _list(received=5_000_000), "too_large", "list:received", "Алынган", "Получено"),
    (
        "votes + invalid != ballots",
        _list(invalid=9),
        "sum_mismatch",
        "list:ballots",
        "жараксыз",
        "недействительные",
    ),
    (
        "more ballots than issued",
        _list(issued=500),
        "ballots_over_issued",
        "list:ballots",
        "берилгенден",
        "больше, чем выдано",
    ),
    (
        "issued + spoiled over received",
        _list(received=565),
        "over_received",
        "list:received",
        "алынгандан",
        "больше, чем получено",
    ),
    ("unknown option", _votes(p9=0), "option_unknown", "list:vote:p9", "p9", "p9"),
    ("missing option", _drop_vote, "required", "list:vote:p2", "Партия 2", "Партия 2"),
    (
        "unknown candidate",
        _prefs({**FULL_PREFS, "p7-1": 0}),
        "candidate_unknown",
        "list:pref:p7-1",
        "p7-1",
        "p7-1",
    ),
    (
        "missing candidate",
        _prefs({k: v for k, v in FULL_PREFS.items() if k != "p2-3"}),
        "required",
        "list:pref:p2-3",
        "Партия 2 3",
        "Партия 2 3",
    ),
    (
        "preferences over the party's votes",
        _prefs({**FULL_PREFS, "p2-2": 150}),
        "prefs_over_votes",
        "list:vote:p2",
        "Партия 2",
        "Партия 2",
    ),
    (
        "contest of another district",
        _other_districts_contest,
        "contest_not_at_station",
        "smd-2",
        "№2 округ",
        "Округ №2",
    ),
    ("contest missing", _drop_contest, "contest_missing", "smd-1", "№1 округ", "Округ №1"),
]


@pytest.mark.parametrize(
    ("change", "key", "field", "ky", "ru"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_each_refused_protocol_changes_nothing_and_names_the_field_in_both_languages(
    db: Database,
    clerk: Account,
    change: Callable[[dict[str, ContestCount]], None],
    key: str,
    field: str,
    ky: str,
    ru: str,
) -> None:
    _save(db, clerk, S102)  # something already there, which must stay as it is
    before = _snapshot(db)
    counts = protocol(D, S101)
    change(counts)
    with pytest.raises(ProtocolRefused) as refused:
        _save(db, clerk, S101, counts=counts)
    problems = {p.key: p for p in refused.value.problems}
    assert key in problems, refused.value.problems
    p = problems[key]
    assert p.field == field
    assert ky in p.text("ky") and ru in p.text("ru")
    assert _snapshot(db) == before


def test_all_problems_of_a_protocol_are_reported_at_once(db: Database, clerk: Account) -> None:
    counts = protocol(D, S101)
    counts["list"] = replace(counts["list"], issued=-1, received=-2)
    counts["smd-1"] = replace(counts["smd-1"], invalid=0)
    with pytest.raises(ProtocolRefused) as refused:
        _save(db, clerk, counts=counts)
    assert {(p.key, p.field) for p in refused.value.problems} == {
        ("negative", "list:issued"),
        ("negative", "list:received"),
        ("sum_mismatch", "smd-1:ballots"),
    }


def test_an_operator_cannot_enter_another_commissions_station(db: Database, clerk: Account) -> None:
    before = _snapshot(db)
    with pytest.raises(NotAllowed) as refused:
        _save(db, clerk, S201)
    assert [p.key for p in refused.value.problems] == ["station_not_yours"]
    assert "201" in refused.value.problems[0].text("ru")
    assert _snapshot(db) == before


@pytest.mark.parametrize("role", ["cec_engineer", "observer", "admin"])
def test_only_a_commission_operator_enters_protocols(db: Database, role: str) -> None:
    load(db, D)
    who = account(db, role, "someone")
    with pytest.raises(NotAllowed) as refused:
        _save(db, who)
    assert [p.key for p in refused.value.problems] == ["not_operator"]
    assert db.query("SELECT * FROM manual_protocols") == []


def test_an_unknown_station_is_refused(db: Database, clerk: Account) -> None:
    with pytest.raises(NotAllowed, match="999"):
        _save(db, clerk, "uik-999", counts=protocol(D, S101))


def test_a_first_protocol_needs_its_scan(db: Database, clerk: Account) -> None:
    with pytest.raises(ProtocolRefused) as refused:
        _save(db, clerk, scan=None)
    assert [(p.key, p.field) for p in refused.value.problems] == [("scan_missing", "scan")]
    assert _snapshot(db)["manual_protocols"] == []


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"GIF89a....", "scan_type"),
        (b"<html>%PDF-</html>", "scan_type"),
        (b"", "scan_missing"),
        (PDF + b"x" * 2048, "scan_too_large"),
    ],
)
def test_a_scan_is_recognised_by_its_magic_bytes_within_the_size_limit(
    data: bytes, key: str
) -> None:
    with pytest.raises(ProtocolRefused) as refused:
        read_scan(data, "protocol.pdf", max_bytes=1024)
    assert [p.key for p in refused.value.problems] == [key]


def test_pdf_png_and_jpeg_scans_are_accepted() -> None:
    assert [read_scan(x).media_type for x in (PDF, PNG, JPEG)] == [
        "application/pdf",
        "image/png",
        "image/jpeg",
    ]


# --- the web form's fields ------------------------------------------------------------------
def test_the_form_is_read_into_the_same_protocol() -> None:
    form = form_of(protocol(D, S101))
    form["list:received"] = "1 000"  # as typed with a thousands space
    assert counts_from_form(D, S101, form) == protocol(D, S101)


def test_a_form_with_text_and_empty_fields_names_each_one() -> None:
    form = form_of(protocol(D, S101))
    form["list:issued"] = "12a"
    form["smd-1:vote:smd1-b"] = " "
    with pytest.raises(ProtocolRefused) as refused:
        counts_from_form(D, S101, form)
    got = {(p.key, p.field): p for p in refused.value.problems}
    assert set(got) == {("not_integer", "list:issued"), ("required", "smd-1:vote:smd1-b")}
    assert "12a" in got[("not_integer", "list:issued")].text("ky")
    assert "B1" in got[("required", "smd-1:vote:smd1-b")].text("ru")


def test_a_form_field_of_an_unknown_option_is_refused() -> None:
    form = form_of(protocol(D, S101))
    form["list:vote:p9"] = "0"
    with pytest.raises(ProtocolRefused) as refused:
        counts_from_form(D, S101, form)
    assert [(p.key, p.field) for p in refused.value.problems] == [
        ("option_unknown", "list:vote:p9")
    ]


# --- corrections ----------------------------------------------------------------------------
def test_a_correction_needs_a_reason(db: Database, clerk: Account) -> None:
    _save(db, clerk)
    before = _snapshot(db)
    with pytest.raises(ProtocolRefused) as refused:
        _save(db, clerk, counts=protocol(D, S101, shift=5), at=T0 + dt.timedelta(hours=1))
    assert [(p.key, p.field) for p in refused.value.problems] == [("reason_required", "reason")]
    assert _snapshot(db) == before


def test_a_correction_supersedes_the_old_version_and_keeps_the_history(
    db: Database, clerk: Account
) -> None:
    _save(db, clerk)
    fixer = operator(db, "tik-a", "clerk-a2")
    later = T0 + dt.timedelta(hours=1)
    saved = _save(
        db,
        fixer,
        counts=protocol(D, S101, shift=5),
        reason="typo in party 1",
        at=later,
        scan=None,
    )
    assert (saved.version, saved.changed) == (2, True)
    new, old = protocol_history(db, S101)
    assert (new.version, new.entered_by, new.reason, new.current) == (
        2,
        "clerk-a2",
        "typo in party 1",
        True,
    )
    assert new.scan_sha256 == old.scan_sha256  # no new scan: the current one is kept
    assert (old.version, old.entered_by, old.current) == (1, "clerk-a", False)
    assert old.superseded_at == later.isoformat()
    assert old.counts == protocol(D, S101)
    final = aggregate.station_tally(db, S101, "list", "manual")
    assert final is not None and final.votes["p1"] == 295
    row = db.one(
        "SELECT stations FROM tallies WHERE level = 'commission' AND unit = 'tik-a' "
        "AND contest_id = 'list' AND source = 'manual'"
    )
    assert row == {"stations": 1}  # replaced, not added twice


def test_saving_the_same_protocol_again_makes_no_new_version(db: Database, clerk: Account) -> None:
    _save(db, clerk)
    before = _snapshot(db)
    again = _save(db, clerk)
    assert (again.version, again.changed) == (1, False)
    assert _snapshot(db) == before


def test_a_protocol_saved_meanwhile_by_someone_else_is_not_overwritten(
    db: Database, clerk: Account
) -> None:
    _save(db, clerk, base_version=0)
    with pytest.raises(ProtocolRefused) as refused:
        _save(db, clerk, counts=protocol(D, S101, shift=1), reason="x", base_version=0)
    assert [p.key for p in refused.value.problems] == ["changed_meanwhile"]
    assert len(protocol_history(db, S101)) == 1


# --- CSV ---------------------------------------------------------------------------------------
def _csv(
    definition: ElectionDefinition,
    stations: list[str],
    *,
    delimiter: str = ";",
    bom: bool = True,
    edit: Callable[[list[list[str]]], None] | None = None,
) -> bytes:
    rows: list[list[str]] = [["station", "contest", "line", "id", "value"]]
    for sid in stations:
        number = str(definition.station(sid).number)
        for cid, k in protocol(definition, sid).items():
            for line in manual.LINES:
                rows.append([number, cid, line, "", str(getattr(k, line))])
            rows += [[number, cid, "votes", o, str(n)] for o, n in k.votes.items()]
            rows += [[number, cid, "preference", c, str(n)] for c, n in k.preferences.items()]
    if edit:
        edit(rows)
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


SCANS = {"101.pdf": PDF, "102.jpg": JPEG}


def test_a_good_csv_saves_every_station_in_it(db: Database, clerk: Account) -> None:
    saved = save_csv(db, D, clerk, _csv(D, [S101, S102]), SCANS, at=T0)
    assert [(s.number, s.version, s.changed) for s in saved] == [(101, 1, True), (102, 1, True)]
    (p,) = protocol_history(db, S102)
    assert p.source == "csv" and p.counts == protocol(D, S102)
    assert p.scan_media_type == "image/jpeg"


@pytest.mark.parametrize(("delimiter", "bom"), [(",", False), (";", True), ("\t", True)])
def test_csv_from_excel_with_bom_and_any_usual_separator_is_read(delimiter: str, bom: bool) -> None:
    parsed = parse_csv(D, _csv(D, [S101], delimiter=delimiter, bom=bom))
    assert parsed[S101][0] == protocol(D, S101)


def test_the_template_filled_in_is_read_back(db: Database, clerk: Account) -> None:
    _save(db, clerk)
    current = {S101: manual.current_protocol(db, S101)}
    text = csv_template(D, "tik-a", "ru", current)  # type: ignore[arg-type]
    assert text.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["station", "contest", "line", "id", "name", "value"]
    assert {r[0] for r in rows[1:]} == {"101", "102"}  # only the commission's stations
    assert ["101", "list", "issued", "", "Выдано бюллетеней избирателям", "560"] in rows
    assert ["102", "list", "issued", "", "Выдано бюллетеней избирателям", ""] in rows
    # fill in station 102 and upload it
    values = {
        (cid, line, key): str(v)
        for cid, k in protocol(D, S102).items()
        for line, key, v in [(x, "", getattr(k, x)) for x in manual.LINES]
        + [("votes", o, n) for o, n in k.votes.items()]
        + [("preference", c, n) for c, n in k.preferences.items()]
    }
    for r in rows[1:]:
        if r[0] == "102":
            r[5] = values[(r[1], r[2], r[3])]
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(rows)
    saved = save_csv(db, D, clerk, out.getvalue().encode("utf-8"), {"102.pdf": PDF}, at=T0)
    assert [(s.number, s.changed) for s in saved] == [(101, False), (102, True)]


def _set(rows: list[list[str]], station: str, contest: str, line: str, key: str, value: str) -> int:
    for i, r in enumerate(rows):
        if r[:4] == [station, contest, line, key]:
            r[4] = value
            return i + 1
    raise AssertionError("no such row")


def test_a_csv_with_bad_rows_saves_nothing_and_names_each_line(
    db: Database, clerk: Account
) -> None:
    lines: dict[str, int] = {}

    def edit(rows: list[list[str]]) -> None:
        lines["text"] = _set(rows, "101", "list", "received", "", "много")
        lines["sum"] = _set(rows, "102", "smd-1", "invalid", "", "9")
        rows.append(["999", "list", "issued", "", "1"])
        lines["unknown"] = len(rows)
        rows.append(["201", "list", "issued", "", "1"])
        lines["theirs"] = len(rows)
        rows.append(["101", "list", "turnout", "", "1"])
        lines["kind"] = len(rows)

    before = _snapshot(db)
    with pytest.raises(ProtocolRefused) as refused:
        save_csv(db, D, clerk, _csv(D, [S101, S102], edit=edit), SCANS, at=T0)
    got = {(p.key, p.line) for p in refused.value.problems}
    assert ("not_integer", lines["text"]) in got
    assert ("station_unknown", lines["unknown"]) in got
    assert ("station_not_yours", lines["theirs"]) in got
    assert ("csv_line_unknown", lines["kind"]) in got
    # the arithmetic problem points at a line of the right station and contest
    (mismatch,) = [p for p in refused.value.problems if p.key == "sum_mismatch"]
    assert mismatch.station == 102 and "Строка" in mismatch.text("ru")
    assert _snapshot(db) == before


def test_a_csv_refused_late_rolls_back_the_stations_already_written(
    db: Database, clerk: Account
) -> None:
    _save(db, clerk, S102)
    before = _snapshot(db)
    # 101 is new and good; 102 changes without a reason: refused only while saving

    def edit(rows: list[list[str]]) -> None:
        _set(rows, "102", "list", "spoiled", "", "11")

    csv_bytes = _csv(D, [S101, S102], edit=edit)
    with pytest.raises(ProtocolRefused) as refused:
        save_csv(db, D, clerk, csv_bytes, {"101.pdf": PDF}, at=T0)
    assert [(p.key, p.station) for p in refused.value.problems] == [("reason_required", 102)]
    assert _snapshot(db) == before


@pytest.mark.parametrize(
    ("scans", "key"),
    [
        ({"101.pdf": PDF}, "scan_missing"),  # 102 is new and has none
        ({"101.pdf": PDF, "protocol.pdf": PDF}, "csv_scan_name"),
        ({"101.pdf": PDF, "102.pdf": PDF, "201.pdf": PDF}, "station_not_yours"),
        ({"101.pdf": PDF, "102.gif": b"GIF89a"}, "scan_type"),
        ({"101.pdf": PDF, "102.pdf": PDF, "102.png": PNG}, "csv_scan_twice"),
    ],
)
def test_csv_scans_are_matched_to_stations_by_file_name(
    db: Database, clerk: Account, scans: dict[str, bytes], key: str
) -> None:
    with pytest.raises(ProtocolRefused) as refused:
        save_csv(db, D, clerk, _csv(D, [S101, S102]), scans, at=T0)
    assert key in [p.key for p in refused.value.problems]
    assert db.query("SELECT * FROM manual_protocols") == []


def test_a_csv_not_in_utf8_says_how_to_save_it() -> None:
    data = "station;contest;line;id;value\r\n101;list;issued;;560\r\n".encode("cp1251")
    data = data.replace(b"list", "список".encode("cp1251"))
    with pytest.raises(ProtocolRefused) as refused:
        parse_csv(D, data)
    (p,) = refused.value.problems
    assert p.key == "csv_encoding" and "UTF-8" in p.text("ky")


def test_a_csv_without_the_needed_columns_is_refused() -> None:
    with pytest.raises(ProtocolRefused) as refused:
        parse_csv(D, b"a;b;c\r\n1;2;3\r\n")
    assert [(p.key, p.line) for p in refused.value.problems] == [("csv_header", 1)]


def test_a_row_given_twice_is_refused_with_both_lines() -> None:
    def edit(rows: list[list[str]]) -> None:
        rows.append(["101", "list", "issued", "", "560"])

    with pytest.raises(ProtocolRefused) as refused:
        parse_csv(D, _csv(D, [S101], edit=edit))
    (p,) = refused.value.problems
    assert p.key == "csv_duplicate" and p.values["first"] == 3
