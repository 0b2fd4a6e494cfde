"""Manual-count protocols: the legally final result of each polling station.

After the ASU's preliminary count the station commission counts the ballots by hand
and signs a protocol; the territorial commission (TIK) enters it here, from a web form
or a CSV exported from Excel (`docs/manual-count.md`), with a scan of the paper.  A
protocol covers every contest of the station, each with: ballots received, issued to
voters, spoiled and cancelled, found in the boxes (= counted), invalid, the votes of
every option and, for an open party list, the preference votes of every candidate.

A protocol is checked whole before anything is written; any problem refuses all of it
and changes nothing, and every problem is reported at once, in Kyrgyz and Russian,
naming the field (and the CSV line).  A saved protocol is never edited: a correction is
a new version with who, when and why, the old one stays as history.  Saving hands the
tallies to `central.aggregate.apply_manual` (final results at every level) and compares
them with the ASU count (`central.reconcile`), in the same transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import PurePath
from typing import Any

from central import aggregate
from central.accounts import Account, Permission, log_action
from central.db import Database, Tx
from central.reconcile import Thresholds, reconcile_station
from central.serverroom.texts import LANGS, Lang, say
from election.canonical import canonical_json
from election.definition import Contest, ElectionDefinition, Station
from election.tally import ContestTally

LINES = ("received", "issued", "spoiled", "ballots", "invalid")
"""The per-contest protocol lines other than votes and preferences, in protocol order."""
CSV_LINES = (*LINES, "votes", "preference")
CSV_COLUMNS = ("station", "contest", "line", "id", "name", "value")
CSV_REQUIRED = ("station", "contest", "line", "value")
MAX_COUNT = 1_000_000
MAX_SCAN_BYTES = 10 * 1024 * 1024
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_REASON = 500
SOURCES = ("form", "csv")

_SCAN_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
_INT_RE = re.compile(r"^-?\d+$")


# --- problems ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One reason a protocol is refused: a text key, the field it concerns, its values.

    `field` is the form field's name (``<contest>:<line>``, ``<contest>:vote:<option>``,
    ``<contest>:pref:<candidate>``, ``scan``, ``reason``, ``csv``) so the form can mark it;
    `line` and `station` locate it in a CSV file.
    """

    key: str
    field: str = ""
    values: Mapping[str, object] = _field(default_factory=dict)
    line: int | None = None
    station: int | None = None

    def text(self, lang: Lang) -> str:
        body = say(self.key, lang, **self.values)
        where = []
        if self.line is not None:
            where.append(say("at_line", lang, line=self.line))
        if self.station is not None:
            where.append(say("at_station", lang, station=self.station))
        return f"{', '.join(where)}: {body}" if where else body

    def texts(self) -> dict[Lang, str]:
        return {lang: self.text(lang) for lang in LANGS}

    def __str__(self) -> str:
        return self.text("ru")


class ProtocolRefused(Exception):
    """A protocol (or a CSV file) was refused and nothing was changed; see `problems`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


class NotAllowed(ProtocolRefused):
    """The account may not enter this station's protocol (wrong role or commission)."""


# --- the protocol --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContestCount:
    """One contest's lines of a manual-count protocol."""

    contest_id: str
    received: int
    issued: int
    spoiled: int
    ballots: int
    invalid: int
    votes: Mapping[str, int]
    preferences: Mapping[str, int] = _field(default_factory=dict)

    def tally(self, contest: Contest) -> ContestTally:
        """The counted part as a tally (closed lists get zero preferences, as the ASU's)."""
        prefs = {c.id: 0 for o in contest.options for c in o.candidates}
        prefs.update(self.preferences)
        return ContestTally(
            contest_id=self.contest_id,
            ballots=self.ballots,
            invalid=self.invalid,
            votes=dict(self.votes),
            preferences=prefs,
        )

    def to_obj(self) -> dict[str, Any]:
        return {
            "contest_id": self.contest_id,
            **{line: getattr(self, line) for line in LINES},
            "votes": dict(self.votes),
            "preferences": dict(self.preferences),
        }

    def value(self, field_name: str) -> int | None:
        """The value behind a form field name of this contest (None if it has none)."""
        _, _, rest = field_name.partition(":")
        kind, _, key = rest.partition(":")
        if kind in LINES and not key:
            return int(getattr(self, kind))
        if kind == "vote":
            return self.votes.get(key)
        if kind == "pref":
            return self.preferences.get(key)
        return None


