"""Time axes in local time: where the ticks go and what they say. Pure functions.

Ticks fall on round local wall-clock times (every 10 minutes of the hour,
every 3 hours of the day, midnights, the 1st of the month), stepped in
local time so a daylight-saving change moves the tick, not the clock.
Each window has one rule, so every graph of a window looks the same.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class TickRule:
    unit: str  # "minute", "hour", "day" or "month"
    every: int
    label: str  # strftime pattern
    day_label: str = ""  # pattern for a tick that falls on midnight, if it differs


# Chosen for ~720 px: 6 to 12 labels, each short enough never to collide.
RULES = {
    "1h": TickRule("minute", 10, "%H:%M"),
    "6h": TickRule("hour", 1, "%H:%M", "%a %-d"),
    "1d": TickRule("hour", 3, "%H:%M", "%a %-d"),
    "1w": TickRule("day", 1, "%a %-d"),
    "1m": TickRule("day", 4, "%-d %b"),
    "3m": TickRule("day", 14, "%-d %b"),
    "1y": TickRule("month", 1, "%b", "%b %Y"),
}


# A custom range (affair serve's zoom) has no window: the finest of these rules that puts
# at most SPAN_TICKS ticks across it, so a 5 minute zoom is labelled by the minute.
SPAN_TICKS = 8
SPAN_RULES = (
    TickRule("minute", 1, "%H:%M", "%a %-d"),
    TickRule("minute", 2, "%H:%M", "%a %-d"),
    TickRule("minute", 5, "%H:%M", "%a %-d"),
    TickRule("minute", 10, "%H:%M", "%a %-d"),
    TickRule("minute", 15, "%H:%M", "%a %-d"),
    TickRule("minute", 30, "%H:%M", "%a %-d"),
    TickRule("hour", 1, "%H:%M", "%a %-d"),
    TickRule("hour", 3, "%H:%M", "%a %-d"),
    TickRule("hour", 6, "%H:%M", "%a %-d"),
    TickRule("hour", 12, "%H:%M", "%a %-d"),
    TickRule("day", 1, "%a %-d"),
    TickRule("day", 2, "%a %-d"),
    TickRule("day", 4, "%-d %b"),
    TickRule("day", 7, "%-d %b"),
    TickRule("day", 14, "%-d %b"),
    TickRule("month", 1, "%b", "%b %Y"),
    TickRule("month", 3, "%b", "%b %Y"),
)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400}


def rule_for_span(seconds):
    """The tick rule of a custom range ``seconds`` long (see SPAN_RULES)."""
    for rule in SPAN_RULES:
        if seconds / (_UNIT_SECONDS[rule.unit] * rule.every) <= SPAN_TICKS:
            return rule
    return SPAN_RULES[-1]


def time_ticks(start, end, window, tz=None):
    """``[(timestamp, label), ...]`` for the ticks strictly inside ``(start, end]``.

    ``window`` names a window's rule, or is a TickRule (a custom range's).
    """
    rule = window if isinstance(window, TickRule) else RULES[window]
    ticks = []
    for moment in _candidates(datetime.fromtimestamp(start, tz), rule):
        stamp = moment.timestamp()
        if stamp > end:
            break
        if stamp <= start:
            continue
        ticks.append((stamp, _label(moment, rule)))
    return ticks


def _label(moment, rule):
    if rule.unit == "month":
        return moment.strftime(rule.day_label if moment.month == 1 else rule.label)
    if rule.day_label and moment.hour == 0 and moment.minute == 0:
        return moment.strftime(rule.day_label)
    return moment.strftime(rule.label)


def _candidates(first, rule):
    """Round wall-clock moments from ``first`` onwards (an endless generator)."""
    naive = first.replace(second=0, microsecond=0)
    tz = first.tzinfo
    if rule.unit == "minute":
        moment = naive.replace(minute=naive.minute - naive.minute % rule.every)
        step = timedelta(minutes=rule.every)
    elif rule.unit == "hour":
        moment = naive.replace(minute=0, hour=naive.hour - naive.hour % rule.every)
        step = timedelta(hours=rule.every)
    elif rule.unit == "day":
        yield from _days(naive, rule.every, tz)
        return
    else:
        yield from _months(naive, rule.every, tz)
        return
    while True:
        yield _local(moment, tz)
        moment += step


def _days(naive, every, tz):
    """Midnights on days of the month 1, 1+every, ... (never a stub just before the 1st)."""
    day = naive.replace(hour=0, minute=0)
    while True:
        index = day.day - 1
        next_first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        room = (next_first - day).days  # days until the next month starts
        if index % every == 0 and (index == 0 or room >= every):
            yield _local(day, tz)
        day += timedelta(days=1)


def _months(naive, every, tz):
    month = naive.replace(day=1, hour=0, minute=0)
    while True:
        if (month.month - 1) % every == 0:
            yield _local(month, tz)
        month = (month + timedelta(days=32)).replace(day=1)


def _local(naive, tz):
    """A wall-clock time as an aware datetime (local zone when ``tz`` is None)."""
    if tz is not None:
        return naive.replace(tzinfo=tz)
    return naive.astimezone()  # naive means local: resolves DST for this date


def describe_end(end, tz=None):
    """The right edge of a graph in words: ``Sun 22 Nov 14:30``."""
    return datetime.fromtimestamp(end, tz).strftime("%a %-d %b %H:%M")


def describe_range(start, end, tz=None):
    """A custom range in words: ``Sun 22 Nov 14:30 to 15:30``; the day again only if it changed,
    the years only if they differ."""
    first, last = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    if first.year != last.year:
        return f"{first.strftime('%-d %b %Y %H:%M')} to {last.strftime('%-d %b %Y %H:%M')}"
    to = last.strftime("%H:%M" if first.date() == last.date() else "%a %-d %b %H:%M")
    return f"{describe_end(start, tz)} to {to}"
