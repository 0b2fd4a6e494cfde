"""The running station: the simulated reader on a real pty, real photos, real SQLite, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from crypto.envelope import Envelope
from firmware_sim.combo_reader import ComboReaderSim
from station.appliance import Appliance, Health
from station.camera import PhotoFrames
from station.reader import DriverSettings
from station.runtime import ActionError, StationRuntime
from station.state import Mode
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import REPO, Provisioned
from tests.support.station import CHAIR_CODE, StationKit, Voter

FAST = DriverSettings(
    read_timeout=0.02,
    frame_timeout=0.2,
    reconnect_initial=0.02,
    reconnect_max=0.1,
    status_timeout=0.5,
)


def wait_until(pred: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `pred` until truthy (the reader's events arrive on the driver's thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def photos(kit: StationKit, voter: Voter, *, genuine: bool) -> PhotoFrames:
    """A camera that shows the voter's own face, or another person's."""
    person = voter.person if genuine else next(p for p in sorted(kit.probes) if p != voter.person)
    assert person is not None
    return PhotoFrames([kit.probes[person][0]], loop=True)


def _live_fds() -> dict[int, str]:
    """Open descriptors that are not regular files (ptys, sockets, pipes).

    The appliance maps the national index read-only; that mapping lives as long as the
    Appliance object, so regular files are left out of the check.
    """
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if not target.startswith("/") or target.startswith("/dev/"):
            out[int(name)] = target
    return out


@contextmanager
def no_leaks() -> Iterator[None]:
    """Fail if a test leaves a thread, a pty, a socket or a pipe behind."""
    threads, fds = set(threading.enumerate()), set(_live_fds())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra = [t.name for t in set(threading.enumerate()) - threads if t.is_alive()]
        live = _live_fds()
        extra_fds = {fd: live[fd] for fd in set(live) - fds}
        if not extra and not extra_fds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"leaked threads {extra}, descriptors {extra_fds}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def clock(provisioned: Provisioned) -> FakeClock:
    return election_day(provisioned.definition.date, 7, 45)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ComboReaderSim]:
    with ComboReaderSim(tmp_path / "ttyREADER", serial_number="KG-0007") as s:
        yield s


def start_runtime(
    kit: StationKit, clock: FakeClock, data: Path, sim: ComboReaderSim | None, *, opened: bool
) -> tuple[Appliance, StationRuntime]:
    app = kit.start(data, clock)
    if opened:
        clock.set(8, 0)
        app.open_polls("chair")
        clock.set(9, 15)
    rt = StationRuntime(
        app,
        reader_path=None if sim is None else sim.link_path,
        camera=None,
        clock=clock,
        reader_settings=FAST,
    )
    rt.start()
    if sim is not None:
        wait_until(lambda: rt.screen()["reader"]["state"] == "connected")
    return app, rt


@pytest.fixture
def station(
    kit: StationKit, clock: FakeClock, sim: ComboReaderSim, tmp_path: Path
) -> Iterator[StationRuntime]:
    app, rt = start_runtime(kit, clock, tmp_path / "data", sim, opened=True)
    yield rt
    rt.stop()
    app.close()


def insert(sim: ComboReaderSim, rt: StationRuntime, voter: Voter, outcome: str) -> dict[str, Any]:
    sim.insert_card(voter.card)
    return wait_until(
        lambda: (s := rt.screen())["result"]["outcome"] == outcome and s  # type: ignore[misc]
    )


def test_card_on_the_reader_shows_registered_here_with_name_and_masked_pin(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    screen = insert(sim, station, voter, "registered_here")
    shown = screen["result"]["voter"]
    assert shown["last_name"] == voter.record["last_name"]
    assert shown["birth_year"] == int(voter.record["birth_date"][:4])
    assert shown["masked_pin"] != voter.pin and "*" in shown["masked_pin"]
    assert screen["desk"] == "face_check" and screen["reader"]["card_present"]
    assert screen["result"]["message"]["ky"] and screen["result"]["message"]["ru"]
    assert voter.pin not in json.dumps(screen, ensure_ascii=False)


def test_genuine_face_marks_the_voter_then_issued_is_counted(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    insert(sim, station, voter, "registered_here")
    station.camera = photos(kit, voter, genuine=True)
    result = station.capture_face()
    assert (result["tone"], result["outcome"]) == ("green", "face_match")
    assert station.screen()["desk"] == "marked"
    station.ballot_issued()
    screen = station.screen()
    assert screen["desk"] == "idle"
    assert (screen["counts"]["voted"], screen["counts"]["identified_by_face"]) == (1, 1)


def test_a_missing_frame_asks_to_look_at_the_camera_and_is_not_a_camera_fault(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    insert(sim, station, voter, "registered_here")
    station.camera = PhotoFrames([])
    result = station.capture_face()
    assert result["outcome"] == "camera_no_picture" and result["voter"] is not None
    screen = station.screen()
    assert screen["desk"] == "face_check" and screen["camera"]["state"] == "no_frames"
    assert "camera_fault" not in [e["name"] for e in screen["events"]]
    station.camera_fault()  # the operator decides the camera is broken
    assert station.screen()["desk"] == "admission"
    station.admit(CHAIR_CODE, "camera_fault", "Chair")
    counts = station.screen()["counts"]
    assert counts["admitted_by_document_by_reason"]["camera_fault"] == 1


def test_a_card_refused_by_the_desk_is_shown_and_the_reader_keeps_working(
    kit: StationKit, clock: FakeClock, sim: ComboReaderSim, tmp_path: Path
) -> None:
    app, rt = start_runtime(kit, clock, tmp_path / "data", sim, opened=False)
    try:
        voter = kit.enrolled()[0]
        screen = insert(sim, rt, voter, "polls_not_open")
        assert screen["result"]["tone"] == "red" and screen["state"] == "setup"
        rt.open_polls()
        insert(sim, rt, voter, "registered_here")
    finally:
        rt.stop()
        app.close()


def test_reader_unplugged_and_plugged_back_is_on_screen_and_in_the_log(
    station: StationRuntime, sim: ComboReaderSim
) -> None:
    sim.unplug()
    wait_until(lambda: station.screen()["reader"]["state"] == "disconnected")
    sim.plug()
    screen = wait_until(lambda: (s := station.screen())["reader"]["state"] == "connected" and s)
    assert screen["reader"]["text"]["ru"].startswith("Считыватель")
    names = [e["name"] for e in station.events()]
    assert names.count("reader_connected") == 2 and names.count("reader_disconnected") == 1
    assert names.index("reader_disconnected") < len(names) - 1 - names[::-1].index(
        "reader_connected"
    )


def test_garbage_on_the_line_is_logged_as_a_reader_fault_without_acting(
    station: StationRuntime, sim: ComboReaderSim
) -> None:
    before = station.screen()["result"]
    sim.send_raw(b"\x02\x05garbage\xff\x00")
    wait_until(lambda: "reader_fault" in [e["name"] for e in station.events()])
    assert station.screen()["result"] == before


def kinds(envs: list[Envelope]) -> list[str]:
    return [e.kind for e in envs]


def test_tick_signs_turnout_heartbeat_and_log_digest_only_when_due(
    station: StationRuntime, clock: FakeClock
) -> None:
    first = station.tick()
    assert kinds(first) == ["turnout", "heartbeat", "log_digest"]
    turnout = first[0]
    assert turnout.body["voted"] == 0
    assert station.tick() == []
    clock.advance(minutes=10)
    assert kinds(station.tick()) == ["heartbeat"]
    clock.advance(minutes=49)
    assert kinds(station.tick()) == ["heartbeat"]
    clock.advance(minutes=1)
    again = station.tick()
    assert kinds(again) == ["turnout", "log_digest"]
    assert again[0].seq > turnout.seq
    assert station.screen()["turnout"]["seq"] == again[0].seq


def test_heartbeat_reports_state_power_signal_and_log_head(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", clock)
    env = app.heartbeat(
        Health(battery_percent=71, on_mains=False, signal_dbm=-83), outbox_pending=4
    )
    seq, head = app.log.head()
    assert env.kind == "heartbeat"
    assert env.body["state"] == "setup" and env.body["mode"] == "live"
    assert (env.body["battery_percent"], env.body["on_mains"], env.body["signal_dbm"]) == (
        71, False, -83,
    )  # fmt: skip
    assert env.body["outbox_pending"] == 4
    assert env.body["log_head"] == {"seq": seq, "hash": head}
    app.close()


def test_log_digests_cover_the_event_log_without_gaps_or_overlap(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", clock)
    d1 = app.log_digest()
    app.open_polls("chair")
    clock.set(20, 1)
    app.close_polls("chair", CHAIR_CODE)  # signs a digest of the log as it stood at close
    d2 = app.signer.messages("log_digest")[-1]
    assert d1.body["from_seq"] == 1 and d2.body["from_seq"] == d1.body["to_seq"] + 1
    assert d2.body["to_seq"] == app.log.head()[0]
    assert d2.body["head_hash"] == app.log.head()[1]
    total = sum(d["count"] for d in (d1.body, d2.body))
    assert total == len(app.log.entries())
    assert sum(d2.body["by_severity"].values()) == d2.body["count"]
    app.close()


def test_voter_marked_before_a_restart_is_listed_by_ref_and_confirmed(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    voter = kit.enrolled()[2]
    app, rt = start_runtime(kit, clock, tmp_path / "data", None, opened=True)
    app.desk.card_read(voter.card)
    rt.camera = photos(kit, voter, genuine=True)
    assert rt.capture_face()["outcome"] == "face_match"
    rt.stop()
    app.close()  # the appliance "dies" before "ballot issued"

    app, rt = start_runtime(kit, clock, tmp_path / "data", None, opened=False)
    try:
        screen = rt.screen()
        (waiting,) = screen["pending"]
        assert waiting["last_name"] == voter.record["last_name"]
        assert screen["pending_message"]["ky"]
        assert voter.pin not in json.dumps(screen, ensure_ascii=False)
        with pytest.raises(ActionError) as wrong:
            rt.cancel_pending(waiting["ref"], "9999")
        assert wrong.value.kind == "forbidden"
        rt.confirm_pending(waiting["ref"])
        assert rt.screen()["pending"] == []
        assert rt.screen()["counts"]["voted"] == 1
    finally:
        rt.stop()
        app.close()


def test_the_reader_thread_and_screen_calls_interleave_safely(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                station.screen()
            except BaseException as e:  # pragma: no cover - the failure is the assertion
                errors.append(e)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for voter in kit.voters[:5]:
            sim.insert_card(voter.card)
            wait_until(lambda: station.screen()["result"]["outcome"] != "idle")
            station.clear()
    finally:
        stop.set()
        t.join()
    assert not errors


# --- `shailoo station run` as a real process -----------------------------------------------
def test_station_run_serves_the_screen_and_stops_on_sigterm(
    kit: StationKit, tmp_path: Path
) -> None:
    (tmp_path / "pass").write_text(kit.passphrase + "\n")
    (tmp_path / "chair").write_text(CHAIR_CODE + "\n")
    with ComboReaderSim(tmp_path / "ttyREADER") as sim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shailoo.cli", "station", "run",
             "--bundle", str(kit.bundle), "--data", str(tmp_path / "data"),
             "--root", str(kit.p.cec_dir / "root-cert.pem"), "--index", str(kit.p.index_dir),
             "--reader", str(sim.link_path), "--camera", str(kit.probes[sorted(kit.probes)[0]][0]),
             "--port", "0", "--passphrase-file", str(tmp_path / "pass"),
             "--chair-code-file", str(tmp_path / "chair"), "--test-mode"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "http://127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
            url = line.split()[-1]
            screen: dict[str, Any] = wait_until(lambda: _get_json(url + "api/screen"), 10)
            assert screen["station"]["number"] == kit.number
            assert screen["test_mode"] and screen["banner"]["ru"].startswith("ТЕСТОВЫЙ")
            assert screen["camera"]["state"] == "ok"
            wait_until(lambda: _get_json(url + "api/screen")["reader"]["state"] == "connected")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def test_station_run_with_a_wrong_passphrase_says_so_in_one_line_and_exits_2(
    kit: StationKit, tmp_path: Path
) -> None:
    (tmp_path / "pass").write_text("not the passphrase")
    done = subprocess.run(
        [sys.executable, "-m", "shailoo.cli", "station", "run",
         "--bundle", str(kit.bundle), "--data", str(tmp_path / "data"),
         "--root", str(kit.p.cec_dir / "root-cert.pem"), "--index", str(kit.p.index_dir),
         "--passphrase-file", str(tmp_path / "pass"), "--port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SHAILOO_CHAIR_CODE": CHAIR_CODE},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the device passphrase is wrong: type it again"
    ]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_station_run_refuses_the_database_of_another_station(
    kit: StationKit, provisioned: Provisioned, clock: FakeClock, tmp_path: Path
) -> None:
    other = StationKit(provisioned, provisioned.definition.stations[1].number)
    other.start(tmp_path / "data", clock).close()
    done = subprocess.run(
        [sys.executable, "-m", "shailoo.cli", "station", "run",
         "--bundle", str(kit.bundle), "--data", str(tmp_path / "data"),
         "--root", str(kit.p.cec_dir / "root-cert.pem"), "--index", str(kit.p.index_dir),
         "--port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SHAILOO_DEVICE_PASSPHRASE": kit.passphrase},
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "belongs to another" in line


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except OSError:
        return None


def test_test_mode_is_on_the_screen(kit: StationKit, clock: FakeClock, tmp_path: Path) -> None:
    app = kit.start(tmp_path / "data", clock, mode=Mode.TEST)
    rt = StationRuntime(app, reader_path=None, camera=None, clock=clock)
    try:
        screen = rt.screen()
        assert screen["test_mode"] and screen["mode"] == "test"
        assert screen["banner"]["ky"].startswith("СЫНОО")
        assert screen["reader"]["state"] == "none" and screen["camera"]["state"] == "none"
    finally:
        app.close()