@dataclass(frozen=True)
class Scan:
    """A scan of the paper protocol, its type recognised from its first bytes."""

    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def extension(self) -> str:
        return next(ext for _, mt, ext in _SCAN_TYPES if mt == self.media_type)


@dataclass(frozen=True)
class StoredProtocol:
    """One saved version of a station's protocol."""

    id: int
    station_id: str
    version: int
    entered_at: str
    entered_by: str
    source: str
    reason: str
    scan_sha256: str
    scan_media_type: str
    superseded_at: str | None
    counts: dict[str, ContestCount]

    @property
    def current(self) -> bool:
        return self.superseded_at is None


@dataclass(frozen=True)
class Saved:
    """What saving did for one station: a new version, or nothing (identical protocol)."""

    station_id: str
    number: int
    version: int
    changed: bool


# --- field names and labels ----------------------------------------------------------------------
def field_name(contest_id: str, kind: str, key: str = "") -> str:
    """The form field of a protocol line: ``c:issued``, ``c:vote:<option>``, ``c:pref:<cand>``."""
    return f"{contest_id}:{kind}:{key}" if key else f"{contest_id}:{kind}"


def _label(contest: Contest, kind: str, key: str = "") -> dict[Lang, str]:
    """A field's name as people read it: the contest, then the line, option or candidate."""
    out: dict[Lang, str] = {}
    for lang in LANGS:
        head = contest.name.get(lang)
        if kind == "vote":
            try:
                what = contest.option(key).name.get(lang)
            except KeyError:
                what = key
        elif kind == "pref":
            what = key
            for o in contest.options:
                for c in o.candidates:
                    if c.id == key:
                        what = f"{o.name.get(lang)}: {c.position}. {c.name.get(lang)}"
        else:
            what = say(f"line_{kind}", lang)
        out[lang] = f"{head} — {what}"
    return out


def form_fields(definition: ElectionDefinition, station_id: str) -> list[str]:
    """Every field a station's protocol form has, in protocol order."""
    return [f for c in definition.contests_for_station(station_id) for f in form_fields_of(c)]


def _contest_name(definition: ElectionDefinition, cid: str) -> object:
    """The contest's names if it exists (for a message), else the id as typed."""
    try:
        return definition.contest(cid).name
    except KeyError:
        return cid or "?"


def _open_list(contest: Contest) -> bool:
    return bool(getattr(contest.rules, "open_list", False)) and bool(contest.candidate_ids())


# --- checking -----------------------------------------------------------------------------------
def check_access(definition: ElectionDefinition, account: Account, station_id: str) -> Station:
    """The station, if this account may enter its protocol; else `NotAllowed`."""
    try:
        station = definition.station(station_id)
    except KeyError:
        raise NotAllowed([Problem("station_unknown", values={"station": station_id})]) from None
    if not account.can(Permission.ENTER_MANUAL) or account.commission_id is None:
        raise NotAllowed([Problem("not_operator")])
    if station.commission_id != account.commission_id:
        raise NotAllowed([Problem("station_not_yours", values={"station": station.number})])
    return station


def check_counts(
    definition: ElectionDefinition, station_id: str, counts: Mapping[str, ContestCount]
) -> list[Problem]:
    """Every problem with a station's protocol numbers (empty: the protocol is consistent)."""
    station = definition.station(station_id)
    contests = definition.contests_for_station(station_id)
    at_station = {c.id for c in contests}
    problems: list[Problem] = []
    for cid in counts:
        if cid not in at_station:
            name = _contest_name(definition, cid)
            problems.append(
                Problem(
                    "contest_not_at_station",
                    cid,
                    {"station": station.number, "contest": name},
                )
            )
    for contest in contests:
        count = counts.get(contest.id)
        if count is None:
            problems.append(Problem("contest_missing", contest.id, {"contest": contest.name}))
            continue
        problems += _contest_problems(contest, count)
    return problems


