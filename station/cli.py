"""`shailoo station ...`: the polling-station appliance."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from election import bundle as B

if TYPE_CHECKING:
    from cryptography import x509


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

    r = ssub.add_parser(
        "run",
        help="run the polling station: reader, camera and the operator screen",
        description="Verify the bundle, start the appliance (set it up on first start), the "
        "combo reader and the camera, and serve the operator screen on 127.0.0.1.  The device "
        "passphrase comes from --passphrase-file or $SHAILOO_DEVICE_PASSPHRASE, the chair's "
        "code (first start only) from --chair-code-file or $SHAILOO_CHAIR_CODE.",
    )
    _device_arguments(r, "this station's bundle", "the station's data directory")
    r.add_argument("--reader", type=Path, default=None, help="combo reader serial device")
    r.add_argument(
        "--camera", default=None, help="camera: device index, video file or image pattern"
    )
    r.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free)")
    r.add_argument("--test-mode", action="store_true", help="logic-and-accuracy test mode")
    r.add_argument(
        "--turnout-minutes", type=int, default=60, help="sign a turnout snapshot this often"
    )
    r.add_argument(
        "--broker",
        default=None,
        metavar="HOST:PORT",
        help="send to this MQTT broker instead of the bundle's (e.g. through the modem)",
    )
    r.add_argument(
        "--offline",
        action="store_true",
        help="no uplink: reports wait in the outbox",
    )
    r.set_defaults(func=cmd_run)

    t = ssub.add_parser(
        "take-over",
        help="a spare device takes over a failed one's storage (chair's code), then signs",
        description="The failed appliance's storage (its data directory) has been moved into "
        "this spare.  Verify the spare's bundle (the CEC's, same station and election, "
        "another device), check the chair's code, record the handover in the event log and "
        "sign the spare's first message, which names the device it replaces.  Then start the "
        "station with `shailoo station run --bundle SPARE_BUNDLE --data DIR`.  The spare's "
        "passphrase comes from --passphrase-file or $SHAILOO_DEVICE_PASSPHRASE, the chair's "
        "code from --chair-code-file or $SHAILOO_CHAIR_CODE.",
    )
    _device_arguments(t, "the spare's bundle", "the moved data directory")
    t.set_defaults(func=cmd_take_over)

    from biometrics import cli as biometrics_cli

    biometrics_cli.register_station_commands(ssub)


def _device_arguments(p: argparse.ArgumentParser, bundle: str, data: str) -> None:
    """What `run` and `take-over` both need: a device's bundle, its storage and its secrets."""
    p.add_argument("--bundle", type=Path, required=True, help=bundle)
    p.add_argument("--data", type=Path, required=True, help=data)
    p.add_argument("--root", type=Path, required=True, help="the CEC root certificate you trust")
    p.add_argument("--index", type=Path, default=None, help="national-index directory")
    p.add_argument("--passphrase-file", type=Path, default=None, help="the device's passphrase")
    p.add_argument("--chair-code-file", type=Path, default=None, help="the chair's code")


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


def _secret(path: Path | None, env: str, what: str) -> str | None:
    """A secret from a file (first line) or the environment; None if neither is given."""
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise SystemExit(f"error: cannot read the {what} file {path}: {e.strerror}") from e
        return lines[0].strip() if lines else ""
    return os.environ.get(env)


def _host_port(value: str | None) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"error: --broker wants HOST:PORT, e.g. 127.0.0.1:8883, not {value!r}")
    return host, int(port)


