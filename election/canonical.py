"""Canonical JSON: the one byte form of anything that is hashed or signed.

Sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes), and no floats,
because float text differs between languages and a verifier written by anyone
must reproduce the bytes exactly.  Numbers are integers; fractions are strings.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes of a JSON-shaped value; refuses floats and non-string keys."""
    _refuse_floats(obj)
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_floats(obj: Any) -> None:
    if isinstance(obj, float):
        raise TypeError("canonical JSON carries no floats; use an integer or a decimal string")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"canonical JSON keys must be strings, not {type(k).__name__}")
            _refuse_floats(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _refuse_floats(v)
