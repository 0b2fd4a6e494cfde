"""The independent verifier: `shailoo verify RECORD_DIR_OR_URL`.

Recomputes every published number from the election record (central/record.py's
export) and checks every signature, using only the published rules of the law
(`election/`) and the verification primitives (`crypto/`).  It never imports
`central/` or `station/`: the bookkeeping (which report of a station counts, sums at
every level, turnout) is re-implemented from docs/central.md, so a bug in the
server's aggregation is caught rather than repeated.  Format and rules matched:
docs/verifier.md.
"""
