"""Points in time and durations as people type them (``--from``, ``--to``, ``step = '10s'``).

Durations are whole seconds, written ``360``, ``10s``, ``4min``, ``2h``, ``1d``,
``1w`` or ``1y`` (365 days).

Points in time are UTC, like the journal's day files: a date or time without
a zone is read as UTC. Accepted forms::

    now, today, yesterday           (today and yesterday: 00:00 UTC)
    now-1h, now-30min, -2d          before now (any duration parse_duration knows;
                                    write --from=-2d, argparse takes -2d for an option)
    1700000000, 1700000000.5        Unix seconds
    2024-05-01, 2024-05-01T12:00, 2024-05-01 12:00:00+02:00, ...Z
"""

import re
from datetime import UTC, datetime

FORMS = "now, today, yesterday, now-1h, Unix seconds, or 2024-05-01[T12:00[Z]]"
_NUMBER = re.compile(r"\d+(\.\d+)?")
_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"\s*(\d+)\s*(s|min|m|h|d|w|y)?\s*")


def parse_duration(text):
    """``"10s"`` -> 10, ``"4min"`` -> 240, ``"2h"`` -> 7200, ``"360"`` -> 360 (seconds).

    Raises ValueError on anything else, including zero.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        match = _DURATION.fullmatch(str(text))
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 10s, 4min, 2h, 1d, 1w)")
        seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds


def midnight_utc(timestamp):
    day = datetime.fromtimestamp(timestamp, UTC)
    return day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def parse_time(text, now):
    """Unix seconds for ``text`` (see the module doc); ValueError naming the forms."""
    text = str(text).strip()
    if text == "now":
        return float(now)
    if text == "today":
        return midnight_utc(now)
    if text == "yesterday":
        return midnight_utc(now) - 86400
    if text.startswith(("-", "now-")):
        try:
            return float(now) - parse_duration(text.split("-", 1)[1])
        except ValueError:
            pass
    elif _NUMBER.fullmatch(text):
        return float(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise ValueError(f"not a time: {text!r} (use {FORMS})")


def iso_utc(timestamp):
    """``2024-05-01T12:00:00Z`` (whole seconds are enough for people)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