def _contest_problems(contest: Contest, k: ContestCount) -> list[Problem]:
    out: list[Problem] = []
    cid = contest.id
    named = {"contest": contest.name}

    def number(kind: str, key: str, n: int) -> bool:
        f = field_name(cid, kind, key)
        if n < 0:
            out.append(Problem("negative", f, {"label": _label(contest, kind, key), "value": n}))
            return False
        if n > MAX_COUNT:
            out.append(Problem("too_large", f, {"label": _label(contest, kind, key), "value": n}))
            return False
        return True

    ok = all([number(line, "", getattr(k, line)) for line in LINES])
    options = {o.id for o in contest.options}
    for oid, n in k.votes.items():
        if oid not in options:
            out.append(
                Problem("option_unknown", field_name(cid, "vote", oid), {**named, "id": oid})
            )
            ok = False
        else:
            ok = number("vote", oid, n) and ok
    for o in contest.options:
        if o.id not in k.votes:
            f = field_name(cid, "vote", o.id)
            out.append(Problem("required", f, {"label": _label(contest, "vote", o.id)}))
            ok = False
    candidates = contest.candidate_ids()
    if _open_list(contest):
        for pid, n in k.preferences.items():
            if pid not in candidates:
                f = field_name(cid, "pref", pid)
                out.append(Problem("candidate_unknown", f, {**named, "id": pid}))
                ok = False
            else:
                ok = number("pref", pid, n) and ok
        for o in contest.options:
            for c in o.candidates:
                if c.id not in k.preferences:
                    f = field_name(cid, "pref", c.id)
                    out.append(Problem("required", f, {"label": _label(contest, "pref", c.id)}))
                    ok = False
    elif any(k.preferences.values()):
        out.append(Problem("preferences_closed_list", cid, named))
        ok = False
    if not ok:
        return out  # the arithmetic below means nothing over missing or impossible numbers

    valid = sum(k.votes.values())
    if valid + k.invalid != k.ballots:
        out.append(
            Problem(
                "sum_mismatch",
                field_name(cid, "ballots"),
                {
                    **named,
                    "valid": valid,
                    "invalid": k.invalid,
                    "total": valid + k.invalid,
                    "ballots": k.ballots,
                },
            )
        )
    if k.ballots > k.issued:
        out.append(
            Problem(
                "ballots_over_issued",
                field_name(cid, "ballots"),
                {**named, "ballots": k.ballots, "issued": k.issued},
            )
        )
    if k.issued + k.spoiled > k.received:
        out.append(
            Problem(
                "over_received",
                field_name(cid, "received"),
                {
                    **named,
                    "issued": k.issued,
                    "spoiled": k.spoiled,
                    "total": k.issued + k.spoiled,
                    "received": k.received,
                },
            )
        )
    for o in contest.options:
        if not o.candidates or not _open_list(contest):
            continue
        prefs = sum(k.preferences.get(c.id, 0) for c in o.candidates)
        if prefs > k.votes[o.id]:
            out.append(
                Problem(
                    "prefs_over_votes",
                    field_name(cid, "vote", o.id),
                    {**named, "party": o.name, "prefs": prefs, "votes": k.votes[o.id]},
                )
            )
    if not out:  # the tally's own invariants, in case a rule above ever misses one
        out += [
            Problem("tally_problem", cid, {**named, "detail": p})
            for p in k.tally(contest).problems(contest)
        ]
    return out


def read_scan(data: bytes, name: str = "", *, max_bytes: int = MAX_SCAN_BYTES) -> Scan:
    """A scan recognised by its magic bytes (PDF, PNG, JPEG) within the size limit."""
    label = PurePath(name).name or "scan"
    if not data:
        raise ProtocolRefused([Problem("scan_missing", "scan")])
    if len(data) > max_bytes:
        raise ProtocolRefused(
            [
                Problem(
                    "scan_too_large",
                    "scan",
                    {"name": label, "size": _mb(len(data)), "max": _mb(max_bytes)},
                )
            ]
        )
    for magic, media_type, _ in _SCAN_TYPES:
        if data.startswith(magic):
            return Scan(media_type, data)
    raise ProtocolRefused([Problem("scan_type", "scan", {"name": label})])


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def parse_int(raw: str) -> int | None:
    """A count as typed: digits (an optional minus, spaces between thousands); else None."""
    s = raw.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    return int(s) if _INT_RE.match(s) and len(s) <= 12 else None


