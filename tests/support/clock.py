"""An injectable clock: tests set and advance time; nothing waits for the wall clock."""

from __future__ import annotations

import datetime as dt

BISHKEK = dt.timezone(dt.timedelta(hours=6))


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def set(self, hh: int, mm: int = 0) -> None:
        self.now = self.now.replace(hour=hh, minute=mm, second=0)


def election_day(provisioned_date: dt.date, hh: int = 7, mm: int = 30) -> FakeClock:
    return FakeClock(dt.datetime.combine(provisioned_date, dt.time(hh, mm), tzinfo=BISHKEK))
