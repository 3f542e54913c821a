"""When a request happened: its `event_time`, within a bounded allowance of the clock.

Features are read as of the event time, so a time far from now would read a state the store
no longer holds (older than the late-event allowance) or has not seen yet (beyond the clock
skew allowance). Such a time is refused with a 422 that names the field; a request without
one is scored as of its arrival.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class EventTimeError(ValueError):
    """An event time outside what the endpoint can score; `field` names it for the 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def resolve_event_time(
    event_time: datetime | None,
    received_at: datetime,
    max_lag: timedelta,
    max_skew: timedelta,
    field: str = "event_time",
) -> datetime:
    """The event time in UTC (naive times are UTC, as in the warehouse; none means
    `received_at`), or EventTimeError when it falls outside
    `[received_at - max_lag, received_at + max_skew]`."""
    if event_time is None:
        return received_at
    try:
        moment = (event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)).astimezone(
            UTC
        )
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:30+01:00 is before year 1 in UTC
        moment = None
    earliest, latest = received_at - max_lag, received_at + max_skew
    if moment is None or not earliest <= moment <= latest:
        raise EventTimeError(
            field,
            f"{event_time.isoformat()} is outside the accepted range {earliest.isoformat()} .. "
            f"{latest.isoformat()} (late events up to ML_ASSETS_MAX_EVENT_LAG_S, clock skew up "
            "to ML_ASSETS_MAX_EVENT_SKEW_S); send the time the transaction happened, in UTC",
        )
    return moment
