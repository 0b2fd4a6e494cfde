"""`shailoo provision ...`: what the CEC runs before election day."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from election.definition import DefinitionError, ElectionDefinition

REPO_ROOT = Path(__file__).resolve().parents[1]
BISHKEK = dt.timezone(dt.timedelta(hours=6))


def default_faces_dir() -> Path:
    """The shared real face photos, unless SHAILOO_FACES names others."""
    env = os.environ.get("SHAILOO_FACES")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "faces"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("provision", help="CEC provisioning: sample, roll, root, build, spare")
    psub = p.add_subparsers(dest="provision_command", required=True, metavar="STEP")

    s = psub.add_parser("sample", help="write a realistic sample election, roll and photos")
    s.add_argument("--stations", type=int, default=50)
    s.add_argument("--voters-per-station", type=int, default=500)
    s.add_argument("--seed", type=int, default=2026)
    s.add_argument("--kind", choices=["parliament", "presidential"], default="parliament")
    s.add_argument("--faces", type=Path, default=None, help="real face photos (person folders)")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument(
        "--with-flaws",
        action="store_true",
        help="append a clerk's mistakes (one row per reject reason, unusable photos)",
    )
    s.set_defaults(func=cmd_sample)

    r = psub.add_parser("roll", help="validate the voter roll and enrol face templates")
    r.add_argument("--election", type=Path, required=True, help="election.json")
    r.add_argument("--roll", type=Path, required=True, help="roll CSV")
    r.add_argument("--photos", type=Path, default=None, help="directory of enrolment photos")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    r.set_defaults(func=cmd_roll)

    k = psub.add_parser("root", help="key ceremony: create the CEC root key and certificate")
    k.add_argument("--out", type=Path, required=True, help="CEC key directory")
    k.add_argument("--passphrase-file", type=Path, default=None)
    k.set_defaults(func=cmd_root)

    b = psub.add_parser("build", help="device keys, national index and signed station bundles")
    b.add_argument("--election", type=Path, required=True, help="election.json")
    b.add_argument("--roll-dir", type=Path, required=True, help="output of `provision roll`")
    b.add_argument("--cec", type=Path, required=True, help="CEC key directory (`provision root`)")
    b.add_argument("--passphrase-file", type=Path, default=None)
    b.add_argument("--broker-host", default="127.0.0.1")
    b.add_argument("--broker-port", type=int, default=8883)
    b.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    b.add_argument("--out", type=Path, required=True)
    b.set_defaults(func=cmd_build)

    sp = psub.add_parser(
        "spare",
        help="a spare device for one station: new keys under the CEC root, and its bundle",
        description="Issue a spare appliance's device keys and certificates for one station "
        "(bound to the same station and election, signed by the CEC root) and write its "
        "bundle from the station's own bundle, plus its signing certificate for "
        "`shailoo central authorise-device`.  The station's storage moves into the spare, "
        "which takes it over with `shailoo station take-over`.",
    )
    sp.add_argument("--prov", type=Path, required=True, help="output of `provision build`")
    sp.add_argument("--station", type=int, required=True, metavar="NUMBER", help="station number")
    sp.add_argument("--cec", type=Path, required=True, help="CEC key directory (`provision root`)")
    sp.add_argument("--passphrase-file", type=Path, default=None, help="the root's passphrase")
    sp.add_argument("--device-id", default=None, help="default: spare-<station id>-<random>")
    sp.add_argument("--out", type=Path, default=None, help="default: PROV/spares")
    sp.set_defaults(func=cmd_spare)


def cmd_sample(args: argparse.Namespace) -> int:
    from provisioning.sample import generate_sample

    faces = args.faces or default_faces_dir()
    if not faces.is_dir():
        return _fail(f"face photos not found at {faces}; pass --faces DIR or set SHAILOO_FACES")
    with progress_bar("sample roll", "voters") as tick:
        info = generate_sample(
            args.out,
            stations=args.stations,
            voters_per_station=args.voters_per_station,
            seed=args.seed,
            kind=args.kind,
            faces_dir=faces,
            progress=tick,
        )
    if args.with_flaws:
        from provisioning.flaws import append_flaws

        rejects, no_bio = append_flaws(info.roll_path, info.photos_dir, faces, info.definition)
        print(
            f"appended {len(rejects) + len(no_bio)} flawed rows: {len(rejects)} to be rejected, "
            f"{len(no_bio)} with unusable photos"
        )
    print(
        f"sample {info.definition.id}: {len(info.definition.stations)} stations, "
        f"{info.voters_written} voters, {len(info.definition.contests)} contests -> {args.out} "
        f"({info.seconds:.1f} s)"
    )
    return 0


def cmd_roll(args: argparse.Namespace) -> int:
    from provisioning.roll import RollFormatError, validate_roll

    definition = _load_definition(args.election)
    if definition is None:
        return 2
    if not args.roll.exists():
        return _fail(f"roll file {args.roll} not found")
    try:
        with progress_bar("roll", "rows") as tick:
            summary = validate_roll(
                args.roll, definition, args.photos, args.out, workers=args.workers, progress=tick
            )
    except RollFormatError as e:
        return _fail(f"{args.roll}: {e}")
    print(summary.describe())
    return 0


def cmd_root(args: argparse.Namespace) -> int:
    from provisioning.keyceremony import CeremonyError, create_root

    passphrase = _passphrase(args.passphrase_file, confirm=True)
    try:
        root = create_root(args.out, passphrase, now=dt.datetime.now(BISHKEK))
    except CeremonyError as e:
        return _fail(str(e))
    print(f"CEC root {root.key_id} created in {args.out} (private key encrypted)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from election.bundle import BrokerSettings
    from provisioning.bundle import BuildError, build_bundles
    from provisioning.keyceremony import CeremonyError, load_root

    definition = _load_definition(args.election)
    if definition is None:
        return 2
    try:
        root = load_root(args.cec, _passphrase(args.passphrase_file))
    except CeremonyError as e:
        return _fail(str(e))
    except ValueError as e:  # wrong passphrase or damaged key file
        return _fail(str(e))
    try:
        with progress_bar("bundles", "stations") as tick:
            summary = build_bundles(
                definition,
                args.roll_dir,
                root,
                args.out,
                broker=BrokerSettings(host=args.broker_host, port=args.broker_port),
                now=dt.datetime.now(BISHKEK),
                workers=args.workers,
                progress=tick,
            )
    except BuildError as e:
        return _fail(str(e))
    print(summary.describe())
    print(f"device passphrases: {args.out / 'secrets' / 'device-passphrases.csv'} (deliver sealed)")
    return 0


def cmd_spare(args: argparse.Namespace) -> int:
    from provisioning.keyceremony import CeremonyError, load_root
    from provisioning.spare import SpareError, make_spare

    try:
        root = load_root(args.cec, _passphrase(args.passphrase_file))
    except (CeremonyError, ValueError) as e:  # ValueError: wrong passphrase, damaged key file
        return _fail(str(e))
    try:
        spare = make_spare(
            args.prov,
            root,
            args.station,
            now=dt.datetime.now(BISHKEK),
            out_dir=args.out,
            device_id=args.device_id,
        )
    except SpareError as e:
        return _fail(str(e))
    print(
        f"spare device {spare.device_id} for station {spare.station_number} "
        f"({spare.station_id}; replaces {spare.replaces})\n"
        f"  bundle:      {spare.bundle_dir}\n"
        f"  certificate: {spare.cert_path}\n"
        f"  passphrase:  {spare.passphrases_file} (deliver sealed)\n"
        f"next: shailoo central authorise-device --cert {spare.cert_path} --by NAME\n"
        f"      shailoo station take-over --bundle {spare.bundle_dir} --data DATA ..."
    )
    return 0


def _load_definition(path: Path) -> ElectionDefinition | None:
    try:
        return ElectionDefinition.from_json(path.read_bytes())
    except FileNotFoundError:
        _fail(f"election definition {path} not found")
    except (DefinitionError, ValueError) as e:
        _fail(f"{path} is not a valid election definition: {e}")
    return None


def _passphrase(path: Path | None, *, confirm: bool = False) -> str:
    """The CEC root passphrase: from a file, SHAILOO_ROOT_PASSPHRASE, or typed in."""
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    if env := os.environ.get("SHAILOO_ROOT_PASSPHRASE"):
        return env
    first = getpass.getpass("CEC root passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        raise SystemExit("error: the two passphrases differ")
    return first


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


@contextmanager
def progress_bar(what: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal; silent (but still timed) when piped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console

    with Progress(
        TextColumn(f"{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


def register_ballot(bsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = bsub.add_parser("render", help="a ballot style as print-ready PDF and PNG")
    r.add_argument("--bundle", type=Path, required=True, help="a station bundle (its layouts)")
    r.add_argument("--style", required=True, help="style id (e.g. the contest id)")
    r.add_argument("--out", type=Path, required=True, help="FILE.pdf, FILE.png, or FILE (both)")
    r.add_argument("--test", action="store_true", help="a test-deck sheet (refused in live mode)")
    r.set_defaults(func=cmd_ballot_render)


def cmd_ballot_render(args: argparse.Namespace) -> int:
    from PIL import Image

    from election import bundle as B
    from election.ballot_layout import BallotLayouts
    from provisioning.ballots import render_pdf, render_png

    try:
        layouts = BallotLayouts.model_validate_json((args.bundle / B.LAYOUTS_FILE).read_bytes())
        layouts.style(args.style)
    except FileNotFoundError:
        return _fail(f"{args.bundle} has no {B.LAYOUTS_FILE}: is it a station bundle?")
    except KeyError:
        return _fail(
            f"no style {args.style!r}; styles: {', '.join(s.style_id for s in layouts.styles)}"
        )
    suffix = args.out.suffix.lower()
    targets = (
        [args.out]
        if suffix in (".pdf", ".png")
        else [args.out.with_suffix(".pdf"), args.out.with_suffix(".png")]
    )
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".pdf":
            render_pdf(layouts, args.style, target, test=args.test)
        else:
            Image.fromarray(render_png(layouts, args.style, test=args.test)).save(target)
        print(f"{target}: style {args.style}{' (TEST)' if args.test else ''}")
    return 0
