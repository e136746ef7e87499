"""Archive and consolidation maths: pure functions, no files.

An RRD holds one round-robin archive (RRA) per (resolution, consolidation).
The resolution ladder is written in the config as ``"STEP:ROWS"`` strings in
whisper's style, e.g. AFFAIR's default::

    10s:360  1min:360  4min:360  30min:336  2h:372  6h:368  1d:366

which keep, respectively, 1 hour, 6 hours, 1 day, 1 week, 31 days, 92 days
and 366 days. ROWS may also be a duration (``10s:1h`` means 360 rows).

How a ladder becomes RRA lines (collectd's rrdcreate.c calls this "magic";
here is the derivation):

* librrd counts an archive's resolution in primary data points (PDPs), one
  PDP per base step. An archive with step ``S`` therefore consolidates
  ``S / base_step`` PDPs per row: ``RRA:CF:XFF:S/base_step:ROWS``.
* Every archive is written once per consolidation function, so MIN and MAX
  survive at every resolution (a spike seen at 10 s is still visible as the
  MAX of its day a year later).
* XFF, the "x-files factor", is the fraction of PDPs in a row that may be
  unknown while the row is still known; 0.5 is rrdtool's customary value.

A ladder is valid when each step is a whole number of base steps (librrd
builds every row from whole PDPs), steps grow strictly, each archive spans
more time than the one before (else it is dead weight), and the first
archive is at the base step (else no sample is ever seen unconsolidated).
A step need not be a multiple of the step before it: librrd consolidates
each archive from the PDPs directly, not from the finer archive, which is
why AFFAIR's 4 min -> 30 min rung is fine.
"""

import math
import re
from dataclasses import dataclass

CONSOLIDATIONS = ("AVERAGE", "MIN", "MAX", "LAST")
VARIABLE_TYPES = ("GAUGE", "COUNTER", "DERIVE", "ABSOLUTE")

_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"\s*(\d+)\s*(s|min|m|h|d|w|y)?\s*")


@dataclass(frozen=True)
class Archive:
    """One rung of the ladder: rows of ``step`` seconds each."""

    step: int
    rows: int

    @property
    def span(self):
        """Seconds of history this archive keeps."""
        return self.step * self.rows


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


def parse_archive(spec):
    """``"10s:360"`` or ``"1min:6h"`` -> Archive(step, rows)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"archive must be 'STEP:ROWS' like '10s:360', got {spec!r}")
    step_text, rows_text = spec.split(":")
    step = parse_duration(step_text)
    rows_text = rows_text.strip()
    if rows_text.isdigit():
        rows = int(rows_text)
    else:
        span = parse_duration(rows_text)
        if span % step:
            raise ValueError(f"archive {spec!r}: span {span}s is not a whole number of steps")
        rows = span // step
    if rows < 1:
        raise ValueError(f"archive {spec!r}: needs at least one row")
    return Archive(step, rows)


def validate_ladder(archives, base_step):
    """Raise ValueError naming the first rung that breaks a rule (see module doc)."""
    if not archives:
        raise ValueError("at least one archive is needed")
    if archives[0].step != base_step:
        raise ValueError(
            f"the first archive's step ({archives[0].step}s) must equal the base step "
            f"({base_step}s), or samples are consolidated before anyone sees them"
        )
    for previous, current in zip(archives, archives[1:], strict=False):
        if current.step <= previous.step:
            raise ValueError(f"steps must grow: {current.step}s follows {previous.step}s")
        if current.step % base_step:
            raise ValueError(
                f"step {current.step}s is not a multiple of the base step {base_step}s"
            )
        if current.span <= previous.span:
            raise ValueError(
                f"archive {current.step}s x {current.rows} spans {current.span}s, no more "
                f"than the finer {previous.step}s x {previous.rows} ({previous.span}s)"
            )
    return archives


def rra_definitions(archives, base_step, consolidations=("AVERAGE", "MIN", "MAX"), xff=0.5):
    """The ``RRA:...`` arguments of ``rrdtool create`` for a ladder."""
    lines = []
    for archive in archives:
        pdps_per_row = archive.step // base_step
        for cf in consolidations:
            lines.append(f"RRA:{cf}:{xff}:{pdps_per_row}:{archive.rows}")
    return lines


def ds_definition(name, var_type, heartbeat, minimum=None, maximum=None):
    """``DS:name:TYPE:heartbeat:min:max`` with ``U`` for an open bound."""

    def bound(value):
        return "U" if value is None else _format_number(value)

    return f"DS:{name}:{var_type}:{heartbeat}:{bound(minimum)}:{bound(maximum)}"


def archive_for_window(archives, window_seconds):
    """The finest archive whose history covers ``window_seconds``.

    Falls back to the longest archive when none covers the window, so a
    window longer than the whole ladder still shows everything kept.
    """
    for archive in archives:
        if archive.span >= window_seconds:
            return archive
    return archives[-1]


def align(timestamp, step):
    """The start of the ``step``-second slot holding ``timestamp``."""
    return int(math.floor(timestamp / step)) * step


def _format_number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))
