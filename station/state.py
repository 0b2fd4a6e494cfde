"""The appliance's life cycle: named states, named transitions, persisted in the store.

    setup --open_polls--> open --close_polls--> closed --transmitted--> transmitted

Test mode (logic and accuracy testing) is a separate, persisted flag that can
only be entered or left in `setup`; leaving it clears the test data, so test
and live data never mix.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    SETUP = "setup"
    OPEN = "open"
    CLOSED = "closed"
    TRANSMITTED = "transmitted"


class Mode(StrEnum):
    LIVE = "live"
    TEST = "test"


class Transition(StrEnum):
    OPEN_POLLS = "open_polls"
    CLOSE_POLLS = "close_polls"
    TRANSMITTED = "transmitted"


TRANSITIONS: dict[Transition, tuple[State, State]] = {
    Transition.OPEN_POLLS: (State.SETUP, State.OPEN),
    Transition.CLOSE_POLLS: (State.OPEN, State.CLOSED),
    Transition.TRANSMITTED: (State.CLOSED, State.TRANSMITTED),
}


class TransitionError(RuntimeError):
    """The action is not allowed in the current state; the message says why."""


def next_state(current: State, transition: Transition) -> State:
    source, target = TRANSITIONS[transition]
    if current is not source:
        raise TransitionError(
            f"cannot {transition.value.replace('_', ' ')} while the station is {current.value} "
            f"(only from {source.value})"
        )
    return target
