"""`shailoo face compare` and `shailoo station face-eval`: the face check from the command line.

`face compare ENROLL_IMAGE PROBE_IMAGE` is a contract that outside checks rely
on, exactly: stdout carries ONE JSON object
    {"status": "match" | "no_match" | "no_face" | "multiple_faces", "distance": float | null}
and the exit code is 0 for match / no_match, 2 for anything else.  The enrolment
image is encoded as the CEC enrols (whole photo), the probe as the station sees
a camera frame (downscaled to CAMERA_MAX_SIDE), and the threshold is the
station's (MATCH_THRESHOLD).  An image that is missing or cannot be decoded
yields no face: status "no_face", distance null, exit 2, and a one-line reason
on stderr.  When both images fail, the enrolment image's status is reported.
Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_NOT_COMPARED = 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `face` command group (`face compare`) to the top-level subparsers."""
    p = sub.add_parser("face", help="1:1 face comparison, as the station does it")
    fsub = p.add_subparsers(dest="face_command", required=True, metavar="ACTION")
    c = fsub.add_parser(
        "compare",
        help="compare a probe photo with an enrolment photo; one JSON object on stdout",
        description=(
            'Prints {"status": "match"|"no_match"|"no_face"|"multiple_faces", '
            '"distance": float|null}; exit 0 for match/no_match, 2 otherwise.'
        ),
    )
    c.add_argument("enroll", type=Path, metavar="ENROLL_IMAGE")
    c.add_argument("probe", type=Path, metavar="PROBE_IMAGE")
    c.set_defaults(func=cmd_compare)


def register_station_commands(ssub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `face-eval` to the `station` command's subparsers."""
    from biometrics.face import CAMERA_MAX_SIDE, MATCH_THRESHOLD

    e = ssub.add_parser(
        "face-eval",
        help="genuine / impostor distances, FMR and FNMR of the face check on a photo folder",
        description=(
            "DIR holds one folder per person with enroll.* and probe*.* photos "
            "(folders starting with _ are ignored), like ../shared/data/faces."
        ),
    )
    e.add_argument("faces_dir", type=Path, metavar="DIR")
    e.add_argument(
        "--threshold",
        type=float,
        default=MATCH_THRESHOLD,
        help=f"match at or below this distance (default {MATCH_THRESHOLD})",
    )
    e.add_argument(
        "--max-side",
        type=int,
        default=CAMERA_MAX_SIDE,
        help=f"probe frames are downscaled to this long side (default {CAMERA_MAX_SIDE})",
    )
    e.add_argument("--json", action="store_true", help="print one JSON object instead")
    e.set_defaults(func=cmd_face_eval)


def _result(status: str, distance: float | None) -> int:
    print(json.dumps({"status": status, "distance": distance}))
    return EXIT_OK if status in ("match", "no_match") else EXIT_NOT_COMPARED


def compare_images(enroll: Path, probe: Path) -> tuple[str, float | None, str | None]:
    """(status, distance, reason for stderr or None): the work behind `face compare`."""
    import numpy as np

    from biometrics.face import CAMERA_MAX_SIDE, downscale, encode_face, load_rgb, verify

    images: list[np.ndarray] = []
    for role, path in (("enrolment", enroll), ("probe", probe)):
        try:
            data = path.read_bytes()
        except OSError as e:
            return "no_face", None, f"cannot read the {role} image {path}: {e.strerror or e}"
        image = load_rgb(data)
        if image is None:
            return "no_face", None, f"the {role} image {path} is not a readable picture"
        images.append(image)
    template = encode_face(images[0])
    if template.encoding is None:
        why = template.status
        return (
            "no_face" if why == "unreadable" else why,
            None,
            f"enrolment image {enroll}: {why.replace('_', ' ')}",
        )
    frame, _ = downscale(images[1], CAMERA_MAX_SIDE)
    verdict, distance = verify(frame, template.encoding)
    if distance is None:
        return (
            "no_face" if verdict == "unreadable" else verdict,
            None,
            f"probe image {probe}: {verdict.replace('_', ' ')}",
        )
    return verdict, round(distance, 6), None


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        status, distance, reason = compare_images(args.enroll, args.probe)
    except Exception as e:  # the contract is one JSON object and no traceback, whatever happens
        status, distance, reason = "no_face", None, f"internal error: {type(e).__name__}: {e}"
    if reason:
        print(f"face compare: {reason}", file=sys.stderr)
    return _result(status, distance)


def cmd_face_eval(args: argparse.Namespace) -> int:
    from biometrics.evaluate import EvaluationError, evaluate, format_report

    try:
        ev = evaluate(args.faces_dir, args.threshold, max_side=args.max_side)
    except (EvaluationError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(ev.to_dict(), indent=2))
    else:
        print(format_report(ev))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A parser with exactly the commands this module adds, spelled as under `shailoo`."""
    parser = argparse.ArgumentParser(prog="shailoo")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    station = sub.add_parser("station", help="the polling-station appliance")
    register_station_commands(
        station.add_subparsers(dest="station_command", required=True, metavar="ACTION")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `face compare ...` or `station face-eval ...` without the rest of `shailoo`."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


def main_compare(argv: list[str]) -> int:
    """`shailoo face compare` with argv = [ENROLL_IMAGE, PROBE_IMAGE]."""
    return main(["face", "compare", *argv])


if __name__ == "__main__":
    sys.exit(main())
