"""Voter-roll validation and face enrolment: roll CSV -> validated roll files.

Every data row of the CSV ends up either on the roll (`roll.jsonl`) or in
`rejected.csv` with its line number and a reason; nothing is dropped.  A photo
problem never takes a voter off the roll (a voter whose face cannot be
matched must still be able to vote); it only leaves them without biometrics.
The format is fixed and documented in docs/roll-format.md.

The whole country's roll (about 3.9 million rows) must fit on a modest
machine, so the CSV is streamed twice and never held in memory: pass 1 only
collects PINs (as int64, about 30 MB) to find duplicates, pass 2 validates and
writes accepted voters into per-station-range bucket files, which are then
sorted one at a time into `roll.jsonl`.  Photos are hashed as they are first
met and encoded in a process pool while validation goes on.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import heapq
import json
import logging
import os
import re
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

import numpy as np

from biometrics.face import MODEL, Enrolment
from election.definition import ElectionDefinition
from election.pin import PinError, is_pin_shaped, mask_pin, parse_pin
from provisioning.faces import PhotoEnroller

log = logging.getLogger(__name__)

HEADER: tuple[str, ...] = (
    "pin",
    "last_name",
    "first_name",
    "patronymic",
    "birth_date",
    "gender",
    "station",
    "document_no",
    "photo",
    "home_vote",
)
N_COLUMNS = len(HEADER)
VOTING_AGE = 18

# Why a row is refused, in the order the checks run (a row gets the first that applies).
REJECT_REASONS: dict[str, str] = {
    "bad_encoding": "the line is not valid UTF-8",
    "wrong_column_count": f"the row does not have exactly {N_COLUMNS} columns",
    "pin_format": "the PIN is not exactly 14 digits",
    "pin_sex_digit": "the PIN's first digit is not 1 (female) or 2 (male)",
    "pin_birth_date": "the PIN's digits 2-9 are not a birth date ddmmyyyy",
    "duplicate_pin": "the PIN appears on more than one row (every copy is refused)",
    "missing_name": "last_name or first_name is empty",
    "bad_birth_date": "birth_date is not a date YYYY-MM-DD",
    "birth_date_mismatch": "birth_date differs from the birth date in the PIN",
    "bad_gender": "gender is not F or M",
    "gender_mismatch": "gender differs from the PIN's sex digit",
    "under_18": "the voter is not 18 on election day",
    "unknown_station": "station is not the number of a station in the election definition",
    "bad_document_no": "document_no is not two letters and seven digits (e.g. ID1234567)",
    "bad_home_vote": "home_vote is not 0, 1 or empty",
}

# Why an accepted voter has no face template (they stay on the roll).
NO_BIOMETRICS_REASONS: dict[str, str] = {
    "photo_missing": "the photo column is empty",
    "photo_not_found": "no such file in the photos directory",
    "photo_unreadable": "the file cannot be read or is not an image",
    "no_face": "no face was found in the photo",
    "multiple_faces": "the photo shows more than one face",
}
_STATUS_REASON = {
    "no_face": "no_face",
    "multiple_faces": "multiple_faces",
    "unreadable": "photo_unreadable",
}

OUTPUT_FILES = ("roll.jsonl", "templates.npy", "templates.json", "rejected.csv", "summary.json")
REJECTED_HEADER = ("line", "pin", "reason", "message", "raw")
_DOC_RE = re.compile(r"[A-Z]{2}[0-9]{7}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HOME_VOTE = {"": False, "0": False, "1": True}
_LOGGED_REJECTS = 1000  # beyond this, rejects go to rejected.csv only (and one log line)
_PROGRESS_EVERY = 50_000
_SORT_CHUNK = 500_000  # lines sorted in memory at once when writing roll.jsonl

Progress = Callable[[int, int], None]
"""progress(done, total): rows validated of all rows, then voters written of those accepted."""


class RollFormatError(ValueError):
    """The file as a whole cannot be a roll (bad header, empty); nothing was written."""


@dataclass
class RollSummary:
    """What validation did; also written to summary.json."""

    rows_read: int
    accepted: int
    rejected: dict[str, int]
    enrolled: int
    no_biometrics: dict[str, int]
    distinct_photos_encoded: int
    blank_lines: int
    seconds: dict[str, float]
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256 of the written file

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected_total": self.rejected_total,
            "rejected": dict(sorted(self.rejected.items())),
            "enrolled": self.enrolled,
            "no_biometrics_total": sum(self.no_biometrics.values()),
            "no_biometrics": dict(sorted(self.no_biometrics.items())),
            "distinct_photos_encoded": self.distinct_photos_encoded,
            "blank_lines": self.blank_lines,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "files": self.files,
        }

    def describe(self) -> str:
        """A few lines for the operator: what got in, what did not, and where to look."""
        lines = [
            f"{self.rows_read:,} rows read: {self.accepted:,} accepted, "
            f"{self.rejected_total:,} rejected.",
        ]
        if self.rejected:
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.rejected.items()))
            lines.append(
                f"Rejected rows ({parts}) are listed with line numbers in "
                f"{self.out_dir / 'rejected.csv'}."
            )
        nb = sum(self.no_biometrics.values())
        line = f"Face templates: {self.enrolled:,} voters enrolled, {nb:,} without biometrics"
        if nb:
            line += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(self.no_biometrics.items()))
            line += "); they stay on the roll"
        lines.append(line + f"; {self.distinct_photos_encoded:,} distinct photos encoded.")
        if self.blank_lines:
            lines.append(f"{self.blank_lines:,} blank lines were skipped.")
        lines.append(f"Roll written to {self.out_dir / 'roll.jsonl'}.")
        return "\n".join(lines)


# --- reading -------------------------------------------------------------------------------


def _check_header(first: bytes) -> None:
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    try:
        text = first.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError:
        raise RollFormatError(
            "line 1 (header) is not valid UTF-8; save the roll as UTF-8"
        ) from None
    got = [c.strip().lower() for c in next(csv.reader([text]), [])]
    if tuple(got) == HEADER:
        return
    expected = ",".join(HEADER)
    missing = [c for c in HEADER if c not in got]
    extra = [c for c in got if c not in HEADER]
    detail = []
    if missing:
        detail.append("missing " + ", ".join(missing))
    if extra:
        detail.append("unexpected " + ", ".join(repr(c) for c in extra))
    if not detail:
        detail.append("columns are in the wrong order")
    raise RollFormatError(
        f"line 1 (header) must be exactly {expected!r} ({'; '.join(detail)}); nothing was written"
    )


def _split(line: str) -> list[str]:
    # The fast path covers the usual unquoted row; quoted fields go through csv.
    return line.split(",") if '"' not in line else next(csv.reader([line]), [])


def _lines(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, content without line ending) for every non-header line."""
    for n, raw in enumerate(f, start=2):
        yield n, raw.rstrip(b"\n").rstrip(b"\r")


