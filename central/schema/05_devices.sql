-- Devices authorised after the build (a spare replacing a broken appliance). The build's own
-- devices come from the kit (OUT/central/devices.json) and are not copied here.
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    station_id    TEXT NOT NULL,
    cert_pem      TEXT NOT NULL,
    authorised_at TEXT NOT NULL,
    authorised_by TEXT NOT NULL,
    revoked_at    TEXT
);
