"""`shailoo sim ...`: simulated election days (`shailoo sim day`, docs/sim.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from sim.faults import profile_names

    p = sub.add_parser("sim", help="simulated election days against the real CEC server")
    ssub = p.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    d = ssub.add_parser(
        "day",
        help="N stations through a whole election day on a compressed clock, with faults; "
        "reconciled against the ground truth (exit 1 if the published results differ)",
        description="Provisions an election (reused from --out when made with the same "
        "parameters), starts Mosquitto and the central server, runs every station's day "
        "(08:00 zero report, voters, turnout, 20:00 close and the closing storm) through "
        "its own uplink, waits until every final report is acknowledged and published, and "
        "compares the published results with the simulation's ground truth.",
    )
    d.add_argument("--stations", type=int, default=10)
    d.add_argument("--voters-per-station", type=int, default=200)
    d.add_argument(
        "--turnout",
        type=float,
        default=None,
        help="share of each roll that votes, 0..1 (default: seeded by region and "
        "station, 38-60%% nationally)",
    )
    d.add_argument(
        "--speed",
        type=float,
        default=720.0,
        help="simulated seconds per real second (720: 08:00-20:00 in 1 minute)",
    )
    d.add_argument(
        "--evening-speed",
        type=float,
        default=None,
        help="the clock's speed after 20:00 (default: --speed)",
    )
    d.add_argument(
        "--faults",
        default="none",
        metavar="PROFILE",
        help=f"a fault profile: {', '.join(profile_names())}, or a JSON file",
    )
    d.add_argument(
        "--full",
        type=int,
        default=1,
        metavar="K",
        help="the first K stations run the full device path: combo reader on a pty, real "
        "photos and face match, ASU simulator with rendered sheets read by the mark reader "
        "(about a second per voter; default 1)",
    )
    d.add_argument("--out", type=Path, default=Path("sim-day"))
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument(
        "--election",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the election is provisioned, reused when made with the same "
        "parameters (default OUT/election)",
    )
    d.add_argument(
        "--db", default=None, help="central database URL (an empty one; default SQLite in OUT/run)"
    )
    d.add_argument("--kind", default="parliament", choices=["parliament", "presidential"])
    d.add_argument(
        "--procs",
        type=int,
        default=None,
        help="station worker processes (default: 1 up to 20 stations, else 2; at least one "
        "per 140 stations)",
    )
    d.add_argument("--central-workers", type=int, default=2, help="ingest worker processes")
    d.add_argument(
        "--close-spread",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="stations close at 20:00 plus up to this many minutes",
    )
    d.add_argument(
        "--deadline",
        type=float,
        default=360.0,
        metavar="MINUTES",
        help="simulated minutes after 20:00 to wait for every final report",
    )
    d.add_argument(
        "--setup-images",
        action="store_true",
        help="keep each fast station's storage right after set-up next to the election and "
        "start from it in later runs (set-up is most of a national run's start)",
    )
    d.add_argument(
        "--keep-station-data",
        action="store_true",
        help="keep each station's database (default: removed at the end)",
    )
    d.set_defaults(func=cmd_day)


def cmd_day(args: argparse.Namespace) -> int:
    from sim.day import DayConfig, DayError, run_day

    cfg = DayConfig(
        stations=args.stations,
        voters_per_station=args.voters_per_station,
        turnout=args.turnout,
        speed=args.speed,
        evening_speed=args.evening_speed,
        faults=args.faults,
        full=args.full,
        out=args.out,
        election=args.election,
        seed=args.seed,
        db=args.db,
        kind=args.kind,
        procs=args.procs,
        central_workers=args.central_workers,
        close_spread=args.close_spread,
        deadline=args.deadline,
        keep_station_data=args.keep_station_data,
        setup_images=args.setup_images,
    )
    try:
        result = run_day(cfg)
    except DayError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1