def _pin_field(line: bytes) -> str:
    """The PIN field exactly as pass 2 will see it, without decoding the whole line."""
    if b'"' not in line:
        return line.split(b",", 1)[0].decode("utf-8", "replace").strip()
    fields = _split(line.decode("utf-8", "replace"))
    return fields[0].strip() if fields else ""


def _count_pins(path: Path) -> tuple[set[int], int]:
    """Pass 1: the PINs that occur on more than one row, and the number of data rows.

    Every line whose first field is 14 digits counts, whatever else is wrong with
    it: if two rows claim one person, neither can be trusted.
    """
    pins = array("q")
    rows = 0
    with path.open("rb") as f:
        f.readline()
        for _, line in _lines(f):
            if not line.strip():
                continue
            rows += 1
            p = _pin_field(line)
            if is_pin_shaped(p):
                pins.append(int(p))
    a = np.frombuffer(pins, dtype=np.int64) if len(pins) else np.zeros(0, np.int64)
    a = np.sort(a)
    dups = a[1:][a[1:] == a[:-1]]
    return set(np.unique(dups).tolist()), rows


# --- writing -------------------------------------------------------------------------------


class _AtomicFiles:
    """Outputs go to hidden temp names and are renamed into place only on commit."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.temps: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        p = self.out_dir / f".{name}.tmp-{os.getpid()}"
        self.temps[name] = p
        return p

    def commit(self, order: tuple[str, ...]) -> None:
        for name in order:
            tmp = self.temps.pop(name)
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.out_dir / name)

    def discard(self) -> None:
        for tmp in self.temps.values():
            tmp.unlink(missing_ok=True)
        self.temps.clear()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _sorted_lines(bucket: Path, work: Path) -> Iterator[str]:
    """A bucket file's lines in sorted order: in memory if small, else by sorted runs."""
    runs: list[Path] = []
    with bucket.open(encoding="utf-8", newline="\n") as fh:
        while True:
            chunk = [ln for _, ln in zip(range(_SORT_CHUNK), fh, strict=False)]
            if not chunk:
                break
            chunk.sort()
            if not runs and len(chunk) < _SORT_CHUNK:
                yield from chunk
                return
            run = work / f"{bucket.name}.run{len(runs)}"
            run.write_text("".join(chunk), encoding="utf-8")
            runs.append(run)
    files = [r.open(encoding="utf-8", newline="\n") for r in runs]
    try:
        yield from heapq.merge(*files)
    finally:
        for fh in files:
            fh.close()
        for r in runs:
            r.unlink()


