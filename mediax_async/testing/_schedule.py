"""How long jobs take and how they end: durations drawn from a seeded generator."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Protocol

import attrs

__all__ = ["Duration", "FixedDuration", "LogNormalDuration", "Profile", "Schedule"]


class Duration(Protocol):
    """A length of time in seconds, fixed or drawn at random."""

    def sample(self, rng: random.Random) -> float:
        """Draw one duration in seconds (never negative)."""
        ...


def _not_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be a number of seconds >= 0, not {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, not {value!r}")


@attrs.frozen
class FixedDuration:
    """Always the same number of seconds."""

    seconds: float = attrs.field(validator=_not_negative)

    def sample(self, rng: random.Random) -> float:
        """Return ``seconds``; ``rng`` is left untouched."""
        return self.seconds


@attrs.frozen
class LogNormalDuration:
    """Log-normally distributed seconds: half the draws fall under ``median``.

    ``sigma`` is the standard deviation of the logarithm: 0.25 is a tight spread,
    1.0 a long tail.
    """

    median: float = attrs.field(validator=_positive)
    sigma: float = attrs.field(validator=_not_negative)

    def sample(self, rng: random.Random) -> float:
        """Draw ``median * exp(sigma * N(0, 1))``."""
        return rng.lognormvariate(math.log(self.median), self.sigma)


def _fraction(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value!r}")


@attrs.frozen(kw_only=True)
class Profile:
    """The life of one kind of job: time queued, time processing, and how it ends.

    A job waits ``queue`` seconds as SUBMITTED, runs ``processing`` seconds as
    PROCESSING, then ends ERROR with probability ``error_rate``, CANCELED with
    probability ``cancel_rate``, and COMPLETED otherwise.
    """

    queue: Duration = FixedDuration(1.0)
    processing: Duration = FixedDuration(30.0)
    error_rate: float = attrs.field(default=0.0, validator=_fraction)
    cancel_rate: float = attrs.field(default=0.0, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if self.error_rate + self.cancel_rate > 1:
            raise ValueError("error_rate + cancel_rate must not exceed 1")


@attrs.frozen(kw_only=True)
class Schedule:
    """A ``Profile`` per capability (wire name, e.g. ``"musicSeperate"``), with a default."""

    default: Profile = Profile()
    by_capability: Mapping[str, Profile] = attrs.field(factory=dict)

    @classmethod
    def instant(cls) -> Schedule:
        """Jobs that finish COMPLETED as soon as the service looks at them again."""
        return cls(default=Profile(queue=FixedDuration(0), processing=FixedDuration(0)))

    def profile(self, capability: str) -> Profile:
        """Return the profile for ``capability``."""
        return self.by_capability.get(capability, self.default)
