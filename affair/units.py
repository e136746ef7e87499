"""Numbers with units as people read them: one convention for graphs, pages and the terminal.

Prefixes are decimal SI (k = 1000: ``kB/s``, ``MB/s`` for rates, as network
gear counts), except for amounts of bytes (unit ``B``: memory, swap, disk
space), which are binary (KiB, MiB, GiB = 1024³) as ``df -h`` and ``free -h``
print them and as people write them in limits: a threshold written as
2 GiB shows as "2 GiB", not "2.15 GB", and a 252G root file system as
"252 GiB", not "271 GB". This one rule (:data:`BINARY_UNITS`) is what graphs,
page tables and rules all use. Prefixes are never applied to units that are
already relative (``%``) and never below one for whole units (there is no
millibyte). Pure functions, no numpy: the status table and the pages use
them without loading the plotter.
"""

import math

_PREFIXES = {
    -4: "p",
    -3: "n",
    -2: "µ",
    -1: "m",
    0: "",
    1: "k",
    2: "M",
    3: "G",
    4: "T",
    5: "P",
    6: "E",
}
# Units a prefix would make nonsense of; their values are shown as they are.
_NO_PREFIX = {"%", "°C", "°F", "K", "dB", "ratio"}
# Units where a sub-unit prefix (milli, micro) would be wrong: there is no millibyte.
_WHOLE_UNITS = {"B", "B/s", "b", "b/s", "bit/s", "pkt/s", "pkt", "samples", "/s", ""}
# Amounts of bytes: prefixes of 1024 (KiB, MiB, GiB ...), as df and free print them.
BINARY_UNITS = {"B"}
_BINARY_PREFIXES = {1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}


def prefix_base(unit):
    """1024 for an amount of bytes, else 1000: what one step of prefix multiplies by."""
    return 1024 if unit in BINARY_UNITS else 1000


def prefix_power(magnitude, unit):
    """The power of 1000 to show ``magnitude`` in: 2 for 3.4e6 B/s (MB/s), 0 for %."""
    if unit in _NO_PREFIX or not magnitude or not math.isfinite(magnitude):
        return 0
    if unit in BINARY_UNITS:
        # a hair of slack so 1024**3 (written 2 GiB) is 1 GiB, not 1024 MiB
        power = math.floor(math.log(abs(magnitude)) / math.log(1024) + 1e-12)
    else:
        power = math.floor(math.log10(abs(magnitude)) / 3)
    if unit in _WHOLE_UNITS:
        power = max(power, 0)
    return max(min(power, 6), -4)


def prefixed_unit(power, unit):
    """``(2, "B/s")`` -> ``"MB/s"``; a unit that is a word gets a space: ``"k samples"``."""
    prefix = _BINARY_PREFIXES.get(power, "") if unit in BINARY_UNITS else _PREFIXES[power]
    if not prefix:
        return unit
    if not unit or unit.startswith("/"):
        return f"{prefix}{unit}" if unit else prefix
    head = unit.split("/")[0]
    return f"{prefix}{unit}" if len(head) <= 3 else f"{prefix} {unit}"


def format_value(value, unit="", trim=False):
    """Three significant digits and a prefixed unit: ``312 MB/s``.

    Legends keep the digits so columns align (``2.50``); ``trim`` drops
    trailing zeros for prose such as a status line (``97 % > 95 %``).
    """
    if value is None or not math.isfinite(value):
        return "–"
    power = prefix_power(value, unit)
    scaled = value / prefix_base(unit) ** power
    magnitude = abs(scaled)
    if magnitude >= 100 or scaled == 0:
        text = f"{scaled:.0f}"
    elif magnitude >= 10:
        text = f"{scaled:.1f}"
    else:
        text = f"{scaled:.2f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    suffix = prefixed_unit(power, unit)
    return f"{text} {suffix}" if suffix else text
