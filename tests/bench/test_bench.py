"""The benches' own code at a tiny size, so it cannot rot between `make bench` runs.

Figures are not judged here (benches never assert on time); what is checked is that the
code runs against the real parts and that the table has what `make bench` must print.
"""

from __future__ import annotations

import math

import pytest

from bench import ISSUE_FIGURES, Figure, format_summary
from bench.__main__ import modules
from bench.bench_storm import CURVE, run, stations_shown

STATIONS = 5


@pytest.mark.slow
def test_storm_bench_runs_at_a_tiny_size() -> None:
    """Real Mosquitto, `shailoo central run`, SQLite: every station ends up published."""
    figures = {f.name: f for f in run(STATIONS)}
    for q in CURVE:
        base = figures[f"broker alone: {q}% of stations' closing messages carried"]
        published = figures[f"closing storm: {q}% of stations published"]
        stored = figures[f"  {q}% of stations stored (ingest alone)"]
        assert base.value > 0 and math.isfinite(published.value)
        assert 0 < stored.value <= published.value
        assert published.baseline == base.name and published.ratio is not None
    headline = figures["closing storm: 100% of stations published"]
    assert headline.issue == "closing storm" and f"{STATIONS:,} stations" in headline.how
    assert figures["  publisher: last station stored -> published"].value >= 0
    assert figures["  one publish cycle, complete election, nothing else running"].value > 0


def test_stations_shown_reads_the_published_stations_part() -> None:
    text = (
        '{"as_of":null,"contests":[{"stations":1}],"election":{},"format":"shailoo-results/1",'
        '"stations":{"by_state":{"delivered":2,"open":1},"delivered":2,"of":3},"turnout":{}}'
    )
    assert stations_shown(text) == {"by_state": {"delivered": 2, "open": 1}, "delivered": 2,
                                    "of": 3}  # fmt: skip
    assert stations_shown('{"stations":{"delivered":0,"of":1},"format":"x"}')["of"] == 1


def test_summary_has_one_row_per_issue_figure_with_baseline_and_how() -> None:
    base = Figure("plain subscriber", 2.0, "s")
    storm = Figure("storm 100%", 10.0, "s", 5.0, base.name).answers("closing storm", "like so")
    text = format_summary([("storm", base), ("storm", storm)], ran=["storm", "site"],
                          failed=["site"])  # fmt: skip
    lines = text.splitlines()
    for _, label in ISSUE_FIGURES:
        assert sum(line.startswith(label) for line in lines) == 1, label
    row = next(line for line in lines if line.startswith("closing storm"))
    assert "10.00 s" in row and "2.00 s" in row and "5.00" in row and "[1]" in row
    assert "[1] storm: like so" in lines
    assert "(bench_site failed: see above)" in text and "(bench_verify not run)" in text
    with pytest.raises(ValueError):
        base.answers("not an issue figure", "")


def test_every_issue_figure_has_its_bench() -> None:
    assert {bench for bench, _ in ISSUE_FIGURES} <= set(modules())
