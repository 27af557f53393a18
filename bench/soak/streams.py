"""The soak's order streams: Server-Sent Events read line by line, what each stream
showed and to whom, and whether a courier's point reached someone who may not see it."""

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bench.soak.config import LOCATION_VISIBLE_WHILE


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: str


class SseReader:
    """Lines in, as httpx's `aiter_lines` gives them; a message out at each blank line
    that ends one. Comment lines (the stream's keep-alives) carry nothing."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.id: str | None = None
        self.event = ""
        self.data: list[str] = []

    def line(self, text: str) -> SseMessage | None:
        text = text.rstrip("\r")
        if not text:
            if not self.data and not self.event:
                return None
            message = SseMessage(self.id, self.event or "message", "\n".join(self.data))
            self._reset()
            return message
        if text.startswith(":"):
            return None
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self.id = value
        elif name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


@dataclass(frozen=True)
class Shown:
    """An event an order's stream showed to a watcher holding `role` towards the order."""

    role: str
    order_id: int
    entry_id: str
    event: str
    data: dict
    # Soak time, in seconds.
    at: float

    @classmethod
    def of(cls, message: SseMessage, *, role: str, order_id: int, at: float) -> "Shown":
        return cls(role, order_id, message.id or "", message.event, json.loads(message.data), at)


def status_at(changes: list[tuple[datetime, str]], moment: datetime) -> str | None:
    """The status an order had at `moment`, from its history in time order (when each
    change was made, and to what); None before the order existed."""
    index = bisect_right([at for at, _ in changes], moment)
    return changes[index - 1][1] if index else None


def location_leaks(
    *,
    shown: Iterable[Shown],
    entry_statuses: dict[tuple[int, str], str],
    history: dict[int, list[tuple[datetime, str]]],
) -> tuple[list[str], int, int]:
    """Every courier point a stream showed to someone who may not see it (API.md: the
    customer only while `picked_up`, the owner while `ready` or `picked_up`), and how many
    points were shown to someone who may not always see them, and of those how many were
    checked against the status their ping read.

    The status of a point is the one its ping read, which the order's Redis stream keeps
    with the entry (`entry_statuses`, by order and entry id). A customer's point is also
    held to the order's history in the database at the point's time: only the courier
    moves an order into and out of `picked_up`, and its pings and status changes follow
    each other, so the history says exactly whether the order was picked up then. (An
    owner's boundary, `ready`, is set by the owner while the courier pings: there the
    ping's own reading is the status at the time.)
    """
    leaks: list[str] = []
    restricted = verified = 0
    for item in shown:
        allowed = LOCATION_VISIBLE_WHILE[item.role]
        if item.event != "location" or allowed is None:
            continue
        restricted += 1
        reasons = []
        status = entry_statuses.get((item.order_id, item.entry_id))
        if status is not None:
            verified += 1
            if status not in allowed:
                reasons.append(f"its ping read {status}")
        if item.role == "customer":
            moment = datetime.fromisoformat(item.data["recorded_at"])
            then = status_at(history.get(item.order_id, []), moment)
            if then not in allowed:
                reasons.append(f"the order was {then or 'not placed yet'} at {moment:%H:%M:%S.%f}")
        if reasons:
            leaks.append(
                f"t={item.at:.0f}s order {item.order_id}, {item.role}'s stream, point "
                f"{item.entry_id}: " + "; ".join(reasons)
            )
    return leaks, restricted, verified
