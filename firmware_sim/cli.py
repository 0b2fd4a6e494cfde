"""`shailoo ballot test-deck`: the logic-and-accuracy deck a box in test mode must count exactly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from election import bundle as B
from election.ballot_layout import BallotLayouts


def register_ballot(bsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = bsub.add_parser(
        "test-deck",
        help="a test deck (every option once, blanks, an overvote, a faint mark) and its tally",
    )
    t.add_argument("--bundle", type=Path, required=True, help="the station's bundle")
    t.add_argument("--out", type=Path, required=True, help="directory for the sheets")
    t.add_argument("--preferences", action="store_true", help="a sheet per candidate box too")
    t.add_argument("--scanned", action="store_true", help="with mild scanner defects")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_test_deck)


def station_styles(bundle: Path) -> tuple[BallotLayouts, list[str]]:
    """The bundle's layouts and the styles its station takes."""
    from election.definition import ElectionDefinition

    layouts = BallotLayouts.model_validate_json((bundle / B.LAYOUTS_FILE).read_bytes())
    definition = ElectionDefinition.from_json((bundle / B.ELECTION_FILE).read_bytes())
    station_id = json.loads((bundle / B.MANIFEST_FILE).read_bytes())["body"]["station_id"]
    ours = {c.id for c in definition.contests_for_station(station_id)}
    styles = [s.style_id for s in layouts.styles if {c.contest_id for c in s.contests} <= ours]
    return layouts, styles


def cmd_test_deck(args: argparse.Namespace) -> int:
    import cv2

    from firmware_sim.ballot_marks import ScanDefects, test_deck
    from provisioning.ballots import render_png

    try:
        layouts, styles = station_styles(args.bundle)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.bundle} is not a readable station bundle: {e}", file=sys.stderr)
        return 2
    deck = test_deck(
        layouts,
        styles,
        lambda sid: render_png(layouts, sid, test=True),
        preferences=args.preferences,
        seed=args.seed,
        defects=ScanDefects.mild() if args.scanned else None,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for i, sheet in enumerate(deck.sheets, start=1):
        cv2.imwrite(str(args.out / f"sheet-{i:04d}.png"), sheet.image)
    (args.out / "expected.json").write_text(
        json.dumps(deck.truth_json(), ensure_ascii=False, indent=1) + "\n"
    )
    print(f"{len(deck.sheets)} test sheets for styles {', '.join(styles)} -> {args.out}")
    print(f"expected tally: {args.out / 'expected.json'}")
    return 0
