"""The shop calendar: the data window, promo windows and how activity spreads over days.

Times are drawn by inverting the cumulative weight of a *day profile* over a
user's active interval, so promo spikes and outdoor seasons apply to any
interval without rejection sampling.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND

#: Day profiles: how likely an action is on each day.
BASE, PROMO, OUTING = 0, 1, 2
PROFILE_NAMES = ("base", "promo", "outing")
#: Everyone buys more during promos; promo-sensitive users almost only then.
BASE_PROMO_BOOST = 2.0
PROMO_PROFILE_BOOST = 40.0
#: Outdoor interest by month (spring and autumn peaks, winter low).
OUTING_MONTH_FACTOR = np.array(
    [0.0, 0.4, 0.5, 1.5, 3.0, 3.0, 1.5, 1.0, 1.2, 3.0, 3.0, 1.2, 0.4]
)  # index 1..12
#: Relative activity by hour of day (lunch break and evening peaks).
HOUR_WEIGHTS = np.array([
    1.2, 0.7, 0.4, 0.2, 0.2, 0.3, 0.7, 1.5, 2.5, 3.2, 3.5, 3.6,
    4.2, 3.8, 3.2, 3.0, 3.0, 3.2, 3.6, 4.5, 5.5, 6.0, 5.2, 2.8,
])


@dataclass(frozen=True)
class PromoWindow:
    """A platform-wide promotion, first and last day inclusive."""

    name: str
    first_day: dt.date
    last_day: dt.date


def promo_windows(start: dt.date, end: dt.date) -> list[PromoWindow]:
    """618 (June 1-18) and 双11 (November 1-11) windows that overlap ``[start, end]``."""
    windows = []
    for year in range(start.year, end.year + 1):
        for name, first, last in (
            (f"618_{year}", dt.date(year, 6, 1), dt.date(year, 6, 18)),
            (f"double11_{year}", dt.date(year, 11, 1), dt.date(year, 11, 11)),
        ):
            if first <= end and last >= start:
                windows.append(PromoWindow(name, max(first, start), min(last, end)))
    return windows


class ShopCalendar:
    """The data window (``years`` × 365 days ending on ``end``) and its day profiles."""

    def __init__(self, end: dt.date, years: int) -> None:
        if years < 1:
            raise ValueError(f"years must be at least 1, got {years}")
        self.end = end
        self.start = end - dt.timedelta(days=365 * years - 1)
        self.n_days = (end - self.start).days + 1
        self.start_epoch_day = (self.start - dt.date(1970, 1, 1)).days
        self.start_us = self.start_epoch_day * MICROS_PER_DAY
        #: Exclusive upper bound of every timestamp: midnight after ``end``.
        self.end_us = self.start_us + self.n_days * MICROS_PER_DAY
        self.windows = promo_windows(self.start, end)
        days = [self.start + dt.timedelta(days=i) for i in range(self.n_days)]
        self.is_promo_day = np.zeros(self.n_days, dtype=bool)
        for window in self.windows:
            first = (window.first_day - self.start).days
            last = (window.last_day - self.start).days
            self.is_promo_day[first : last + 1] = True
        weekday = np.array([d.weekday() for d in days])
        month = np.array([d.month for d in days])
        growth = 1.0 + 0.25 * np.arange(self.n_days) / self.n_days
        base = growth * np.where(weekday >= 5, 1.15, 1.0)
        profiles = np.stack([
            base * np.where(self.is_promo_day, BASE_PROMO_BOOST, 1.0),
            base * np.where(self.is_promo_day, PROMO_PROFILE_BOOST, 1.0),
            base * OUTING_MONTH_FACTOR[month],
        ])
        self._cumulative = np.zeros((len(profiles), self.n_days + 1))
        np.cumsum(profiles, axis=1, out=self._cumulative[:, 1:])
        hours = np.cumsum(HOUR_WEIGHTS)
        self._hour_cumulative = hours / hours[-1]

    def day_of(self, date: dt.date) -> int:
        """Index of ``date`` in the window (0 = ``start``)."""
        return (date - self.start).days

    def draw_times(
        self,
        rng: np.random.Generator,
        profile: np.ndarray,
        first_day: np.ndarray,
        last_day: np.ndarray,
        quantile: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw one timestamp (µs since epoch) per row in ``[first_day, last_day]`` (inclusive).

        Parameters
        ----------
        rng
            The chunk's generator.
        profile
            Day-profile index per row (``BASE``, ``PROMO`` or ``OUTING``).
        first_day, last_day
            Window day indices bounding each row; clipped to the window.
        quantile
            Position of each row within its interval's activity mass, in [0, 1);
            uniform random when omitted.
        """
        first = np.clip(first_day, 0, self.n_days - 1)
        last = np.clip(last_day, first, self.n_days - 1)
        low = self._cumulative[profile, first]
        high = self._cumulative[profile, last + 1]
        if quantile is None:
            quantile = rng.random(len(first))
        target = low + quantile * (high - low)
        day = np.empty(len(first), dtype=np.int64)
        for p in range(len(self._cumulative)):
            rows = profile == p
            if rows.any():
                day[rows] = np.searchsorted(self._cumulative[p], target[rows], side="right") - 1
        day = np.clip(day, first, last)
        return self.start_us + day * MICROS_PER_DAY + self.draw_time_of_day(rng, len(day))

    def draw_time_of_day(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Microseconds after midnight, following :data:`HOUR_WEIGHTS`."""
        hour = np.searchsorted(self._hour_cumulative, rng.random(n), side="right")
        within = rng.integers(0, 3600 * MICROS_PER_SECOND, n)
        return np.minimum(hour, 23) * 3600 * MICROS_PER_SECOND + within

    def promo_share(self) -> float:
        """Share of window days that are promo days."""
        return float(self.is_promo_day.mean())

    def in_promo(self, micros: np.ndarray) -> np.ndarray:
        """Whether each timestamp falls on a promo day."""
        day = (micros - self.start_us) // MICROS_PER_DAY
        return self.is_promo_day[np.clip(day, 0, self.n_days - 1)]
