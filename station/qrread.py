"""`shailoo verify-qr`: read a printed report's QR codes from photos or scans and verify them.

Used by observers and the CEC, not only at the station.  Reading the codes out of
an image is crypto/qrimage.py (the public results site's "check a report" uses it
too); this module imports nothing from the station runtime, so
`from station.qrread import main_verify_qr` pulls in only crypto and the image
libraries.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from crypto.certs import cert_from_pem
from crypto.errors import CryptoError
from crypto.qrchain import MAGIC, VerifiedReport, group_parts, verify_parts
from crypto.qrimage import read_qr_texts

__all__ = ["build_parser", "main_verify_qr", "read_qr_texts", "register"]


def _counts(body: dict[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for k, v in body.items():
        if isinstance(v, dict):
            lines += _counts(v, f"{prefix}{k}.")
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    name = item.get("contest_id", "")
                    lines += _counts(item, f"{prefix}{k}[{name}].")
        else:
            lines.append(f"  {prefix}{k}: {v}")
    return lines


def _describe(r: VerifiedReport, out: TextIO) -> None:
    env = r.envelope
    print(
        f"OK  {env.kind} station {env.station} seq {env.seq}, device {env.device}, "
        f"signed {env.time}; {r.parts} QR codes; report hash {env.hash}",
        file=out,
    )
    for line in _counts(env.body):
        print(line, file=out)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="shailoo verify-qr")
    p.description = (
        "Read a printed report's QR codes from photos or scans, rebuild the signed report "
        "and check its hash chain, its certificate and its signature."
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--root", type=Path, required=True, metavar="CERT", help="CEC root (PEM)")
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit 0 when every report found verifies; 2 otherwise, saying what is wrong."""
    out = out or sys.stdout
    try:
        root = cert_from_pem(args.root.read_bytes())
    except (OSError, CryptoError) as e:
        print(f"cannot read the CEC root certificate {args.root}: {e}", file=out)
        return 2
    texts: list[str] = []
    for image in args.images:
        try:
            found = read_qr_texts(image)
        except OSError as e:
            print(f"cannot read image {image}: {e}", file=out)
            return 2
        print(f"{image}: {len(found)} QR codes", file=out)
        texts += found
    groups = group_parts(texts)
    others = sum(1 for t in dict.fromkeys(texts) if not t.startswith(MAGIC + " "))
    if others:
        print(f"ignored {others} QR codes that are not Shailoo reports", file=out)
    if not groups:
        print("FAIL: no Shailoo report QR codes found", file=out)
        return 2
    status = 0
    for (kind, station, seq), parts in sorted(groups.items()):
        try:
            _describe(verify_parts(parts, root), out)
        except CryptoError as e:
            print(f"FAIL {kind} station {station} seq {seq}: {e}", file=out)
            status = 2
    return status


def main_verify_qr(argv: list[str] | None = None) -> int:
    """Entry point for `shailoo verify-qr IMAGE... --root CERT`."""
    return run(build_parser().parse_args(argv))


def register(sub: Any) -> None:
    """Add `verify-qr` to argparse subparsers; its func(args) returns the exit code."""
    p = build_parser(sub.add_parser("verify-qr", help="verify a printed report's QR codes"))
    p.set_defaults(func=run)
