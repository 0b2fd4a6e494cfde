"""Seat allocation: Hare largest remainder, D'Hondt and Sainte-Laguë.

Exact integer / Fraction arithmetic throughout.  Ties are broken
deterministically and the same way everywhere:

1. by the method's own measure (remainder, or quotient votes / divisor);
2. if that is equal, the party with MORE VOTES first;
3. if that is equal too, the party that comes first in `order` given by the
   caller (the outcome module passes ballot order); parties missing from
   `order` come after it, by id.

Never dict order, never chance.  Whenever step 1 ties across the cut (two
parties equal on the measure, one gets the seat and the other does not), the
result names them in `Allocation.tied`, so a person can check the law's own
tie rule against what was done.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from election.definition import AllocationMethod


@dataclass(frozen=True)
class Allocation:
    """Seats per party (every party given, zeros included) and any tie at the cut."""

    seats: dict[str, int]
    tied: tuple[str, ...] = ()


def allocate(
    votes: Mapping[str, int],
    seats: int,
    method: AllocationMethod,
    order: Sequence[str] | None = None,
) -> dict[str, int]:
    """Seats per party for `seats` seats by `method`; see `allocate_detailed`."""
    return allocate_detailed(votes, seats, method, order).seats


def allocate_detailed(
    votes: Mapping[str, int],
    seats: int,
    method: AllocationMethod,
    order: Sequence[str] | None = None,
) -> Allocation:
    """Seats per party, with the parties tied at the cut.

    Parties with no votes never get a seat; if no party has votes, no seat is
    given (the caller reports it).  Otherwise exactly `seats` seats are given,
    however many that is.  The module docstring gives the tie rule.
    """
    if seats < 0:
        raise ValueError(f"cannot allocate a negative number of seats ({seats})")
    for party, v in votes.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"votes of {party} must be an integer, not {type(v).__name__}")
        if v < 0:
            raise ValueError(f"votes of {party} are negative ({v})")
    rank = _tie_rank(votes, order)
    if seats == 0 or sum(votes.values()) == 0:
        return Allocation({p: 0 for p in votes})
    if method is AllocationMethod.HARE:
        return _hare(votes, seats, rank)
    if method is AllocationMethod.DHONDT:
        return _highest_averages(votes, seats, rank, first=1, step=1)
    if method is AllocationMethod.SAINTE_LAGUE:
        return _highest_averages(votes, seats, rank, first=1, step=2)
    raise ValueError(f"unknown allocation method {method!r}")


def _tie_rank(votes: Mapping[str, int], order: Sequence[str] | None) -> dict[str, tuple[int, str]]:
    position: dict[str, int] = {}
    for i, p in enumerate(order or ()):
        position.setdefault(p, i)
    return {p: (position.get(p, len(position)), p) for p in votes}


def _hare(votes: Mapping[str, int], seats: int, rank: Mapping[str, tuple[int, str]]) -> Allocation:
    """Each party gets floor(votes * seats / total); the rest go to the largest remainders."""
    total = sum(votes.values())
    result: dict[str, int] = {}
    remainder: dict[str, int] = {}  # in units of 1/total of a seat
    for p, v in votes.items():
        result[p], remainder[p] = divmod(v * seats, total)
    left = seats - sum(result.values())
    queue = sorted(votes, key=lambda p: (-remainder[p], -votes[p], rank[p]))
    for p in queue[:left]:
        result[p] += 1
    tied: tuple[str, ...] = ()
    if 0 < left < len(queue) and remainder[queue[left - 1]] == remainder[queue[left]]:
        cut = remainder[queue[left]]
        tied = tuple(p for p in queue if remainder[p] == cut)
    return Allocation(result, tied)


def _highest_averages(
    votes: Mapping[str, int],
    seats: int,
    rank: Mapping[str, tuple[int, str]],
    *,
    first: int,
    step: int,
) -> Allocation:
    """Seats one by one to the highest votes / divisor (divisors first, first+step, ...).

    D'Hondt: 1, 2, 3, ...; Sainte-Laguë: 1, 3, 5, ...  Parties without votes
    never enter, so they never win a seat.
    """
    result = {p: 0 for p in votes}
    heap = [(-Fraction(v, first), -v, rank[p], p) for p, v in votes.items() if v > 0]
    heapq.heapify(heap)
    last: Fraction | None = None
    for _ in range(seats):
        neg_q, neg_v, r, p = heapq.heappop(heap)
        last = -neg_q
        result[p] += 1
        heapq.heappush(heap, (-Fraction(-neg_v, first + step * result[p]), neg_v, r, p))
    tied: tuple[str, ...] = ()
    if last is not None and heap and -heap[0][0] == last:
        # parties whose last seat or next quotient equals the cut quotient
        names = {
            p for p, n in result.items() if n and Fraction(votes[p], first + step * (n - 1)) == last
        }
        names |= {
            p
            for p, n in result.items()
            if votes[p] and Fraction(votes[p], first + step * n) == last
        }
        tied = tuple(sorted(names, key=lambda p: (-votes[p], rank[p])))
    return Allocation(result, tied)
