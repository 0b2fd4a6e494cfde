"""The one console command, `shailoo`; each subcommand's code lives in its own package."""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from biometrics import cli as biometrics_cli
    from central import cli as central_cli
    from firmware_sim import cli as firmware_sim_cli
    from provisioning import cli as provisioning_cli
    from shailoo import demo
    from sim import cli as sim_cli
    from station import cli as station_cli
    from station import qrread
    from verifier import cli as verifier_cli

    parser = argparse.ArgumentParser(
        prog="shailoo",
        description="Shailoo: Kyrgyzstan's polling-station appliance and CEC central server.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    provisioning_cli.register(sub)
    station_cli.register(sub)
    central_cli.register(sub)
    biometrics_cli.register(sub)
    qrread.register(sub)
    verifier_cli.register(sub)
    ballot = sub.add_parser("ballot", help="ballot sheets: render, read, test deck")
    bsub = ballot.add_subparsers(dest="ballot_command", required=True, metavar="ACTION")
    provisioning_cli.register_ballot(bsub)
    station_cli.register_ballot(bsub)
    firmware_sim_cli.register_ballot(bsub)
    demo.register(sub)
    sim_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