# --- the web form ---------------------------------------------------------------------------------
def counts_from_form(
    definition: ElectionDefinition, station_id: str, form: Mapping[str, str]
) -> dict[str, ContestCount]:
    """A station's protocol from its form fields; `ProtocolRefused` lists every problem."""
    station = definition.station(station_id)
    problems: list[Problem] = []
    counts: dict[str, ContestCount] = {}
    at_station = {c.id for c in definition.contests_for_station(station_id)}
    for key in form:
        cid, sep, _ = key.partition(":")
        if sep and cid not in at_station:
            problems.append(
                Problem("contest_not_at_station", key, {"station": station.number, "contest": cid})
            )
            break
    for contest in definition.contests_for_station(station_id):
        values: dict[str, int] = {}
        for f in form_fields_of(contest):
            raw = form.get(f, "")
            kind, key = _kind_key(f)
            if not raw.strip():
                problems.append(Problem("required", f, {"label": _label(contest, kind, key)}))
                continue
            n = parse_int(raw)
            if n is None:
                problems.append(
                    Problem(
                        "not_integer", f, {"label": _label(contest, kind, key), "value": raw[:40]}
                    )
                )
                continue
            values[f] = n
        known = set(form_fields_of(contest))
        for f in form:
            if not f.startswith(contest.id + ":") or f in known:
                continue
            kind, key = _kind_key(f)
            problem = {"vote": "option_unknown", "pref": "candidate_unknown"}.get(kind)
            if problem:
                problems.append(Problem(problem, f, {"contest": contest.name, "id": key}))
        if len(values) == len(form_fields_of(contest)):
            counts[contest.id] = _count_from(contest, values)
    if not problems:
        problems = check_counts(definition, station_id, counts)
    else:  # still check the contests that were fully filled in, to say everything at once
        problems += [
            p for cid, k in counts.items() for p in _contest_problems(definition.contest(cid), k)
        ]
    if problems:
        raise ProtocolRefused(problems)
    return counts


def form_fields_of(contest: Contest) -> list[str]:
    out = [field_name(contest.id, line) for line in LINES]
    out += [field_name(contest.id, "vote", o.id) for o in contest.options]
    if _open_list(contest):
        out += [field_name(contest.id, "pref", c.id) for o in contest.options for c in o.candidates]
    return out


def _kind_key(f: str) -> tuple[str, str]:
    _, _, rest = f.partition(":")
    kind, _, key = rest.partition(":")
    return kind, key


def _count_from(contest: Contest, values: Mapping[str, int]) -> ContestCount:
    lines = {line: values[field_name(contest.id, line)] for line in LINES}
    votes = {o.id: values[field_name(contest.id, "vote", o.id)] for o in contest.options}
    prefs = {}
    if _open_list(contest):
        prefs = {
            c.id: values[field_name(contest.id, "pref", c.id)]
            for o in contest.options
            for c in o.candidates
        }
    return ContestCount(contest_id=contest.id, votes=votes, preferences=prefs, **lines)


# --- saving ---------------------------------------------------------------------------------------
def save_protocol(
    db: Database,
    definition: ElectionDefinition,
    account: Account,
    station_id: str,
    counts: Mapping[str, ContestCount],
    scan: Scan | None,
    *,
    reason: str = "",
    at: dt.datetime,
    source: str = "form",
    base_version: int | None = None,
    thresholds: Thresholds | None = None,
) -> Saved:
    """Check and save one station's protocol as its new current version.

    `scan` may be None only for a correction (the current scan is kept).  `reason` is
    required for a correction.  `base_version` is the version the operator was looking
    at (0 for none): if someone saved meanwhile, the protocol is refused rather than
    silently overwriting theirs.  An identical protocol saves nothing.
    """
    return _save_many(
        db,
        definition,
        account,
        [(station_id, counts, scan, base_version, None)],
        reason=reason,
        at=at,
        source=source,
        thresholds=thresholds,
    )[0]


_Item = tuple[str, Mapping[str, ContestCount], Scan | None, int | None, int | None]
"""station id, counts, scan, base version, CSV line of the station's first row."""


