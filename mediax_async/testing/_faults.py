"""Fault injection: which requests fail, and how, decided from a seeded generator.

Two ways to ask, combinable: a rate per action and fault (``set_rate``), and a
script of the next N requests of an action (``inject``), which goes first.
"""

from __future__ import annotations

import collections
import enum
import random
from typing import Final

from ._wire import ACTION_PATHS, Reply, error_reply

__all__ = ["ANY_ACTION", "Fault", "FaultPlan", "gateway_reply"]

ANY_ACTION: Final = "*"


class Fault(enum.Enum):
    """A way for a request to go wrong.

    Whether the service acted on the request matters to a client deciding to
    retry a CreateJob: only SLOW, MALFORMED_JSON and ANSWER_LOST are processed.
    """

    RATE_LIMITED = "rate_limited"
    """429 with ``Retry-After`` and a JSON error; not processed."""
    SERVER_ERROR = "server_error"
    """500 with a JSON error; not processed."""
    BAD_GATEWAY = "bad_gateway"
    """502 with an HTML body, as a gateway sends it; not processed."""
    UNAVAILABLE = "unavailable"
    """503 with an empty body; not processed."""
    DROP = "drop"
    """The connection drops before the request is processed."""
    SLOW = "slow"
    """The answer comes after ``FaultPlan.slow_delay`` seconds; processed."""
    MALFORMED_JSON = "malformed_json"
    """200 with a cut-off JSON body; processed."""
    ANSWER_LOST = "answer_lost"
    """Processed (a CreateJob creates its job), then the connection drops."""


_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def gateway_reply(fault: Fault, request_id: str, retry_after: int) -> Reply:
    """Answer for a fault that stops a request before the service sees it."""
    if fault == Fault.RATE_LIMITED:
        headers = (("retry-after", str(retry_after)),)
        message = f"too many requests; retry after {retry_after} s"
        return error_reply(request_id, 429, "RequestLimitExceeded", message, headers)
    if fault == Fault.SERVER_ERROR:
        return error_reply(request_id, 500, "InternalError", "an internal error occurred")
    if fault == Fault.BAD_GATEWAY:
        return Reply(502, _HTML_502, (("content-type", "text/html"),))
    if fault == Fault.UNAVAILABLE:
        return Reply(503, b"", ())
    raise ValueError(f"{fault} is not answered by the gateway")


def _check_action(action: str | None) -> str:
    if action is None:
        return ANY_ACTION
    if action not in ACTION_PATHS:
        raise ValueError(f"unknown action {action!r} (choose from {', '.join(ACTION_PATHS)})")
    return action


class FaultPlan:
    """Decides, request by request, whether to inject a fault; counts what it injected.

    ``retry_after`` is the ``Retry-After`` of a 429 (whole seconds);
    ``slow_delay`` is how long a SLOW answer waits (seconds, on anyio's clock).
    """

    def __init__(self, *, seed: int | None = 0, retry_after: int = 1, slow_delay: float = 5.0):
        self.retry_after = retry_after
        self.slow_delay = slow_delay
        #: How many of each fault were injected, by (action, fault).
        self.counts: collections.Counter[tuple[str, Fault]] = collections.Counter()
        self._rng = random.Random(None if seed is None else f"{seed}/faults")
        self._rates: dict[str, dict[Fault, float]] = {}
        self._tables: dict[str, tuple[tuple[float, Fault], ...]] = {}
        self._scripted: dict[str, collections.deque[Fault]] = {}

    def __repr__(self) -> str:
        return f"<FaultPlan rates={self._rates!r} scripted={dict(self._scripted)!r}>"

    def set_rate(self, fault: Fault, rate: float, *, action: str | None = None) -> None:
        """Give each request of ``action`` (default: every action) this chance of ``fault``.

        A rate set for one action replaces, for that action, the rate set for all.
        The rates that apply to one action must add up to at most 1.
        """
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, not {rate!r}")
        key = _check_action(action)
        rates = {name: dict(by_fault) for name, by_fault in self._rates.items()}
        rates.setdefault(key, {})[fault] = rate
        for name in (*ACTION_PATHS, ANY_ACTION):
            if sum(_rates_for(rates, name).values()) > 1:
                raise ValueError(f"the fault rates for {name} would add up to over 1")
        self._rates = rates
        self._tables.clear()

    def inject(self, fault: Fault, *, action: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` requests of ``action`` (default: any) get ``fault``."""
        if times < 0:
            raise ValueError("times must be >= 0")
        self._scripted.setdefault(_check_action(action), collections.deque()).extend(
            [fault] * times
        )

    def clear(self) -> None:
        """Stop injecting: forget every rate and scripted fault (counts are kept)."""
        self._rates.clear()
        self._tables.clear()
        self._scripted.clear()

    def injected(self, *, action: str | None = None, fault: Fault | None = None) -> int:
        """How many faults were injected, optionally only for one action or one fault."""
        return sum(
            count
            for (counted_action, counted_fault), count in self.counts.items()
            if (action is None or counted_action == action)
            and (fault is None or counted_fault == fault)
        )

    def decide(self, action: str) -> Fault | None:
        """Pick the fault for this request of ``action``, if any, and count it."""
        if not self._rates and not self._scripted:
            return None
        fault = self._next_scripted(action)
        if fault is None:
            table = self._table(action)
            if table:
                draw = self._rng.random()
                fault = next((f for bound, f in table if draw < bound), None)
        if fault is not None:
            self.counts[action, fault] += 1
        return fault

    def _next_scripted(self, action: str) -> Fault | None:
        for key in (action, ANY_ACTION):
            queue = self._scripted.get(key)
            if queue:
                fault = queue.popleft()
                if not queue:
                    del self._scripted[key]
                return fault
        return None

    def _table(self, action: str) -> tuple[tuple[float, Fault], ...]:
        """Cumulative rates for ``action``: (upper bound of the draw, fault)."""
        table = self._tables.get(action)
        if table is None:
            bounds: list[tuple[float, Fault]] = []
            total = 0.0
            for fault, rate in _rates_for(self._rates, action).items():
                if rate > 0:
                    total += rate
                    bounds.append((total, fault))
            table = self._tables[action] = tuple(bounds)
        return table


def _rates_for(rates: dict[str, dict[Fault, float]], action: str) -> dict[Fault, float]:
    """Merge the rates that apply to ``action``: its own over those for every action."""
    return {**rates.get(ANY_ACTION, {}), **rates.get(action, {})}
