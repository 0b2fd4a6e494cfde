"""`shailoo verify RECORD_DIR_OR_URL`: check every signature, recompute every published
number, compare, and exit 0 only if everything matches.

Exit status: 0 verified; 1 a check failed or a number differs; 2 nothing could be
checked (no record there, download failed, unsafe archive, unusable --root).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509

from crypto.errors import CryptoError
from verifier import record as R
from verifier.check import check_record, load_root
from verifier.compare import NotCanonical, count_values, differences, parse_published, same_bytes
from verifier.recompute import rebuild
from verifier.report import Comparison, Report

OK, FAILED, UNREADABLE = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "verify",
        help="check an election record: signatures, chains, and every published number",
        description="Check the election record the CEC publishes (a directory, a .tar.gz or "
        ".zip, or the results site's address): every certificate and signature, every "
        "station's chain of messages, then recompute every published number from the signed "
        "station reports and the manual counts and compare it with results.json. Exit 0 "
        "only if everything matches.",
    )
    p.add_argument(
        "record",
        metavar="RECORD_DIR_OR_URL",
        help="the record directory, its archive, or https://SITE (fetches "
        "SITE/api/v1/record.tar.gz) or a URL ending in .tar.gz or .zip",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        metavar="PEM",
        help="the CEC root certificate you trust (strongly advised: without it the record is "
        "checked against its own root)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings too (root not pinned, holes in a station's chain, a message "
        "signed outside its certificate's validity)",
    )
    p.add_argument(
        "--show", type=int, default=50, metavar="N", help="differences and findings to print"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="download timeout, seconds")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    pinned: x509.Certificate | None = None
    if args.root is not None:
        try:
            pinned = load_root(args.root.read_bytes())
        except (OSError, CryptoError) as e:
            print(f"shailoo verify: --root {args.root}: {e}", file=sys.stderr)
            return UNREADABLE
    try:
        report = verify(args.record, root=pinned, strict=args.strict, timeout=args.timeout)
    except R.RecordUnreadable as e:
        if args.json:
            print(json.dumps({"ok": False, "unreadable": str(e)}, indent=1))
        print(f"shailoo verify: {e}", file=sys.stderr)
        return UNREADABLE
    if args.json:
        print(json.dumps(report.to_obj(), ensure_ascii=False, indent=1, sort_keys=True))
    else:
        print(report.to_text(show=max(args.show, 0)))
    return OK if report.ok else FAILED


def verify(
    source: str,
    *,
    root: x509.Certificate | None = None,
    strict: bool = False,
    timeout: float = 120.0,
) -> Report:
    """Verify the record at `source` (directory, archive or URL); RecordUnreadable if there
    is no record to check."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shailoo-verify-") as tmp:
        directory = R.locate(source, Path(tmp), timeout=timeout)
        report = verify_directory(directory, source, root=root, strict=strict)
    report.seconds = time.perf_counter() - start
    return report


def verify_directory(
    directory: Path, source: str, *, root: x509.Certificate | None, strict: bool = False
) -> Report:
    """Check, rebuild and compare one record directory."""
    start = time.perf_counter()
    files = R.load(directory, source)
    checked = check_record(files, root)
    rebuilt = None
    comparison = None
    if checked.definition is not None:
        manual = {sid: p.tallies for sid, p in checked.manual.items()}
        rebuilt = rebuild(checked.definition, checked.messages, manual)
        comparison = compare(rebuilt.document, checked.results)
    report = Report(source, checked, rebuilt, comparison, strict)
    report.seconds = time.perf_counter() - start
    return report


def compare(document: dict[str, object], published: bytes | None) -> Comparison:
    """Bytes first (the strongest check, and fast); value by value only if they differ."""
    if published is None:
        return Comparison(published=False, numbers=count_values(document))
    out = Comparison(published=True, numbers=count_values(document))
    if same_bytes(document, published):
        out.identical = True
        return out
    try:
        parsed = parse_published(published)
    except NotCanonical as e:
        out.unreadable = str(e)
        return out
    try:
        found = differences(parsed, document)
    except RecursionError:
        out.unreadable = "nested too deeply to compare"
        return out
    out.differences, out.total, out.stations = found.kept, found.total, found.stations
    if isinstance(parsed, dict) and parsed.get("as_of") != document.get("as_of"):
        out.hint = (
            f"results.json rests on reports signed up to {parsed.get('as_of')}, the record's "
            f"evidence up to {document.get('as_of')}: if reports were still arriving when the "
            "record was exported, the differences may be reports published since (fetch the "
            "record again after the next publication); the verdict stands either way"
        )
    return out