# --- the validator -------------------------------------------------------------------------


def _comes_of_age(birth: dt.date) -> dt.date:
    """The 18th birthday; for 29 February, 28 February in a non-leap year (the month's last day)."""
    if birth.year + VOTING_AGE > dt.MAXYEAR:
        return dt.date.max
    try:
        return birth.replace(year=birth.year + VOTING_AGE)
    except ValueError:
        return birth.replace(year=birth.year + VOTING_AGE, day=28)


def validate_roll(
    roll_csv: Path,
    definition: ElectionDefinition,
    photos_dir: Path | None,
    out_dir: Path,
    *,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollSummary:
    """Validate a roll CSV against the election and enrol its photos into out_dir.

    Raises RollFormatError (and writes nothing) if the file is not a roll at all;
    otherwise every row is accepted or listed in rejected.csv with a reason.
    summary.json is written last: outputs without it are from an unfinished run.
    """
    roll_csv = Path(roll_csv)
    out_dir = Path(out_dir)
    photos_dir = Path(photos_dir) if photos_dir is not None else None
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    with roll_csv.open("rb") as f:
        first = f.readline()
    if not first:
        raise RollFormatError(
            f"{roll_csv} is empty; a roll needs the header line; nothing was written"
        )
    _check_header(first)

    dups, total_rows = _count_pins(roll_csv)
    seconds["count"] = time.perf_counter() - t0

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)  # the old run's results are gone
    outputs = _AtomicFiles(out_dir)
    try:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".roll-work-") as work_name:
            summary = _validate(
                roll_csv,
                definition,
                photos_dir,
                out_dir,
                Path(work_name),
                outputs,
                dups=dups,
                total_rows=total_rows,
                workers=workers,
                progress=progress,
                seconds=seconds,
            )
    except BaseException:
        outputs.discard()
        raise
    return summary


