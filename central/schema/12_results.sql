-- Published results documents (central/results.py): each version is kept.
CREATE TABLE IF NOT EXISTS published (
    version      {id},
    published_at TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    document     TEXT NOT NULL
);
