-- Staff of the server room and of the territorial commissions, their sessions, and the
-- manual-count protocols they enter (central/accounts.py, central/manual.py,
-- central/reconcile.py).  Times are ISO 8601 UTC with offset.

-- One person who signs in.  password_hash carries its own scrypt parameters and salt:
-- "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>".  commission_id is set for (and only for)
-- a commission_operator.
CREATE TABLE IF NOT EXISTS staff_accounts (
    id              {id},
    username        TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL,
    commission_id   TEXT,
    password_hash   TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    password_set_at TEXT NOT NULL
);

-- A signed-in browser.  Only the SHA-256 of the cookie's token is kept, so a copy of
-- the database does not let anyone sign in.
CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash   TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES staff_accounts (id),
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_sessions_account ON staff_sessions (account_id);

-- Who did what: sign-ins, refusals, lock-outs, account changes, saved protocols.
CREATE TABLE IF NOT EXISTS staff_log (
    id         {id},
    at         TEXT NOT NULL,
    username   TEXT NOT NULL,
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);

-- Scans of paper protocols, by content: one row per distinct file.
CREATE TABLE IF NOT EXISTS manual_scans (
    sha256      TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    data        {blob} NOT NULL,
    uploaded_at TEXT NOT NULL,
    uploaded_by TEXT NOT NULL
);

-- Every version of every station's manual-count protocol.  The current one is the
-- highest version (superseded_at NULL); older ones stay, with who replaced them and why.
CREATE TABLE IF NOT EXISTS manual_protocols (
    id            {id},
    station_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    entered_at    TEXT NOT NULL,
    entered_by    TEXT NOT NULL,
    source        TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    scan_sha256   TEXT NOT NULL REFERENCES manual_scans (sha256),
    superseded_at TEXT,
    UNIQUE (station_id, version)
);

-- One contest of one protocol version; tally is ContestTally.to_obj() as JSON.
CREATE TABLE IF NOT EXISTS manual_counts (
    protocol_id BIGINT NOT NULL REFERENCES manual_protocols (id),
    contest_id  TEXT NOT NULL,
    received    INTEGER NOT NULL,
    issued      INTEGER NOT NULL,
    spoiled     INTEGER NOT NULL,
    ballots     INTEGER NOT NULL,
    invalid     INTEGER NOT NULL,
    tally       TEXT NOT NULL,
    PRIMARY KEY (protocol_id, contest_id)
);

-- The latest comparison of a station's manual count with its ASU count, per contest.
-- status: match | within | difference | no_asu.  fingerprint identifies the two tallies
-- compared, so a re-run over unchanged numbers raises no second alert.
CREATE TABLE IF NOT EXISTS reconciliations (
    station_id     TEXT NOT NULL,
    contest_id     TEXT NOT NULL,
    status         TEXT NOT NULL,
    max_difference INTEGER NOT NULL,
    lines          TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    alert_id       BIGINT,
    checked_at     TEXT NOT NULL,
    PRIMARY KEY (station_id, contest_id)
);
