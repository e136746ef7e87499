"""``[archive]``: the resolution ladder, parsed and checked at load.

The ladder is written as ``"STEP:ROWS"`` strings in whisper's style, e.g.
AFFAIR's default::

    10s:360  1min:360  4min:360  30min:336  2h:372  6h:368  1d:366

which keep, respectively, 1 hour, 6 hours, 1 day, 1 week, 31 days, 92 days
and 366 days. ROWS may also be a duration (``10s:1h`` means 360 rows).

A ladder is valid when each step is a whole number of base steps (librrd
builds every row from whole primary data points, one per base step), steps
grow strictly, each archive spans more time than the one before (else it is
dead weight), and the first archive is at the base step (else no sample is
ever seen unconsolidated). A step need not be a multiple of the step before
it: librrd consolidates each archive from the primary data points directly,
not from the finer archive, which is why AFFAIR's 4 min -> 30 min rung is
fine. How a ladder becomes RRA lines is :mod:`affair.storage.ladder`'s.
"""

from dataclasses import dataclass

from affair.config.fields import number, setting, string_list
from affair.errors import ConfigError
from affair.times import parse_duration
from affair.vocab import CONSOLIDATIONS

AFFAIR_LADDER = ("10s:360", "1min:360", "4min:360", "30min:336", "2h:372", "6h:368", "1d:366")


@dataclass(frozen=True)
class Archive:
    """One rung of the ladder: rows of ``step`` seconds each."""

    step: int
    rows: int

    @property
    def span(self):
        """Seconds of history this archive keeps."""
        return self.step * self.rows


@dataclass(frozen=True)
class ArchiveSettings:
    """The keys of ``[archive]``; :class:`~affair.config.Config` keeps them parsed."""

    ladder: tuple[str, ...] = setting(
        AFFAIR_LADDER, string_list, "a list of 'STEP:ROWS' strings like '10s:360'"
    )
    consolidations: tuple[str, ...] = setting(
        ("AVERAGE", "MIN", "MAX"), string_list, f"a list drawn from {list(CONSOLIDATIONS)}"
    )
    xff: float = setting(0.5, number, "a fraction between 0 and 1 (exclusive of 1)")


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


def load_ladder(settings: ArchiveSettings, step: int, path) -> tuple[Archive, ...]:
    """The parsed ladder for the base ``step``, once every ``[archive]`` key is checked."""
    for cf in settings.consolidations:
        if cf not in CONSOLIDATIONS:
            raise ConfigError(
                path, "archive.consolidations", f"names from {list(CONSOLIDATIONS)}", cf
            )
    if not 0 <= settings.xff < 1:
        raise ConfigError(
            path, "archive.xff", "a fraction from 0 up to (not including) 1", settings.xff
        )
    try:
        archives = tuple(parse_archive(spec) for spec in settings.ladder)
        validate_ladder(archives, step)
    except ValueError as error:
        raise ConfigError(path, "archive.ladder", f"a valid ladder ({error})") from None
    return archives
