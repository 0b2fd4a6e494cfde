"""Published against recomputed, number by number, with a readable path to each difference.

Lists of objects with an `id` (units, contests) are matched by id, so a unit missing
from one side is one difference, not a shifted list of them.  Paths read like
`contests[list].units.region[north].asu.votes.pa`.  Types are compared too: `1` and
`true`, or `1` and `"1"`, are different values in JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from election.canonical import canonical_json


class _Absent:
    """The value on a side that has nothing at that path."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Difference:
    path: str
    published: Any  # ABSENT if results.json has nothing there
    recomputed: Any  # ABSENT if the rebuilt document has nothing there

    def to_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        for side in ("published", "recomputed"):
            value = getattr(self, side)
            if value is ABSENT:
                out[f"{side}_absent"] = True
            else:
                out[side] = value
        return out


class NotCanonical(ValueError):
    """The published bytes are not JSON of the kind the format allows."""


def parse_published(data: bytes) -> Any:
    """results.json, strictly: UTF-8 JSON, no floats, no NaN, no duplicate keys."""

    def no_float(text: str) -> Any:
        raise NotCanonical(f"a float ({text}): the format carries none")

    def no_constant(text: str) -> Any:
        raise NotCanonical(f"{text}: not JSON")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise NotCanonical(f"key {k!r} twice in one object")
            out[k] = v
        return out

    try:
        return json.loads(
            data.decode("utf-8"),
            parse_float=no_float,
            parse_constant=no_constant,
            object_pairs_hook=no_duplicates,
        )
    except NotCanonical:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise NotCanonical(f"not JSON: {e}") from None


def same_bytes(document: Any, published: bytes) -> bool:
    """The strongest check: the rebuilt document's canonical bytes are the published ones."""
    return canonical_json(document) == published


@dataclass
class Differences:
    kept: list[Difference]  # the first ones, in document order
    total: int
    stations: list[str]  # stations whose own published numbers differ: where to look first


_STATION = re.compile(r"\.station\[([^\]]+)\]")


def differences(published: Any, recomputed: Any, *, keep: int = 10_000) -> Differences:
    """Every difference (the first `keep` kept) and the stations they are at."""
    out = Differences([], 0, [])
    seen: set[str] = set()
    for d in _walk("", published, recomputed):
        out.total += 1
        if len(out.kept) < keep:
            out.kept.append(d)
        m = _STATION.search(d.path)
        if m is not None and m.group(1) not in seen:
            seen.add(m.group(1))
            out.stations.append(m.group(1))
    return out


def _walk(path: str, a: Any, b: Any) -> Iterator[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            yield from _walk(f"{path}.{k}" if path else k, a.get(k, ABSENT), b.get(k, ABSENT))
        return
    if isinstance(a, list) and isinstance(b, list):
        ids_a, ids_b = _ids(a), _ids(b)
        if ids_a is not None and ids_b is not None:
            by_a = dict(zip(ids_a, a, strict=True))
            by_b = dict(zip(ids_b, b, strict=True))
            for i in ids_b + [i for i in ids_a if i not in by_b]:
                yield from _walk(f"{path}[{i}]", by_a.get(i, ABSENT), by_b.get(i, ABSENT))
            common_a = [i for i in ids_a if i in by_b]
            common_b = [i for i in ids_b if i in by_a]
            if common_a != common_b:
                yield Difference(f"{path} (order)", common_a, common_b)
            return
        for n in range(max(len(a), len(b))):
            yield from _walk(
                f"{path}[{n}]", a[n] if n < len(a) else ABSENT, b[n] if n < len(b) else ABSENT
            )
        return
    if type(a) is not type(b) or a != b:
        yield Difference(path, a, b)


def _ids(items: list[Any]) -> list[str] | None:
    """The names of a list of objects that each have a distinct string `id` (units,
    contests) or `subject` (an outcome's checks), else None."""
    for key in ("id", "subject"):
        ids = [x.get(key) if isinstance(x, dict) else None for x in items]
        if items and all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids):
            return ids  # type: ignore[return-value]
    return None


def count_values(doc: Any) -> int:
    """How many leaf values (numbers, strings, booleans, nulls) a document has."""
    if isinstance(doc, dict):
        return sum(count_values(v) for v in doc.values())
    if isinstance(doc, list):
        return sum(count_values(v) for v in doc)
    return 1


def short(value: Any, width: int = 160) -> str:
    """A value as compact JSON for one line of a report."""
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"
