"""Simulated election days on the real station code (demo, `shailoo sim day`).

`sim.truth` decides from a seed what happens at a station; `sim.fast_station`
replays it through the real appliance with recorded device outcomes, so the
station's own signed reports can be checked against the truth.
"""