def _save_many(
    db: Database,
    definition: ElectionDefinition,
    account: Account,
    items: Sequence[_Item],
    *,
    reason: str,
    at: dt.datetime,
    source: str,
    thresholds: Thresholds | None,
) -> list[Saved]:
    """Save several stations' protocols all or nothing (a CSV file is one unit)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    reason = reason.strip()
    problems: list[Problem] = []
    for station_id, counts, _, _, line in items:
        station = check_access(definition, account, station_id)
        problems += [
            _at(p, line, station.number if line is not None else None)
            for p in check_counts(definition, station_id, counts)
        ]
    if len(reason) > MAX_REASON:
        problems.append(Problem("reason_too_long", "reason", {"max": MAX_REASON}))
    if problems:
        raise ProtocolRefused(problems)
    thresholds = thresholds or Thresholds()
    stamp = _iso(at)
    try:
        with db.transaction() as tx:
            out = []
            for station_id, counts, scan, base_version, line in items:
                station = definition.station(station_id)
                saved = _save_one(
                    tx,
                    definition,
                    account,
                    station,
                    counts,
                    scan,
                    base_version,
                    line,
                    reason=reason,
                    at=at,
                    stamp=stamp,
                    source=source,
                    thresholds=thresholds,
                    problems=problems,
                )
                out.append(saved)
            if problems:
                raise ProtocolRefused(problems)
    except _CONFLICTS as e:
        if not _is_unique_violation(e):
            raise
        # someone saved the same station in the same instant (PostgreSQL, read committed)
        current = _current(db, items[0][0])
        version = current.version if current else 0
        raise ProtocolRefused([Problem("changed_meanwhile", "", {"version": version})]) from e
    return out


def _save_one(
    tx: Tx,
    definition: ElectionDefinition,
    account: Account,
    station: Station,
    counts: Mapping[str, ContestCount],
    scan: Scan | None,
    base_version: int | None,
    line: int | None,
    *,
    reason: str,
    at: dt.datetime,
    stamp: str,
    source: str,
    thresholds: Thresholds,
    problems: list[Problem],
) -> Saved:
    where = station.number if line is not None else None
    current = _current(tx, station.id)
    version = current.version if current else 0
    if base_version is not None and base_version != version:
        problems.append(_at(Problem("changed_meanwhile", "", {"version": version}), line, where))
        return Saved(station.id, station.number, version, False)
    ordered = {c.id: counts[c.id] for c in definition.contests_for_station(station.id)}
    if (
        current is not None
        and _same(current.counts, ordered)
        and (scan is None or scan.sha256 == current.scan_sha256)
    ):
        return Saved(station.id, station.number, version, False)
    if current is not None and not reason:
        problems.append(
            _at(Problem("reason_required", "reason", {"version": version}), line, where)
        )
        return Saved(station.id, station.number, version, False)
    if scan is None and current is None:
        problems.append(_at(Problem("scan_missing", "scan"), line, where))
        return Saved(station.id, station.number, version, False)
    if problems:  # an earlier station of the same file is refused: write nothing more
        return Saved(station.id, station.number, version, False)
    if scan is not None:
        if tx.one("SELECT sha256 FROM manual_scans WHERE sha256 = ?", (scan.sha256,)) is None:
            tx.execute(
                "INSERT INTO manual_scans (sha256, media_type, size, data, uploaded_at, "
                "uploaded_by) VALUES (?, ?, ?, ?, ?, ?)",
                (scan.sha256, scan.media_type, len(scan.data), scan.data, stamp, account.username),
            )
        sha = scan.sha256
    else:
        assert current is not None
        sha = current.scan_sha256
    if current is not None:
        tx.execute(
            "UPDATE manual_protocols SET superseded_at = ? WHERE id = ?", (stamp, current.id)
        )
    new_version = version + 1
    tx.execute(
        "INSERT INTO manual_protocols (station_id, version, entered_at, entered_by, source, "
        "reason, scan_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (station.id, new_version, stamp, account.username, source, reason, sha),
    )
    row = tx.one(
        "SELECT id FROM manual_protocols WHERE station_id = ? AND version = ?",
        (station.id, new_version),
    )
    assert row is not None
    tallies = {}
    for cid, k in ordered.items():
        contest = definition.contest(cid)
        tally = k.tally(contest)
        tallies[cid] = tally
        tx.execute(
            "INSERT INTO manual_counts (protocol_id, contest_id, received, issued, spoiled, "
            "ballots, invalid, tally) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["id"],
                cid,
                k.received,
                k.issued,
                k.spoiled,
                k.ballots,
                k.invalid,
                canonical_json(tally.to_obj()).decode("utf-8"),
            ),
        )
    aggregate.apply_manual(tx, definition, station.id, tallies, at)
    log_action(
        tx,
        at,
        account.username,
        "manual_protocol_saved",
        f"station {station.number} version {new_version} ({source}, scan {sha[:12]})"
        + (f": {reason}" if reason else ""),
    )
    reconcile_station(tx, definition, station.id, thresholds, at)
    return Saved(station.id, station.number, new_version, True)


def _same(a: Mapping[str, ContestCount], b: Mapping[str, ContestCount]) -> bool:
    return {k: v.to_obj() for k, v in a.items()} == {k: v.to_obj() for k, v in b.items()}


def _at(p: Problem, line: int | None, station: int | None) -> Problem:
    if line is None and station is None:
        return p
    return Problem(p.key, p.field, p.values, p.line if p.line is not None else line, station)


def _conflicts() -> tuple[type[BaseException], ...]:
    out: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        out.append(psycopg.errors.UniqueViolation)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(out)


_CONFLICTS = _conflicts()


def _is_unique_violation(e: BaseException) -> bool:
    return not isinstance(e, sqlite3.IntegrityError) or "UNIQUE" in str(e)


# --- reading --------------------------------------------------------------------------------------
def current_protocol(db: Database | Tx, station_id: str) -> StoredProtocol | None:
    """The station's current (latest) protocol version, or None if none was entered."""
    return _current(db, station_id)


