"""Image transfer faults: damaged or missing chunks are asked again, then the sheet goes back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from devices.asu import ImageChunkMsg, ImageDoneMsg, ResendChunkMsg, encode_message
from station.asu import AsuState, SheetCounted, SheetReturned, TransferFault
from tests.devices.leaks import no_leaks
from tests.station.asu_harness import FAST, assert_every_sheet_accounted, rig


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


def resends(sim_received: Sequence[object]) -> list[ResendChunkMsg]:
    return [m for m in sim_received if isinstance(m, ResendChunkMsg)]


def test_a_corrupted_chunk_is_asked_again_and_the_sheet_counts(tmp_path: Path) -> None:
    with rig(tmp_path, chunk_size=1000) as (sim, _drv, station):
        image = station.sheet(1, "v", noisy=True)
        assert len(image) > 3000  # several chunks
        sim.corrupt_next_chunk()
        sim.feed(image, "v")
        station.wait_for(SheetCounted)
        assert station.wait_for(TransferFault, lambda f: f.kind == "crc")
        assert resends(sim.received) == [ResendChunkMsg(1, 0)]
        assert_every_sheet_accounted(sim, station, ["v"])


def test_a_missing_chunk_is_asked_again_when_the_image_is_done(tmp_path: Path) -> None:
    with rig(tmp_path, chunk_size=1000) as (sim, _drv, station):
        sim.drop_next_chunk()
        sim.feed(station.sheet(1, "v", noisy=True), "v")
        station.wait_for(SheetCounted)
        assert resends(sim.received) == [ResendChunkMsg(1, 0)]
        assert station.wait_for(TransferFault).kind == "missing_chunk"


def test_a_lost_image_done_alone_completes_on_the_chunk_timeout(tmp_path: Path) -> None:
    with rig(tmp_path, chunk_size=1000) as (sim, _drv, station):
        sim.drop_next_image_done()
        sim.feed(station.sheet(1, "v", noisy=True), "v")
        station.wait_for(SheetCounted, timeout=3)
        assert resends(sim.received) == []  # every chunk was there


def test_a_lost_last_chunk_with_no_image_done_is_recovered_by_the_timeout(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        image = station.sheet(1, "v")  # one chunk
        sim.drop_next_chunk()
        sim.drop_next_image_done()
        sim.feed(image, "v")
        station.wait_for(SheetCounted, timeout=3)
        assert resends(sim.received) == [ResendChunkMsg(1, 0)]
        assert_every_sheet_accounted(sim, station, ["v"])


def test_too_many_failed_resends_give_the_sheet_back_as_unreadable(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.corrupt_next_chunk(times=FAST.max_chunk_retries + 1)
        sim.feed(station.sheet(1, "v"), "v")
        returned = station.wait_for(SheetReturned, timeout=4)
        assert returned == SheetReturned(1, "unreadable transfer")
        assert len(resends(sim.received)) == FAST.max_chunk_retries
        assert station.decided == []
        sim.feed(station.sheet(1, "v"), "v")  # the voter feeds it again
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["v", "v"])
        assert sim.returned == ["v"] and sim.dropped == ["v"]


def test_chunks_of_a_sheet_never_announced_give_that_sheet_back(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.send_raw(encode_message(ImageChunkMsg(9, 0, b"x")).encode())
        sim.send_raw(encode_message(ImageDoneMsg(9)).encode())
        fault = station.wait_for(TransferFault, lambda f: f.kind == "unexpected")
        assert "never announced" in fault.detail
        station.wait_state(AsuState.IDLE)  # the box ignored RETURN 9; the driver rechecked
        sim.feed(station.sheet(1, "v"), "v")
        station.wait_for(SheetCounted, timeout=3)
        assert_every_sheet_accounted(sim, station, ["v"])
