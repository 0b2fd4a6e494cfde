"""`shailoo central ...`: the CEC server room's commands."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from central.server import CentralServer

DEFAULT_DB = "sqlite:///central-data/central.sqlite"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("central", help="the CEC central server")
    csub = p.add_subparsers(dest="central_command", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--kit", type=Path, required=True, help="OUT/central from provision build")
        q.add_argument(
            "--passphrase-file",
            type=Path,
            default=None,
            help="OUT/secrets/central-passphrase.txt (or $SHAILOO_CENTRAL_PASSPHRASE)",
        )
        q.add_argument("--db", default=DEFAULT_DB, help="sqlite:///FILE or postgresql://...")

    r = csub.add_parser(
        "run",
        help="receive, verify, store and acknowledge station messages; publish results",
        description="Ingest workers on an MQTT v5 shared subscription (run several side by "
        "side, here or on other machines), the results publisher, the watch (gap and "
        "not_delivered alerts) and the server room.",
    )
    common(r)
    r.add_argument("--broker", default=None, metavar="HOST:PORT", help="default: the kit's")
    r.add_argument("--workers", type=int, default=2, help="ingest worker processes")
    r.add_argument("--serve", type=int, default=None, metavar="PORT",
                   help="also serve the server room (staff) on 127.0.0.1:PORT")  # fmt: skip
    r.add_argument("--site", type=int, default=None, metavar="PORT",
                   help="also serve the public results site on PORT")  # fmt: skip
    r.add_argument("--site-host", default="127.0.0.1", help="address of the public site")
    r.add_argument("--gap-grace", type=float, default=60.0, metavar="SECONDS",
                   help="a hole in a station's messages is a `gap` alert once it is this old "
                   "(default: 60)")  # fmt: skip
    r.set_defaults(func=cmd_run)

    a = csub.add_parser(
        "authorise-device",
        help="accept messages from a spare device that replaces a station's broken one",
    )
    common(a)
    a.add_argument("--cert", type=Path, required=True, help="the spare's signing certificate")
    a.add_argument("--by", required=True, help="who authorised it (recorded)")
    a.set_defaults(func=cmd_authorise_device)

    e = csub.add_parser(
        "export-record",
        help="write the election record: every signed message, definition, certificates, results",
    )
    common(e)
    e.add_argument("out", type=Path, help="a new directory")
    e.set_defaults(func=cmd_export_record)

    ac = csub.add_parser("account", help="staff accounts for the server room")
    acs = ac.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    add = acs.add_parser("add", help="create an account (password from $SHAILOO_PASSWORD or asked)")
    add.add_argument("username")
    roles = ["admin", "cec_engineer", "commission_operator", "observer"]
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--commission", default=None, help="for a commission operator")
    add.add_argument("--db", default=DEFAULT_DB)
    add.set_defaults(func=cmd_account_add)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _passphrase(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as e:
            raise SystemExit(f"error: cannot read {path}: {e.strerror}") from e
    value = os.environ.get("SHAILOO_CENTRAL_PASSPHRASE")
    if not value:
        raise SystemExit(
            "error: the central passphrase is needed: --passphrase-file "
            "OUT/secrets/central-passphrase.txt or $SHAILOO_CENTRAL_PASSPHRASE"
        )
    return value


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"error: --broker wants HOST:PORT, e.g. 127.0.0.1:8883, not {value!r}")
    return host, int(port)


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from central.db import DatabaseError
    from central.kit import KitError, load_kit
    from central.server import CentralServer, ServerSettings

    passphrase = _passphrase(args.passphrase_file)
    try:
        kit = load_kit(args.kit, passphrase)
    except KitError as e:
        return _fail(str(e))
    host, port = _host_port(args.broker) if args.broker else (kit.broker.host, kit.broker.port)
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    if not args.gap_grace >= 0:
        return _fail("--gap-grace must be a number of seconds, 0 or more")
    settings = ServerSettings(args.kit, passphrase, args.db, host, port, workers=args.workers,
                              gap_grace=args.gap_grace)  # fmt: skip
    try:
        server = CentralServer(settings)
        server.start()
    except (DatabaseError, RuntimeError) as e:
        return _fail(str(e))
    print(f"central: {args.workers} ingest worker(s) on {host}:{port}, database {args.db}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        if args.serve is not None or args.site is not None:
            _serve(server, done, room=args.serve, site=args.site, site_host=args.site_host)
        else:
            done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _serve(
    server: CentralServer,
    done: threading.Event,
    *,
    room: int | None,
    site: int | None,
    site_host: str = "127.0.0.1",
) -> None:
    import asyncio

    apps: list[tuple[web.Application, str, int]] = []
    if room is not None:
        from central.serverroom.app import make_app

        apps.append(
            (make_app(server.settings.db_url, server.kit.definition, clock=server.clock),
             "127.0.0.1", room)
        )  # fmt: skip
        print(f"server room (staff): http://127.0.0.1:{room}/")
    if site is not None:
        apps.append((public_site(server), site_host, site))
        print(f"public results site: http://{site_host}:{site}/")
    asyncio.run(_run_apps(apps, done))


def public_site(server: CentralServer) -> web.Application:
    """The public site of a running server (it offers the record, which the server signs)."""
    from central.site.app import Settings, make_site

    return make_site(
        server.settings.db_url,
        server.kit.definition,
        kit_dir=server.settings.kit_dir,
        clock=server.clock,
        settings=Settings(record_kit=server.kit),
    )


async def _run_apps(apps: list[tuple[web.Application, str, int]], done: threading.Event) -> None:
    import asyncio

    runners = []
    for app, host, port in apps:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    try:
        while not done.is_set():
            await asyncio.sleep(0.5)
    finally:
        for runner in runners:
            await runner.cleanup()


def cmd_authorise_device(args: argparse.Namespace) -> int:
    from central.db import open_database
    from central.devices import DeviceError, authorise_device
    from central.kit import KitError, load_kit

    try:
        kit = load_kit(args.kit, _passphrase(args.passphrase_file))
        pem = args.cert.read_bytes()
    except (KitError, OSError) as e:
        return _fail(str(e))
    with open_database(args.db) as db:
        try:
            dev = authorise_device(db, kit, pem, by=args.by, at=dt.datetime.now(dt.UTC))
        except DeviceError as e:
            return _fail(str(e))
    print(f"device {dev.device_id} authorised for station {dev.station_id}")
    return 0


def cmd_export_record(args: argparse.Namespace) -> int:
    from central.db import open_database
    from central.kit import KitError, load_kit
    from central.record import RecordError, export_record

    try:
        kit = load_kit(args.kit, _passphrase(args.passphrase_file))
    except KitError as e:
        return _fail(str(e))
    with open_database(args.db) as db:
        try:
            summary = export_record(db, kit, args.out)
        except RecordError as e:
            return _fail(str(e))
    print(summary)
    return 0


def cmd_account_add(args: argparse.Namespace) -> int:
    from central.accounts import AccountError, create_account
    from central.db import open_database

    password = os.environ.get("SHAILOO_PASSWORD") or getpass.getpass("password: ")
    with open_database(args.db) as db:
        try:
            create_account(db, args.username, args.role, args.commission, password)
        except AccountError as e:
            return _fail(str(e))
    print(f"account {args.username} ({args.role}) created")
    return 0