def _current(db: Database | Tx, station_id: str) -> StoredProtocol | None:
    rows = _protocols(db, "p.station_id = ? AND p.superseded_at IS NULL", (station_id,))
    return rows[0] if rows else None


def protocol_history(db: Database | Tx, station_id: str) -> list[StoredProtocol]:
    """Every version of the station's protocol, newest first."""
    return _protocols(db, "p.station_id = ?", (station_id,))


def current_protocols(db: Database | Tx) -> dict[str, StoredProtocol]:
    """The current version of every station that has one, without the counts (for lists)."""
    rows = db.query(
        "SELECT p.*, s.media_type FROM manual_protocols p JOIN manual_scans s "
        "ON s.sha256 = p.scan_sha256 WHERE p.superseded_at IS NULL"
    )
    return {str(r["station_id"]): _stored(r, {}) for r in rows}


def _protocols(db: Database | Tx, where: str, params: Sequence[object]) -> list[StoredProtocol]:
    rows = db.query(
        "SELECT p.*, s.media_type FROM manual_protocols p JOIN manual_scans s "
        f"ON s.sha256 = p.scan_sha256 WHERE {where} ORDER BY p.version DESC",
        params,
    )
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    marks = ", ".join("?" for _ in ids)
    counts: dict[int, dict[str, ContestCount]] = {i: {} for i in ids}
    for c in db.query(
        f"SELECT * FROM manual_counts WHERE protocol_id IN ({marks}) "
        "ORDER BY protocol_id, contest_id",
        ids,
    ):
        tally = json.loads(str(c["tally"]))
        counts[int(c["protocol_id"])][str(c["contest_id"])] = ContestCount(
            contest_id=str(c["contest_id"]),
            received=int(c["received"]),
            issued=int(c["issued"]),
            spoiled=int(c["spoiled"]),
            ballots=int(c["ballots"]),
            invalid=int(c["invalid"]),
            votes=tally["votes"],
            preferences=tally["preferences"],
        )
    return [_stored(r, counts[int(r["id"])]) for r in rows]


def _stored(r: Mapping[str, Any], counts: dict[str, ContestCount]) -> StoredProtocol:
    return StoredProtocol(
        id=int(r["id"]),
        station_id=str(r["station_id"]),
        version=int(r["version"]),
        entered_at=str(r["entered_at"]),
        entered_by=str(r["entered_by"]),
        source=str(r["source"]),
        reason=str(r["reason"] or ""),
        scan_sha256=str(r["scan_sha256"]),
        scan_media_type=str(r["media_type"]),
        superseded_at=str(r["superseded_at"]) if r["superseded_at"] else None,
        counts=counts,
    )


