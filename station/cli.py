"""`shailoo station ...`: the polling-station appliance."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from election import bundle as B


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("station", help="the polling-station appliance")
    ssub = p.add_subparsers(dest="station_command", required=True, metavar="ACTION")

    v = ssub.add_parser(
        "verify-bundle",
        help="accept a station bundle only if the trusted CEC root signed all of it",
        description="Verify one bundle, or every bundle under a directory of bundles.",
    )
    v.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE")
    v.add_argument("--root", type=Path, required=True, help="the CEC root certificate you trust")
    v.add_argument("--election", type=Path, default=None, help="expected election.json")
    v.add_argument("--index", type=Path, default=None, help="national-index directory")
    v.set_defaults(func=cmd_verify_bundle)

    from biometrics import cli as biometrics_cli

    biometrics_cli.register_station_commands(ssub)


def find_bundles(paths: list[Path]) -> list[Path]:
    """Each path is a bundle, or a directory whose subdirectories are bundles."""
    found: list[Path] = []
    for path in paths:
        if (path / B.MANIFEST_FILE).exists() or not path.is_dir():
            found.append(path)
        else:
            subs = sorted(
                (d for d in path.iterdir() if (d / B.MANIFEST_FILE).exists()),
                key=lambda d: (len(d.name), d.name),
            )
            found.extend(subs or [path])
    return found


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from crypto import certs
    from election.definition import ElectionDefinition
    from station.bundle import BundleError, VerifyCache, verify_bundle

    try:
        root = certs.cert_from_pem(args.root.read_bytes())
    except (OSError, ValueError) as e:
        print(f"error: cannot read the CEC root certificate {args.root}: {e}", file=sys.stderr)
        return 2
    expected = None
    if args.election:
        expected = ElectionDefinition.from_json(args.election.read_bytes()).election_hash
    now = dt.datetime.now(dt.UTC)
    refused = 0
    cache = VerifyCache()
    bundles = find_bundles(args.bundles)
    for path in bundles:
        try:
            vb = verify_bundle(
                path,
                root_cert=root,
                at=now,
                expected_election_hash=expected,
                index_dir=args.index,
                cache=cache,
            )
        except BundleError as e:
            refused += 1
            print(f"REFUSED {path}: {e}")
            continue
        m = vb.manifest
        print(
            f"OK      {path}: station {m.station_number}, device {m.device_id}, "
            f"{m.voters} voters ({m.enrolled} enrolled), election {m.election_hash[:12]}"
        )
    print(f"{len(bundles) - refused} of {len(bundles)} bundles verified")
    return 1 if refused else 0