def _one_line_refusals(body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Exit 2 with one line (a SystemExit's message) for anything that stops the command."""
    try:
        return body(args)
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 2
        raise


def _root_and_passphrase(args: argparse.Namespace) -> tuple[x509.Certificate, str]:
    """The CEC root this device trusts and its passphrase, or SystemExit saying what is missing."""
    from crypto import certs

    try:
        root = certs.cert_from_pem(args.root.read_bytes())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read the CEC root certificate {args.root}: {e}") from e
    passphrase = _secret(args.passphrase_file, "SHAILOO_DEVICE_PASSPHRASE", "passphrase")
    if not passphrase:
        raise SystemExit(
            "error: the device passphrase is needed: --passphrase-file F or "
            "$SHAILOO_DEVICE_PASSPHRASE"
        )
    return root, passphrase


def cmd_run(args: argparse.Namespace) -> int:
    """`shailoo station run`: exit 2 with one line for anything that stops the start."""
    return _one_line_refusals(_run, args)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from station.appliance import Appliance, ApplianceError, Settings
    from station.bundle import BundleError
    from station.camera import Camera, CameraError
    from station.facecheck import FaceCheck
    from station.power import read_health
    from station.runtime import StationRuntime
    from station.state import Mode, State, TransitionError
    from station.store import StoreError
    from station.ui.app import serve
    from station.uplink import Uplink, UplinkError

    root, passphrase = _root_and_passphrase(args)
    chair_code = _secret(args.chair_code_file, "SHAILOO_CHAIR_CODE", "chair code") or None
    if chair_code is not None and (len(chair_code) < 4 or not chair_code.isdigit()):
        raise SystemExit("error: the chair's code must be at least 4 digits")
    if args.turnout_minutes < 1:
        raise SystemExit("error: --turnout-minutes must be at least 1")

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    try:
        app = Appliance.start(
            args.data,
            args.bundle,
            root_cert=root,
            passphrase=passphrase,
            matcher=FaceCheck().check,
            clock=clock,
            chair_code=chair_code,
            mode=Mode.TEST if args.test_mode else Mode.LIVE,
            index_dir=args.index,
            settings=Settings(turnout_every_minutes=args.turnout_minutes),
        )
    except (BundleError, ApplianceError, StoreError) as e:
        raise SystemExit(f"error: {e}") from e
    camera = None
    try:
        if args.test_mode and app.mode is Mode.LIVE:
            if app.state is not State.SETUP:
                raise SystemExit(
                    f"error: test mode can be entered only in setup; the station is "
                    f"{app.state.value}"
                )
            app.enter_test_mode("operator")
        if args.camera is not None:
            try:
                camera = Camera(args.camera)
            except CameraError as e:
                raise SystemExit(f"error: {e}") from e
        uplink = None
        if not args.offline:
            host, port = _host_port(args.broker)
            try:
                uplink = Uplink.from_bundle(
                    app.store, app.bundle, passphrase, clock=clock, host=host, port=port
                )
            except UplinkError as e:
                raise SystemExit(f"error: {e}") from e
        runtime = StationRuntime(
            app,
            reader_path=args.reader,
            camera=camera,
            clock=clock,
            uplink=uplink,
            health=read_health,
        )
        runtime.start()
        try:
            return asyncio.run(serve(runtime, args.port))
        finally:
            runtime.stop()
    except TransitionError as e:
        raise SystemExit(f"error: {e}") from e
    finally:
        if camera is not None:
            camera.close()
        app.close()


def cmd_take_over(args: argparse.Namespace) -> int:
    """`shailoo station take-over`: exit 2 with one line if the takeover is refused."""
    return _one_line_refusals(_take_over, args)


def _take_over(args: argparse.Namespace) -> int:
    from station.appliance import Appliance, ApplianceError
    from station.bundle import BundleError
    from station.store import StoreError

    root, passphrase = _root_and_passphrase(args)
    chair_code = _secret(args.chair_code_file, "SHAILOO_CHAIR_CODE", "chair code")
    if not chair_code:
        raise SystemExit(
            "error: the chair's code is needed: --chair-code-file F or $SHAILOO_CHAIR_CODE"
        )

    def no_voters(frame: Any, template: Any) -> NoReturn:
        raise RuntimeError("no voter is identified during a takeover")

    try:
        app = Appliance.take_over(
            args.data,
            args.bundle,
            root_cert=root,
            passphrase=passphrase,
            chair_code=chair_code,
            matcher=no_voters,
            clock=lambda: dt.datetime.now(dt.UTC),
            index_dir=args.index,
        )
    except (BundleError, ApplianceError, StoreError) as e:
        raise SystemExit(f"error: {e}") from e
    try:
        first = app.signer.messages()[-1]
        replaced = app.replaced_devices()[-1]
        print(
            f"station {app.station.number}: device {app.bundle.device_id} took over the storage "
            f"of device {replaced} ({app.state.value}); its first message is seq {first.seq}, "
            f"chained to the failed device's last.  Start it with `shailoo station run "
            f"--bundle {args.bundle} --data {args.data} ...`; the CEC must authorise its "
            "certificate (`shailoo central authorise-device`) before it accepts its messages."
        )
    finally:
        app.close()
    return 0


def register_ballot(bsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = bsub.add_parser(
        "read",
        help="read one scanned sheet as the station's box would (prints one JSON object)",
    )
    r.add_argument("--bundle", type=Path, required=True, help="the station's bundle")
    r.add_argument("image", type=Path, metavar="IMAGE")
    r.add_argument("--test-mode", action="store_true", help="read as a box in test mode")
    r.set_defaults(func=cmd_ballot_read)


def cmd_ballot_read(args: argparse.Namespace) -> int:
    """The outside-check contract: style, and per contest status, selection and fill ratios."""
    import json

    import cv2

    from election.ballot_layout import BallotLayouts
    from election.definition import ElectionDefinition
    from station.marks import read_sheet

    try:
        layouts = BallotLayouts.model_validate_json((args.bundle / B.LAYOUTS_FILE).read_bytes())
        definition = ElectionDefinition.from_json((args.bundle / B.ELECTION_FILE).read_bytes())
        manifest = json.loads((args.bundle / B.MANIFEST_FILE).read_bytes())["body"]
    except (OSError, ValueError) as e:
        print(f"error: {args.bundle} is not a readable station bundle: {e}", file=sys.stderr)
        return 2
    image = cv2.imread(str(args.image), cv2.IMREAD_GRAYSCALE)
    if image is None:
        print(f"error: {args.image} is not an image OpenCV can read", file=sys.stderr)
        return 2
    ours = {c.id for c in definition.contests_for_station(manifest["station_id"])}
    allowed = {s.style_id for s in layouts.styles if {c.contest_id for c in s.contests} <= ours}
    reading = read_sheet(image, layouts, expected_test_mode=args.test_mode, allowed_styles=allowed)
    print(json.dumps(reading.to_obj(), ensure_ascii=False))
    return 0
