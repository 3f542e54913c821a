"""When should drift retrain the model? Runs of consecutive drifted days, as episodes.

One episode leads to one retrain: the sensor keys its run on the episode's start, so a drift
that lasts a week triggers once, not seven times, and a later separate episode triggers again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class DriftEpisode:
    start: date
    end: date
    days: int
    peak_share: float

    @property
    def run_key(self) -> str:
        return f"drift-episode-{self.start.isoformat()}"


def drift_episodes(
    shares: Mapping[date, float], threshold: float, min_days: int
) -> list[DriftEpisode]:
    """Episodes of at least `min_days` consecutive calendar days with share >= `threshold`.

    A day without a report breaks a run (no evidence is not evidence of drift), and a run still
    going on the last reported day is returned with that day as its end: its start, and so its
    run key, does not change as it grows.
    """
    if min_days < 1:
        raise ValueError(f"min_days must be at least 1, got {min_days}")
    episodes: list[DriftEpisode] = []
    run: list[date] = []

    def close() -> None:
        if len(run) >= min_days:
            peak = max(shares[d] for d in run)
            episodes.append(DriftEpisode(run[0], run[-1], len(run), peak))

    for day in sorted(shares):
        drifted = shares[day] >= threshold
        if drifted and run and day - run[-1] == timedelta(days=1):
            run.append(day)
            continue
        close()
        run = [day] if drifted else []
    close()
    return episodes
