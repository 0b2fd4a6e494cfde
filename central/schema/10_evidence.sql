-- Evidence and station bookkeeping (central/evidence.py, central/alerts.py).
-- Placeholders: blob and id in braces (see central/db.py). No semicolons inside statements.

-- One row per station of the definition (evidence.load_stations). The columns after
-- outbox_pending are derived from the stored messages: aggregate.recompute rebuilds them.
CREATE TABLE IF NOT EXISTS stations (
    station_id        TEXT PRIMARY KEY,
    number            INTEGER NOT NULL,
    commission_id     TEXT NOT NULL,
    district_id       TEXT NOT NULL,
    region_id         TEXT NOT NULL,
    registered        INTEGER NOT NULL,
    state             TEXT NOT NULL DEFAULT 'not_opened',
    mode              TEXT,
    last_seq          INTEGER,
    last_message_at   TEXT,
    last_heartbeat_at TEXT,
    battery_percent   INTEGER,
    on_mains          INTEGER,
    signal_dbm        INTEGER,
    outbox_pending    INTEGER,
    complete_to       INTEGER NOT NULL DEFAULT -1,
    mode_seq          INTEGER,
    heartbeat_seq     INTEGER,
    asu_seq           INTEGER,
    asu_phase         TEXT,
    asu_hash          TEXT,
    ident_seq         INTEGER,
    ident_phase       TEXT,
    ident_hash        TEXT,
    turnout_seq       INTEGER,
    turnout_final     INTEGER
);

-- The evidence: every accepted message's original bytes.
CREATE TABLE IF NOT EXISTS messages (
    station_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    prev        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    signed_at   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw         {blob} NOT NULL,
    PRIMARY KEY (station_id, seq)
);

-- Validly signed messages refused because they contradict the stored chain
-- (equivocation, broken chain): kept as proof, at most a few per station.
CREATE TABLE IF NOT EXISTS conflicting_messages (
    station_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw         {blob} NOT NULL,
    PRIMARY KEY (station_id, seq, hash)
);

-- fingerprint = SHA-256 of kind, station and dedup key: an open alert with the same
-- fingerprint is raised again by counting (repeats, last_raised_at), not by a new row.
CREATE TABLE IF NOT EXISTS alerts (
    id             {id},
    raised_at      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    severity       TEXT NOT NULL,
    station_id     TEXT,
    detail         TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    resolved_at    TEXT,
    fingerprint    TEXT NOT NULL,
    repeats        INTEGER NOT NULL DEFAULT 1,
    last_raised_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_fingerprint ON alerts (fingerprint)
    WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_station_kind ON alerts (station_id, kind);
