"""The OpenAPI 3.1 description of the open data API, served at /api/openapi.json.

Written by hand next to the routes (app.py) it describes; a test checks that
every API route of the app is in it and every path in it is a route.
"""

from __future__ import annotations

from typing import Any

_LIVE = (
    "Changes with each published results version. Answers carry a strong ETag and "
    "Cache-Control (a few seconds); send If-None-Match to get 304 Not Modified."
)
_IMMUTABLE = "Never changes: cached for a year (Cache-Control: immutable)."


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ERR = {"$ref": "#/components/responses/Error"}
_LEVEL = {"type": "string", "enum": ["region", "district", "commission", "station"]}
_ALL_LEVELS = {"type": "string", "enum": ["nation", "region", "district", "commission", "station"]}


def _get(
    summary: str, description: str, ok: dict[str, Any], *params: dict[str, Any]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "responses": {"200": ok, "304": {"description": "Not modified (If-None-Match)"}},
    }
    if params:
        op["parameters"] = list(params)
        op["responses"]["404"] = _ERR
    return {"get": op}


def openapi_document(title: str) -> dict[str, Any]:
    """The API description (OpenAPI 3.1)."""
    paths: dict[str, Any] = {
        "/api/v1/status.json": _get(
            "Which version is published and how complete the count is",
            "Small and cheap: poll it, or listen to /api/v1/events. " + _LIVE,
            _json("Status", {"$ref": "#/components/schemas/Status"}),
        ),
        "/api/v1/events": {
            "get": {
                "summary": "Server-sent events: one `version` event per published version",
                "description": "text/event-stream. On connecting, the current version; then "
                "one event each time a new version is published (id = version number, data = "
                "the status document). Comments every few seconds keep proxies from closing it.",
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "503": _ERR,
                },
            }
        },
        "/api/v1/results.json": _get(
            "The published results document, byte for byte",
            "Canonical JSON as stored by the publisher (format docs/central.md); its SHA-256 "
            "is the X-Results-SHA256 header and the ETag. " + _LIVE,
            _json("The results document"),
        ),
        "/api/v1/results/{version}.json": _get(
            "One earlier (or the current) published version, byte for byte",
            _IMMUTABLE,
            _json("The results document"),
            _param("version", "Version number", {"type": "integer", "minimum": 1}),
        ),
        "/api/v1/nation.json": _get(
            "The home page's data: national picture of every contest",
            _LIVE,
            _json("A unit view", {"$ref": "#/components/schemas/UnitView"}),
        ),
        "/api/v1/{level}/{id}.json": _get(
            "A region, district, territorial commission or station page's data",
            "A station adds `station` and `evidence`: every signed message (with links to "
            "download each), the manual-count protocol and its scan, the comparison of the two "
            "counts, conflicting messages and alerts. " + _LIVE,
            _json("A unit view", {"$ref": "#/components/schemas/UnitView"}),
            _param("level", "Level", _LEVEL),
            _param("id", "Unit id from the election definition"),
        ),
        "/api/v1/csv/{contest}/{level}.csv": _get(
            "Counts of one contest at one level, both sources, as CSV",
            "UTF-8 with a byte order mark. One row per unit and source (asu, manual): "
            "stations counted, ballots, invalid, the share base and every option's votes and "
            "published share. " + _LIVE,
            {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
            _param("contest", "Contest id"),
            _param("level", "Level", _ALL_LEVELS),
        ),
        "/api/v1/csv/turnout/{level}.csv": _get(
            "Turnout and identification at one level, as CSV",
            "Registered, voted, percent, identification by face / by document / mobile box, "
            "and voted by the end of each hour. " + _LIVE,
            {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
            _param("level", "Level", _ALL_LEVELS),
        ),
        "/api/v1/nist.json": _get(
            "The whole election in NIST SP 1500-100 (v2) JSON",
            "ElectionResults.ElectionReport, precinct level; the ASU and manual counts are "
            "VoteCounts told apart by Device.Type (opscan-precinct, manual-count). " + _LIVE,
            _json("ElectionReport"),
        ),
        "/api/v1/record.tar.gz": _get(
            "The election record: every signed message, definition, certificates, protocols",
            "central/record.py's export as one tar.gz, built once per published version; "
            "MANIFEST.json inside is signed by the CEC server. " + _LIVE,
            {
                "description": "tar.gz",
                "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            },
        ),
        "/api/v1/station/{id}/messages.jsonl": _get(
            "Every signed message the station sent, one per line, as received",
            _LIVE,
            {
                "description": "JSON lines",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            },
            _param("id", "Station id"),
        ),
        "/api/v1/station/{id}/messages/{seq}": _get(
            "One signed message, byte for byte as the station signed it",
            _IMMUTABLE,
            _json("A signed envelope (docs/crypto.md)"),
            _param("id", "Station id"),
            _param("seq", "The message's sequence number", {"type": "integer", "minimum": 0}),
        ),
        "/api/v1/scan/{sha256}": _get(
            "A scan of a manual-count protocol, by its SHA-256",
            _IMMUTABLE,
            {
                "description": "The scan",
                "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            _param("sha256", "Hex SHA-256 of the file"),
        ),
        "/api/v1/check": {
            "post": {
                "summary": "Verify a printed report's QR codes and compare it with the results",
                "description": "multipart/form-data with `photo` files (PNG/JPEG) and/or a "
                "`text` field with the codes' text; or a text/plain body with the text. Each "
                "report found is verified (hash chain, certificate to the CEC root, signature) "
                "and compared line by line with the published station numbers.",
                "requestBody": {
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "photo": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                    "text": {"type": "string"},
                                },
                            }
                        },
                        "text/plain": {"schema": {"type": "string"}},
                    }
                },
                "responses": {
                    "200": _json("Every report verified", {"$ref": "#/components/schemas/Check"}),
                    "400": _ERR,
                    "413": _ERR,
                    "422": _json(
                        "A report did not verify, or no report codes were found",
                        {"$ref": "#/components/schemas/Check"},
                    ),
                },
            }
        },
        "/api/openapi.json": _get("This document", "", _json("OpenAPI 3.1")),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title}: open data",
            "version": "1",
            "description": "Published results, per-unit views, the stations' signed messages, "
            "CSV, NIST SP 1500-100 and the full election record. Free to use; cache by ETag. "
            "See docs/site.md.",
        },
        "paths": paths,
        "components": {
            "responses": {
                "Error": _json(
                    "An error, said plainly",
                    {
                        "type": "object",
                        "properties": {
                            "error": {
                                "type": "object",
                                "properties": {
                                    "status": {"type": "integer"},
                                    "message": {"type": "string"},
                                },
                            }
                        },
                    },
                )
            },
            "schemas": {
                "Status": {
                    "type": "object",
                    "properties": {
                        "format": {"type": "string"},
                        "version": {"type": ["integer", "null"]},
                        "published_at": {"type": ["string", "null"]},
                        "as_of": {"type": ["string", "null"]},
                        "sha256": {"type": ["string", "null"]},
                        "stations": {"type": "object"},
                        "links": {"type": "object"},
                    },
                },
                "UnitView": {
                    "type": "object",
                    "properties": {
                        "format": {"type": "string"},
                        "version": {"type": ["integer", "null"]},
                        "unit": {"type": "object"},
                        "turnout": {"type": ["object", "null"]},
                        "contests": {"type": "array", "items": {"type": "object"}},
                        "district_contests": {"type": "array", "items": {"type": "object"}},
                        "children": {"type": "array", "items": {"type": "object"}},
                        "station": {"type": "object"},
                        "evidence": {"type": "object"},
                    },
                },
                "Check": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "ignored_codes": {"type": "integer"},
                        "published_version": {"type": ["integer", "null"]},
                        "reports": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
