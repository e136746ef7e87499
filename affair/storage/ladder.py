"""The archive ladder as librrd sees it: pure functions, no files.

An RRD holds one round-robin archive (RRA) per (resolution, consolidation).
The ladder itself (``"STEP:ROWS"`` rungs) is parsed and checked when the
config loads (:mod:`affair.config.archive`); here it becomes RRA lines, and
graphs pick their archive from it.

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
"""

import math


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


def archive_for_range(archives, start, end, now):
    """The archive librrd's ``fetch`` would read ``start`` to ``end`` from, asked at ``now``.

    librrd takes the finest archive that still holds the whole span back
    from its newest row (``now`` here; samples are never kept for the
    future): the start must be within the archive's reach from now, and the
    span no longer than the archive, so a range drawn ahead of now is not
    thousands of fine rows either. None holding it: the longest, as for a
    window.
    """
    return archive_for_window(archives, max(now, end) - start)


def align(timestamp, step):
    """The start of the ``step``-second slot holding ``timestamp``."""
    return int(math.floor(timestamp / step)) * step


def _format_number(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))
