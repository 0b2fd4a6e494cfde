-- Aggregates (central/aggregate.py). Everything here is derived: aggregate.recompute
-- rebuilds it from messages.raw and manual_tallies, which are the only inputs.

-- One ContestTally (canonical JSON of its to_obj form) per level, unit, contest and source.
-- level: nation | region | district | commission | station. source: asu | manual.
-- stations: how many stations' reports the tally holds (a station row: 1).
CREATE TABLE IF NOT EXISTS tallies (
    level      TEXT NOT NULL,
    unit       TEXT NOT NULL,
    contest_id TEXT NOT NULL,
    source     TEXT NOT NULL,
    stations   INTEGER NOT NULL,
    tally      TEXT NOT NULL,
    PRIMARY KEY (level, unit, contest_id, source)
);

-- Turnout from identification, per level and unit: stations with a turnout figure and
-- their voters; stations with an identification report and how their voters were admitted.
CREATE TABLE IF NOT EXISTS turnout (
    level                TEXT NOT NULL,
    unit                 TEXT NOT NULL,
    stations             INTEGER NOT NULL,
    voted                INTEGER NOT NULL,
    ident_stations       INTEGER NOT NULL,
    identified_by_face   INTEGER NOT NULL,
    admitted_by_document INTEGER NOT NULL,
    mobile_box           INTEGER NOT NULL,
    PRIMARY KEY (level, unit)
);

-- A station's turnout as known at the end of each local hour of polling (hour "08".."20"):
-- the figure of the highest-seq message that states it.
CREATE TABLE IF NOT EXISTS station_hours (
    station_id TEXT NOT NULL,
    hour       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    voted      INTEGER NOT NULL,
    PRIMARY KEY (station_id, hour)
);

-- The manual count as entered by the CEC (an input, not derived).
CREATE TABLE IF NOT EXISTS manual_tallies (
    station_id TEXT NOT NULL,
    contest_id TEXT NOT NULL,
    tally      TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    PRIMARY KEY (station_id, contest_id)
);
