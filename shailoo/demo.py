"""`shailoo demo`: as much of an election day as is built, end to end.

Each step runs the same command an operator would type, and prints it first,
so the demo doubles as a walkthrough.  Today: the CEC provisions a sample
election (roll validation, face enrolment, key ceremony, signed bundles) and
every station bundle is verified against the CEC root.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the end-to-end demo")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--stations", type=int, default=50)
    p.add_argument("--voters-per-station", type=int, default=500)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        default=None,
        help="afterwards, keep the public results site on 127.0.0.1:PORT, the server room on "
        "PORT+1 and the station's operator screen on PORT+2 running",
    )
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cec = out / "cec"
    cec.mkdir()
    passphrase_file = cec / "DEMO-ONLY-root-passphrase.txt"
    passphrase_file.write_text(secrets.token_urlsafe(18) + "\n")
    os.chmod(passphrase_file, 0o600)

    steps: list[tuple[str, list[str]]] = [
        (
            "CEC: a sample election like the 2021 parliament; its roll carries a clerk's mistakes",
            [
                "provision",
                "sample",
                "--stations",
                str(args.stations),
                "--voters-per-station",
                str(args.voters_per_station),
                "--seed",
                str(args.seed),
                "--out",
                str(out / "sample"),
                "--with-flaws",
            ],
        ),
        (
            "CEC: validate the roll and enrol face templates",
            [
                "provision",
                "roll",
                "--election",
                str(out / "sample" / "election.json"),
                "--roll",
                str(out / "sample" / "roll.csv"),
                "--photos",
                str(out / "sample" / "photos"),
                "--out",
                str(out / "roll"),
            ],
        ),
        (
            "CEC: key ceremony, the root key (encrypted with a passphrase)",
            ["provision", "root", "--out", str(cec), "--passphrase-file", str(passphrase_file)],
        ),
        (
            "CEC: device keys, national PIN index and one signed bundle per station",
            [
                "provision",
                "build",
                "--election",
                str(out / "sample" / "election.json"),
                "--roll-dir",
                str(out / "roll"),
                "--cec",
                str(cec),
                "--passphrase-file",
                str(passphrase_file),
                "--out",
                str(out / "provisioned"),
            ],
        ),
        (
            "Stations: each verifies its bundle against the CEC root it trusts",
            [
                "station",
                "verify-bundle",
                str(out / "provisioned" / "bundles"),
                "--root",
                str(cec / "root-cert.pem"),
                "--election",
                str(out / "sample" / "election.json"),
            ],
        ),
    ]
    from shailoo.cli import main

    for n, (title, argv) in enumerate(steps, start=1):
        print(f"\n== {n}. {title}\n$ shailoo {' '.join(argv)}", flush=True)
        started = time.perf_counter()
        code = main(argv)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
        if code != 0:
            print(f"demo stopped: step {n} failed with exit code {code}")
            return code
    from shailoo.demo_central import (
        compare_with_truth,
        print_results,
        run_fast_stations,
        start_central,
    )
    from shailoo.demo_station import run_station_day

    print("\n== 6. CEC: Mosquitto (production config, mutual TLS, ACL) and the central server "
          "(2 ingest workers on a shared subscription, SQLite)")  # fmt: skip
    central = start_central(out)
    print(f"   broker on {central.broker.host}:{central.broker.port}; database {central.db_url}")
    station = None
    try:
        print("\n== 7. Station: a day at the identification desk (simulated reader, real photos),"
              " its ballot box, closing, printed reports, delivery to the CEC")  # fmt: skip
        started = time.perf_counter()
        station = run_station_day(out, broker=(central.broker.host, central.broker.port))
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
        print("\n== 8. The other stations' day, delivered over their own uplinks")
        started = time.perf_counter()
        definition = central.server.kit.definition
        truths = run_fast_stations(out, central, {station.runtime.appliance.station.number})
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
        print("\n== 9. CEC: results aggregated from the verified station reports")
        doc = print_results(central, definition)
        same, total = compare_with_truth(doc, truths)
        print(f"   each fast station's published ASU count against the simulation's truth: "
              f"{same} of {total} station contests equal")  # fmt: skip
        record = out / "election-record"
        print(f"\n$ shailoo central export-record {record} --kit ...")
        from central.record import export_record

        print("   " + export_record(central.server.db, central.server.kit, record))
        root = out / "cec" / "root-cert.pem"
        print(f"\n== 10. Anyone: check the record independently\n$ shailoo verify {record} "
              f"--root {root}")  # fmt: skip
        verified = main(["verify", str(record), "--root", str(root)])
        if verified != 0:
            print(f"demo stopped: the election record did not verify (exit code {verified})")
            return verified
        print(f"\nDemo finished. Everything it made is under {out}/")
        if args.serve is not None:
            import asyncio

            from shailoo.demo_central import serve_all

            asyncio.run(serve_all(central, station.runtime, args.serve))
    finally:
        if station is not None:
            station.stop()
        central.stop()
    return 0