def get_scan(db: Database | Tx, sha256: str) -> Scan | None:
    """A stored scan by its SHA-256 (hex)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return None
    row = db.one("SELECT media_type, data FROM manual_scans WHERE sha256 = ?", (sha256,))
    return Scan(str(row["media_type"]), bytes(row["data"])) if row else None


# --- CSV ------------------------------------------------------------------------------------------
def csv_template(
    definition: ElectionDefinition,
    commission_id: str,
    lang: Lang,
    current: Mapping[str, StoredProtocol] | None = None,
) -> bytes:
    """The CSV a commission clerk fills in Excel: one row per station, contest and line.

    UTF-8 with a BOM and `;` between columns, as Excel in a Kyrgyz or Russian locale
    opens and saves it.  Values of a protocol already entered are filled in (so a
    correction starts from the current numbers); the others are empty.
    """
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for station in definition.stations:
        if station.commission_id != commission_id:
            continue
        protocol = (current or {}).get(station.id)
        for contest in definition.contests_for_station(station.id):
            count = protocol.counts.get(contest.id) if protocol else None

            def value(f: str, count: ContestCount | None = count) -> str:
                v = count.value(f) if count else None
                return "" if v is None else str(v)

            for line in LINES:
                w.writerow(
                    [
                        station.number,
                        contest.id,
                        line,
                        "",
                        say(f"line_{line}", lang),
                        value(field_name(contest.id, line)),
                    ]
                )
            for o in contest.options:
                w.writerow(
                    [
                        station.number,
                        contest.id,
                        "votes",
                        o.id,
                        o.name.get(lang),
                        value(field_name(contest.id, "vote", o.id)),
                    ]
                )
            if _open_list(contest):
                for o in contest.options:
                    for c in o.candidates:
                        w.writerow(
                            [
                                station.number,
                                contest.id,
                                "preference",
                                c.id,
                                f"{o.name.get(lang)}: {c.position}. {c.name.get(lang)}",
                                value(field_name(contest.id, "pref", c.id)),
                            ]
                        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


@dataclass
class _CsvStation:
    station: Station
    first_line: int
    values: dict[str, int] = _field(default_factory=dict)
    lines: dict[str, int] = _field(default_factory=dict)  # field -> CSV line


def parse_csv(
    definition: ElectionDefinition, data: bytes, account: Account | None = None
) -> dict[str, tuple[dict[str, ContestCount], int]]:
    """Protocols from a CSV file: station id -> (counts, line of its first row).

    `ProtocolRefused` lists every problem with its line number.  With `account`, rows of
    stations outside the account's commission are refused.
    """
    if not data.strip():
        raise ProtocolRefused([Problem("csv_missing", "csv")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProtocolRefused([Problem("csv_encoding", "csv")]) from None
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as e:
        raise ProtocolRefused([Problem("csv_malformed", "csv", {"detail": str(e)[:200]})]) from None
    if not rows:
        raise ProtocolRefused([Problem("csv_empty", "csv")])
    header = [h.strip().lower() for h in rows[0]]
    if any(c not in header for c in CSV_REQUIRED):
        raise ProtocolRefused(
            [Problem("csv_header", "csv", {"columns": ", ".join(CSV_REQUIRED)}, line=1)]
        )
    col = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    by_number = {s.number: s for s in definition.stations}
    problems: list[Problem] = []
    stations: dict[str, _CsvStation] = {}

    def cell(row: list[str], name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        raw_station = cell(row, "station")
        number = parse_int(raw_station)
        station = by_number.get(number) if number is not None else None
        if station is None:
            try:
                station = definition.station(raw_station)
            except KeyError:
                problems.append(
                    Problem("station_unknown", "csv", {"station": raw_station or "?"}, line=n)
                )
                continue
        if account is not None and account.commission_id != station.commission_id:
            problems.append(
                Problem("station_not_yours", "csv", {"station": station.number}, line=n)
            )
            continue
        entry = stations.setdefault(station.id, _CsvStation(station, n))
        cid = cell(row, "contest")
        contests = {c.id: c for c in definition.contests_for_station(station.id)}
        contest = contests.get(cid)
        if contest is None:
            name = _contest_name(definition, cid or "?")
            problems.append(
                Problem(
                    "contest_not_at_station",
                    "csv",
                    {"station": station.number, "contest": name},
                    line=n,
                )
            )
            continue
        line = cell(row, "line").lower()
        key = cell(row, "id")
        if line not in CSV_LINES:
            problems.append(
                Problem(
                    "csv_line_unknown",
                    "csv",
                    {"value": line, "allowed": ", ".join(CSV_LINES)},
                    line=n,
                    station=station.number,
                )
            )
            continue
        if line in LINES:
            f = field_name(cid, line)
            kind = line
        else:
            if not key:
                problems.append(
                    Problem("csv_id_needed", "csv", {"line": line}, line=n, station=station.number)
                )
                continue
            kind = "vote" if line == "votes" else "pref"
            f = field_name(cid, kind, key)
            if kind == "vote" and key not in {o.id for o in contest.options}:
                problems.append(
                    Problem(
                        "option_unknown", f, {"contest": contest.name, "id": key}, n, station.number
                    )
                )
                continue
            if kind == "pref" and key not in contest.candidate_ids():
                problems.append(
                    Problem(
                        "candidate_unknown",
                        f,
                        {"contest": contest.name, "id": key},
                        n,
                        station.number,
                    )
                )
                continue
            if kind == "pref" and not _open_list(contest):
                problems.append(
                    Problem(
                        "preferences_closed_list", f, {"contest": contest.name}, n, station.number
                    )
                )
                continue
        if f in entry.lines:
            problems.append(
                Problem("csv_duplicate", f, {"first": entry.lines[f]}, n, station.number)
            )
            continue
        entry.lines[f] = n
        raw = cell(row, "value")
        label = _label(contest, kind, key if kind in ("vote", "pref") else "")
        if not raw:
            problems.append(Problem("required", f, {"label": label}, n, station.number))
            continue
        value = parse_int(raw)
        if value is None:
            problems.append(
                Problem("not_integer", f, {"label": label, "value": raw[:40]}, n, station.number)
            )
            continue
        entry.values[f] = value

    out: dict[str, tuple[dict[str, ContestCount], int]] = {}
    for entry in stations.values():
        counts: dict[str, ContestCount] = {}
        for contest in definition.contests_for_station(entry.station.id):
            fields = form_fields_of(contest)
            seen = [f for f in fields if f in entry.lines]
            if not seen:
                problems.append(
                    Problem(
                        "contest_missing",
                        contest.id,
                        {"contest": contest.name},
                        entry.first_line,
                        entry.station.number,
                    )
                )
                continue
            for f in fields:
                if f not in entry.lines:
                    kind, key = _kind_key(f)
                    problems.append(
                        Problem(
                            "required",
                            f,
                            {"label": _label(contest, kind, key)},
                            None,
                            entry.station.number,
                        )
                    )
            if all(f in entry.values for f in fields):
                counts[contest.id] = _count_from(contest, entry.values)
        for cid, k in counts.items():
            for p in _contest_problems(definition.contest(cid), k):
                problems.append(
                    Problem(
                        p.key,
                        p.field,
                        p.values,
                        entry.lines.get(p.field, entry.first_line),
                        entry.station.number,
                    )
                )
        out[entry.station.id] = (counts, entry.first_line)
    if not out and not problems:
        problems.append(Problem("csv_empty", "csv"))
    if problems:
        raise ProtocolRefused(problems)
    return out


def save_csv(
    db: Database,
    definition: ElectionDefinition,
    account: Account,
    data: bytes,
    scans: Mapping[str, bytes],
    *,
    reason: str = "",
    at: dt.datetime,
    thresholds: Thresholds | None = None,
    max_scan_bytes: int = MAX_SCAN_BYTES,
) -> list[Saved]:
    """Save every protocol of a CSV file, or none: one bad row refuses the whole file.

    `scans` maps uploaded file names to their bytes; a scan's name is its station's
    number (``1001.pdf``).  A station saved for the first time needs its scan; a
    correction without one keeps the current scan.
    """
    if len(data) > MAX_CSV_BYTES:
        raise ProtocolRefused([Problem("upload_too_large", "csv", {"max": _mb(MAX_CSV_BYTES)})])
    if not account.can(Permission.ENTER_MANUAL) or account.commission_id is None:
        raise NotAllowed([Problem("not_operator")])
    problems: list[Problem] = []
    by_number = {s.number: s for s in definition.stations}
    station_scans: dict[str, Scan] = {}
    scan_names: dict[str, str] = {}
    for name, blob in scans.items():
        stem = PurePath(name).stem.strip()
        number = parse_int(stem)
        station = by_number.get(number) if number is not None else None
        if station is None:
            problems.append(Problem("csv_scan_name", "scans", {"name": PurePath(name).name}))
            continue
        if station.commission_id != account.commission_id:
            problems.append(Problem("station_not_yours", "scans", {"station": station.number}))
            continue
        if station.id in station_scans or station.id in scan_names:
            problems.append(Problem("csv_scan_twice", "scans", {"station": station.number}))
            continue
        scan_names[station.id] = PurePath(name).name
        try:
            station_scans[station.id] = read_scan(blob, name, max_bytes=max_scan_bytes)
        except ProtocolRefused as e:
            problems += [Problem(p.key, "scans", p.values) for p in e.problems]
    try:
        parsed = parse_csv(definition, data, account)
    except ProtocolRefused as e:
        raise ProtocolRefused(e.problems + problems) from None
    for station_id, name in scan_names.items():
        if station_id not in parsed:
            number = definition.station(station_id).number
            problems.append(Problem("csv_scan_unused", "scans", {"name": name, "station": number}))
    if problems:
        raise ProtocolRefused(problems)
    items: list[_Item] = [
        (station_id, counts, station_scans.get(station_id), None, line)
        for station_id, (counts, line) in sorted(
            parsed.items(), key=lambda kv: definition.station(kv[0]).number
        )
    ]
    return _save_many(
        db,
        definition,
        account,
        items,
        reason=reason,
        at=at,
        source="csv",
        thresholds=thresholds,
    )


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")
