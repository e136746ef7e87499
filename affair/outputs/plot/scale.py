"""Value axes: nice tick steps and tick labels. Pure functions.

One prefix per axis: the ticks read ``0 100 200 300`` under the unit
``MB/s`` rather than ``0 100M 200M 300M``, so tick labels stay short and
the unit is said once. The prefixes and the formatting of single values
are :mod:`affair.units`', shared with the pages and the terminal.
"""

import math

import numpy as np

from affair.units import format_value, prefix_power, prefixed_unit  # noqa: F401 - re-exported

HEADROOM = 0.04  # of the data's span, above its maximum


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
