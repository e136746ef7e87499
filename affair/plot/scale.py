"""Value axes: SI prefixes, nice tick steps and number formatting. Pure functions.

One prefix per axis: the ticks read ``0 100 200 300`` under the unit
``MB/s`` rather than ``0 100M 200M 300M``, so tick labels stay short and
the unit is said once. Prefixes are decimal SI (k = 1000, also for bytes:
``kB`` and ``MB`` as the issue asks, not KiB), and never applied to units
that are already relative (``%``) or would read oddly with one.
"""

import math

import numpy as np

HEADROOM = 0.04  # of the data's span, above its maximum
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


def prefix_power(magnitude, unit):
    """The power of 1000 to show ``magnitude`` in: 2 for 3.4e6 B/s (MB/s), 0 for %."""
    if unit in _NO_PREFIX or not magnitude or not math.isfinite(magnitude):
        return 0
    power = math.floor(math.log10(abs(magnitude)) / 3)
    if unit in _WHOLE_UNITS:
        power = max(power, 0)
    return max(min(power, 6), -4)


def prefixed_unit(power, unit):
    """``(2, "B/s")`` -> ``"MB/s"``; a unit that is a word gets a space: ``"k samples"``."""
    prefix = _PREFIXES[power]
    if not prefix:
        return unit
    if not unit or unit.startswith("/"):
        return f"{prefix}{unit}" if unit else prefix
    head = unit.split("/")[0]
    return f"{prefix}{unit}" if len(head) <= 3 else f"{prefix} {unit}"


def nice_step(span, max_ticks=5):
    """The smallest of 1, 2, 2.5, 5 x 10^k that cuts ``span`` into at most ``max_ticks`` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max_ticks
    base = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * base >= raw * (1 - 1e-9):
            return multiple * base
    return 10 * base  # pragma: no cover - the loop always returns


def value_axis(low, high, floor=None, ceiling=None, max_ticks=5):
    """Axis limits and ticks ``(bottom, top, ticks)`` for data spanning ``low..high``.

    ``floor`` is the variables' declared minimum (e.g. 0 for a rate): the
    axis starts there when the data stay above it, so a small value is not
    drawn as if it were large. The top leaves a little headroom, so a line
    at the maximum is not hidden in the frame, but does not pass a declared
    ``ceiling`` the data respect (CPU stops at 100 %). With no data at all
    the axis is 0..1.
    """
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    data_high = high
    if floor is not None and low >= floor:
        low = floor
    elif low > 0:
        low = 0.0  # levels and rates read best against zero
    if high <= low:
        high = low + (abs(low) if low else 1.0)  # a flat line at the floor: show a unit above
    else:
        high += (high - low) * HEADROOM
    step = nice_step(high - low, max_ticks)
    bottom = math.floor(low / step + 1e-9) * step
    top = math.ceil(high / step - 1e-9) * step
    if ceiling is not None and data_high <= ceiling < top and ceiling > bottom:
        top = ceiling
    if top <= bottom:
        top = bottom + step
    count = int(math.floor((top - bottom) / step + 1e-9))
    ticks = [bottom + index * step for index in range(count + 1)]
    return bottom, top, ticks


def tick_labels(ticks, scale):
    """Tick values divided by ``scale``, with just the decimals the step needs."""
    if len(ticks) > 1:
        step = abs(ticks[1] - ticks[0]) / scale
        decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step else 0
        if step and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
            decimals += 1  # 2.5 needs one more than 2
    else:
        decimals = 0
    labels = []
    for tick in ticks:
        value = tick / scale
        if abs(value) < 1e-12:
            value = 0.0
        labels.append(f"{value:.{min(decimals, 6)}f}")
    return labels


def format_value(value, unit):
    """One number for a legend: three significant digits and a prefixed unit: ``312 MB/s``."""
    if value is None or not math.isfinite(value):
        return "–"
    power = prefix_power(value, unit)
    scaled = value / 1000**power
    magnitude = abs(scaled)
    if magnitude >= 100 or scaled == 0:
        text = f"{scaled:.0f}"
    elif magnitude >= 10:
        text = f"{scaled:.1f}"
    else:
        text = f"{scaled:.2f}"
    suffix = prefixed_unit(power, unit)
    return f"{text} {suffix}" if suffix else text


def finite_range(*arrays):
    """``(low, high)`` over the finite values of ``arrays``, or ``(None, None)``."""
    low = high = None
    for values in arrays:
        if values is None or not len(values):
            continue
        finite = values[np.isfinite(values)]
        if not len(finite):
            continue
        low = float(finite.min()) if low is None else min(low, float(finite.min()))
        high = float(finite.max()) if high is None else max(high, float(finite.max()))
    return low, high