def _validate(
    roll_csv: Path,
    definition: ElectionDefinition,
    photos_dir: Path | None,
    out_dir: Path,
    work: Path,
    outputs: _AtomicFiles,
    *,
    dups: set[int],
    total_rows: int,
    workers: int,
    progress: Progress | None,
    seconds: dict[str, float],
) -> RollSummary:
    t = time.perf_counter()
    election_day = definition.date
    stations = sorted(definition.stations, key=lambda s: s.number)
    station_by_number = {str(s.number): s for s in stations}
    # Buckets hold contiguous ranges of station numbers, so sorting each bucket on its own
    # and writing them in order gives the whole roll sorted by (station number, pin).
    n_buckets = min(64, len(stations))
    bucket_of = {s.number: i * n_buckets // len(stations) for i, s in enumerate(stations)}
    bucket_paths = [work / f"bucket{i:02d}" for i in range(n_buckets)]
    buckets = [p.open("w", encoding="utf-8", newline="\n") for p in bucket_paths]

    rejected_path = outputs.path("rejected.csv")
    rejected_fh = rejected_path.open("w", encoding="utf-8", newline="")
    rejected_w = csv.writer(rejected_fh)
    rejected_w.writerow(REJECTED_HEADER)
    rejects: Counter[str] = Counter()

    def reject(line_no: int, pin: str, reason: str, message: str, raw: str) -> None:
        rejects[reason] += 1
        rejected_w.writerow((line_no, pin, reason, message, raw))
        n = rejects.total()
        if n <= _LOGGED_REJECTS:
            log.warning(
                "roll line %d (PIN %s) rejected: %s: %s", line_no, mask_pin(pin), reason, message
            )
        elif n == _LOGGED_REJECTS + 1:
            log.warning(
                "more than %d rows rejected; the rest are only in %s",
                _LOGGED_REJECTS,
                out_dir / "rejected.csv",
            )

    # PIN prefix (sex + birth date) -> PinError, or (gender letter, ISO birth date, adult?)
    pin_cache: dict[str, PinError | tuple[str, str, bool]] = {}
    # photo name -> slot; a slot is ("sha", hex) or ("err", reason, message)
    photo_slot: dict[str, int] = {}
    slots: list[tuple[str, ...]] = []
    slot_voters: list[int] = []
    slot_names: list[str] = []
    missing_photo_voters = 0
    accepted = 0
    blank = 0
    rows = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    enroller = PhotoEnroller(workers)
    try:
        with roll_csv.open("rb") as f:
            f.readline()
            for line_no, line_b in _lines(f):
                if not line_b.strip():
                    blank += 1
                    continue
                rows += 1
                if progress and rows % _PROGRESS_EVERY == 0:
                    progress(rows, total_rows)
                try:
                    line = line_b.decode("utf-8")
                except UnicodeDecodeError as e:
                    reject(
                        line_no,
                        _pin_field(line_b),
                        "bad_encoding",
                        f"line is not valid UTF-8 (bad byte 0x{line_b[e.start]:02x} at "
                        f"position {e.start}); re-save the roll as UTF-8",
                        line_b.decode("utf-8", "backslashreplace"),
                    )
                    continue
                fields = [x.strip() for x in _split(line)]
                pin = fields[0] if fields else ""
                if len(fields) != N_COLUMNS:
                    reject(
                        line_no,
                        pin,
                        "wrong_column_count",
                        f"row has {len(fields)} columns, the header has {N_COLUMNS}",
                        line,
                    )
                    continue
                (pin, last, first_name, patronymic, birth, gender, station_no, doc, photo, home) = (
                    fields
                )

                info = pin_cache.get(pin[:9]) if is_pin_shaped(pin) else None
                if info is None:
                    try:
                        parsed = parse_pin(pin)
                        info = (
                            parsed.sex.value,
                            parsed.birth_date.isoformat(),
                            _comes_of_age(parsed.birth_date) <= election_day,
                        )
                    except PinError as e:
                        info = e
                    if is_pin_shaped(pin):
                        pin_cache[pin[:9]] = info
                if isinstance(info, PinError):
                    reject(line_no, pin, info.reason, str(info), line)
                    continue
                sex, pin_birth, adult = info
                if dups and int(pin) in dups:
                    reject(
                        line_no,
                        pin,
                        "duplicate_pin",
                        "this PIN is on more than one row; every copy is refused until "
                        "the register says which one is right",
                        line,
                    )
                    continue
                if not last or not first_name:
                    which = "last_name" if not last else "first_name"
                    reject(line_no, pin, "missing_name", f"{which} is empty", line)
                    continue
                if birth != pin_birth:
                    if not _DATE_RE.fullmatch(birth) or not _is_date(birth):
                        reject(
                            line_no,
                            pin,
                            "bad_birth_date",
                            f"birth_date {birth!r} is not a date YYYY-MM-DD",
                            line,
                        )
                    else:
                        reject(
                            line_no,
                            pin,
                            "birth_date_mismatch",
                            f"birth_date {birth} but the PIN says {pin_birth}",
                            line,
                        )
                    continue
                g = gender.upper()
                if g != sex:
                    if g not in ("F", "M"):
                        reject(line_no, pin, "bad_gender", f"gender {gender!r} is not F or M", line)
                    else:
                        reject(
                            line_no,
                            pin,
                            "gender_mismatch",
                            f"gender {g} but the PIN's first digit says {sex}",
                            line,
                        )
                    continue
                if not adult:
                    reject(
                        line_no,
                        pin,
                        "under_18",
                        f"born {pin_birth}: not {VOTING_AGE} on election day "
                        f"{definition.date.isoformat()}",
                        line,
                    )
                    continue
                st = station_by_number.get(station_no)
                if st is None and station_no.isascii() and station_no.isdigit():
                    st = station_by_number.get(str(int(station_no)))
                if st is None:
                    reject(
                        line_no,
                        pin,
                        "unknown_station",
                        f"station {station_no!r} is not a station number in election "
                        f"{definition.id}",
                        line,
                    )
                    continue
                doc_u = doc.upper()
                if not _DOC_RE.fullmatch(doc_u):
                    reject(
                        line_no,
                        pin,
                        "bad_document_no",
                        f"document_no {doc!r} is not two letters and seven digits (e.g. ID1234567)",
                        line,
                    )
                    continue
                home_vote = _HOME_VOTE.get(home)
                if home_vote is None:
                    reject(
                        line_no,
                        pin,
                        "bad_home_vote",
                        f"home_vote {home!r} is not 0, 1 or empty",
                        line,
                    )
                    continue

                # Accepted.  The photo only decides biometrics, never whether the voter is in.
                if not photo:
                    slot = -1
                    missing_photo_voters += 1
                else:
                    found = photo_slot.get(photo)
                    if found is None:
                        found = len(slots)
                        slots.append(_photo(photo, photos_dir, enroller))
                        slot_voters.append(0)
                        slot_names.append(photo)
                        photo_slot[photo] = found
                    slot = found
                    slot_voters[slot] += 1
                record = dumps(
                    {
                        "pin": pin,
                        "last_name": last,
                        "first_name": first_name,
                        "patronymic": patronymic,
                        "birth_date": pin_birth,
                        "gender": sex,
                        "station": st.id,
                        "station_number": st.number,
                        "document_no": doc_u,
                        "home_vote": home_vote,
                    }
                )
                buckets[bucket_of[st.number]].write(
                    f"{st.number:08d}\t{pin}\t{slot}\t{record[:-1]}\n"
                )
                accepted += 1
        for b in buckets:
            b.close()
        rejected_fh.close()
        if rejects.total() > _LOGGED_REJECTS:
            log.warning(
                "%d rows rejected in all; see %s", rejects.total(), out_dir / "rejected.csv"
            )
        seconds["validate"] = time.perf_counter() - t

        t = time.perf_counter()
        if progress:
            progress(rows, total_rows)
        enrolments = enroller.results()
        distinct = enroller.distinct
    finally:
        enroller.close()
        for b in buckets:
            b.close()
        rejected_fh.close()
    seconds["encode_wait"] = time.perf_counter() - t

    t = time.perf_counter()
    # Templates: one row per distinct enrolled photo content.
    ok = sorted(sha for sha, en in enrolments.items() if en.status == "ok")
    matrix = np.zeros((len(ok), 128), dtype=np.float32)
    boxes: list[list[int]] = []
    for i, sha in enumerate(ok):
        enr = enrolments[sha]
        assert enr.encoding is not None and enr.box is not None
        matrix[i] = enr.encoding
        boxes.append([int(enr.box[0]), int(enr.box[1])])
    with outputs.path("templates.npy").open("wb") as fh:
        np.save(fh, matrix)
    outputs.path("templates.json").write_text(
        json.dumps({"hashes": ok, "face_box": boxes, "model": MODEL}), encoding="utf-8"
    )

    # The JSON tail of each voter's record, per photo slot; -1 (last) = no photo given.
    enrolled = 0
    no_bio: Counter[str] = Counter()
    if missing_photo_voters:
        no_bio["photo_missing"] = missing_photo_voters
    tails: list[str] = []
    for i, slot_info in enumerate(slots):
        reason = _slot_reason(slot_info, enrolments)
        if reason is None:
            sha = slot_info[1]
            tails.append(
                f',"biometrics":"enrolled","no_biometrics_reason":null,"template":"{sha}"}}\n'
            )
            enrolled += slot_voters[i]
        else:
            tails.append(
                f',"biometrics":"none","no_biometrics_reason":"{reason}","template":null}}\n'
            )
            no_bio[reason] += slot_voters[i]
            if slot_info[0] == "sha":
                log.warning(
                    "photo %s gives no template: %s (%d voters stay on the roll "
                    "without biometrics)",
                    slot_names[i],
                    reason,
                    slot_voters[i],
                )
    tails.append(',"biometrics":"none","no_biometrics_reason":"photo_missing","template":null}\n')

    roll_path = outputs.path("roll.jsonl")
    written = 0
    with roll_path.open("w", encoding="utf-8", newline="\n") as out:
        for bucket in bucket_paths:
            for ln in _sorted_lines(bucket, work):
                _, _, slot_s, rec = ln.split("\t", 3)
                out.write(rec[:-1] + tails[int(slot_s)])
                written += 1
                if progress and written % _PROGRESS_EVERY == 0:
                    progress(written, accepted)
            bucket.unlink()
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = sum(seconds.values())
    if rows != total_rows or written != accepted or accepted + rejects.total() != rows:
        raise RuntimeError(
            f"roll counts do not add up ({rows} rows, {total_rows} in pass 1, {accepted} "
            f"accepted, {written} written, {rejects.total()} rejected): was the file changed "
            "during validation?  Nothing was written."
        )

    summary = RollSummary(
        rows_read=rows,
        accepted=accepted,
        rejected=dict(rejects),
        enrolled=enrolled,
        no_biometrics=dict(no_bio),
        distinct_photos_encoded=distinct,
        blank_lines=blank,
        seconds=seconds,
        out_dir=out_dir,
    )
    summary.files = {
        name: _file_sha256(outputs.temps[name])
        for name in ("roll.jsonl", "templates.npy", "templates.json", "rejected.csv")
    }
    outputs.path("summary.json").write_text(
        json.dumps(summary.to_json_obj(), indent=2) + "\n", encoding="utf-8"
    )
    outputs.commit(OUTPUT_FILES[:-1] + ("summary.json",))
    log.info(
        "roll validated: %d rows, %d accepted, %d rejected, %d enrolled",
        rows,
        accepted,
        rejects.total(),
        enrolled,
    )
    return summary


def _is_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
    except ValueError:
        return False
    return True


def _photo(name: str, photos_dir: Path | None, enroller: PhotoEnroller) -> tuple[str, ...]:
    """Resolve, hash and queue one photo name (first time it is seen): a slot."""
    if photos_dir is None:
        return ("err", "photo_not_found", "no photos directory was given")
    rel = PurePath(name)
    if rel.is_absolute() or ".." in rel.parts:
        return (
            "err",
            "photo_not_found",
            f"photo {name!r} must be a file name inside the photos directory",
        )
    path = photos_dir / rel
    try:
        return ("sha", enroller.add(path))
    except (FileNotFoundError, NotADirectoryError):
        log.warning("photo %s not found in %s", name, photos_dir)
        return ("err", "photo_not_found", f"no file {name!r} in {photos_dir}")
    except OSError as e:
        log.warning("photo %s cannot be read: %s", name, e.strerror or e)
        return ("err", "photo_unreadable", f"cannot read {name!r}: {e.strerror or e}")


def _slot_reason(slot: tuple[str, ...], enrolments: dict[str, Enrolment]) -> str | None:
    if slot[0] == "err":
        return slot[1]
    status = enrolments[slot[1]].status
    return None if status == "ok" else _STATUS_REASON[status]
