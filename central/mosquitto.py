"""Mosquitto as a child process: own config, own port, always stopped (server room, demo, tests).

    with start_mosquitto(conf_text, tmp_path) as broker:
        client.connect("127.0.0.1", broker.port)
        broker.kill(); broker.restart()   # crash and come back on the same port

`conf_text` may use `{port}` and `{workdir}` placeholders and any other
`{name}` given as a keyword to `start_mosquitto`; a placeholder left
unfilled is an error rather than a confusing Mosquitto message.  Mosquitto's
output goes to `workdir/mosquitto.log` (kept for debugging; `Broker.log()`
reads it).  Brokers are stopped by the context manager, by the
tests' `mosquitto_factory` fixture, at interpreter exit, and (Linux) killed by the
kernel if the test process dies, so no process outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "127.0.0.1"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LIVE: set[Broker] = set()


class BrokerError(RuntimeError):
    """Mosquitto did not start or stop as asked; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (never 1883)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port != 1883:
            return port


def render_config(conf_text: str, **values: object) -> str:
    """Fill `{name}` placeholders; raise ValueError naming any left unfilled."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ValueError(f"mosquitto config placeholder {{{name}}} has no value")
        return str(values[name])

    return _PLACEHOLDER.sub(fill, conf_text)


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class Broker:
    """One Mosquitto process on a fixed port, restartable with the same config and data."""

    def __init__(self, conf_path: Path, workdir: Path, port: int, host: str = HOST) -> None:
        self.conf_path = conf_path
        self.workdir = workdir
        self.port = port
        self.host = host
        self.log_path = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"Broker(port={self.port}, pid={pid}, workdir={str(self.workdir)!r})"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """Everything Mosquitto has logged so far (all runs of this broker)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 10.0) -> None:
        """Start Mosquitto and wait until the port accepts TCP connections."""
        if self.running:
            raise BrokerError(f"{self!r} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {MOSQUITTO} -c {self.conf_path}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=die_with_parent,  # PDEATHSIG: die with the test process
            )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                _LIVE.discard(self)
                raise BrokerError(f"mosquitto exited at start; log:\n{self.log()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.port} in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (Mosquitto saves its persistence file), SIGKILL if it hangs. Idempotent."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.process = None
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL: a crash or power cut; unsaved persistence is lost as it would be."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self.process = None
        _LIVE.discard(self)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (if running) and start again on the same port with the same config and data."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_mosquitto(
    conf_text: str, workdir: Path, *, port: int | None = None, **values: object
) -> Broker:
    """Write the config (placeholders filled) under `workdir` and start Mosquitto on it.

    A free port is picked unless `port` is given; if another process grabs the
    port between picking and binding, a new one is tried (up to 3 times).
    When run as root, `user <current user>` is added unless the config names
    a user, because Mosquitto would otherwise drop to user "mosquitto" and
    could not read test files under a private tmp directory.
    """
    workdir = Path(workdir).resolve()  # Mosquitto does not resolve relative paths as we do
    workdir.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    last: BrokerError | None = None
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        if chosen == 1883:
            raise ValueError("tests never use port 1883 (a system broker may own it)")
        text = render_config(conf_text, port=chosen, workdir=workdir, **values)
        if not re.search(r"(?m)^\s*user\s", text):
            text = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" + text
        conf_path = workdir / "mosquitto.conf"
        conf_path.write_text(text)
        broker = Broker(conf_path, workdir, chosen)
        try:
            broker.start()
            return broker
        except BrokerError as exc:
            last = exc
            if "Address already in use" not in broker.log():
                raise
    assert last is not None
    raise last


@atexit.register
def _stop_all() -> None:
    for broker in list(_LIVE):
        broker.kill()


DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
CONF_TEMPLATE = DEPLOY / "shailoo.conf.template"
ACL_TEMPLATE = DEPLOY / "shailoo.acl.template"


def render_acl(template: str, prefix: str, central_users: list[str]) -> str:
    """The ACL with the central block (from `user {central_user}` to the next blank line)
    repeated for each ingest worker's identity."""
    lines = template.splitlines()
    start = lines.index("user {central_user}")
    end = lines.index("", start)
    block = "\n".join(lines[start:end])
    blocks = "\n\n".join(block.replace("{central_user}", u) for u in central_users)
    text = "\n".join([*lines[:start], blocks, *lines[end:]]) + "\n"
    return render_config(text, prefix=prefix, central_user=", ".join(central_users))


def start_for_kit(kit_dir: Path, workdir: Path, *, port: int | None = None) -> Broker:
    """The production configuration and ACL with the kit's broker certificate (OUT/central)."""
    from central.kit import BROKER_DIR
    from election.bundle import BROKER_FILE, BrokerSettings
    from provisioning.central_kit import tls_users

    settings = BrokerSettings.model_validate_json((kit_dir / BROKER_FILE).read_bytes())
    workdir = Path(workdir).resolve()  # Mosquitto does not resolve relative paths as we do
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    acl = workdir / "shailoo.acl"
    acl.write_text(render_acl(ACL_TEMPLATE.read_text(), settings.topic_prefix, tls_users()))
    pki = kit_dir.resolve() / BROKER_DIR
    return start_mosquitto(
        CONF_TEMPLATE.read_text(),
        workdir,
        port=port,
        bind_address=HOST,
        cafile=pki / "ca.pem",
        certfile=pki / "server-cert.pem",
        keyfile=pki / "server-key.pem",
        acl_file=acl,
        persistence_location=f"{workdir / 'data'}/",
    )
