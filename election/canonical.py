"""Canonical JSON: the one byte form of anything that is hashed or signed.

Sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes), and no floats,
because float text differs between languages and a verifier written by anyone
must reproduce the bytes exactly.  Numbers are integers; fractions are strings.
"""

from __future__ import annotations

import json
from typing import Any

# What json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# allow_nan=False) builds on every call; it keeps no state between calls.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_LEAVES = (str, int, bool, type(None))
_NESTS = (dict, list, tuple)


def canonical_json(obj: Any, *, checked: bool = False) -> bytes:
    """The canonical bytes of a JSON-shaped value; refuses floats and non-string keys.

    `checked=True` skips that walk, for a caller that has just made sure of it (the
    envelope parser: it has walked the value with stricter checks already)."""
    if not checked:
        try:
            plain = _plain(obj)
        except RecursionError:
            plain = False
        if not plain:
            _refuse_floats(obj)
    return _ENCODER.encode(obj).encode("utf-8")


def _plain(obj: Any) -> bool:
    """True only if `_refuse_floats` passes: nothing but dicts with string keys, lists,
    tuples, strings, ints, bools and None (one quick walk: a results document has
    millions of values).  False for anything else, which `_refuse_floats` then judges."""
    t = type(obj)
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str:
                return False
            tv = type(v)
            if tv in _NESTS:
                if not _plain(v):
                    return False
            elif tv not in _LEAVES:
                return False
        return True
    if t is list or t is tuple:
        for v in obj:
            tv = type(v)
            if tv in _NESTS:
                if not _plain(v):
                    return False
            elif tv not in _LEAVES:
                return False
        return True
    return t in _LEAVES


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
