"""Pixels: a :class:`Chart` drawn with matplotlib's Agg renderer, fast.

A fresh matplotlib figure costs several times a whole graph's budget to build
and draw (see benchmarks/RESULTS.md); thousands of graphs a pass cannot afford
that. So, like matplotlib's blitting:

* a graph's *shape* (size, panels, legend entries, key) decides its layout;
  the canvas of each shape is made once per process, its static parts (page,
  plot frames, legend swatches and names, the line-style key) drawn once
  and saved as a background: all per-node graphs of a dataset share one;
* each graph restores that background and draws only what changes (grid,
  lines, bands, tick labels, legend values) with the renderer's primitives
  (``draw_path``, ``draw_image``), skipping the artist and layout machinery;
* text comes from :class:`~affair.outputs.plot.text.TextPainter` (glyphs rendered
  once), and the PNG from :func:`~affair.outputs.plot.png.encode_png`.

The look is fixed here, once, for every graph: white page, light frame and
grid, DejaVu Sans, the palette of :mod:`affair.outputs.plot.chart`, values on the
left axis scaled to one SI prefix with the unit above the axis.
"""

import json
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgb
from matplotlib.path import Path
from matplotlib.transforms import Affine2D, Bbox

from affair.outputs.plot.png import encode_png
from affair.outputs.plot.scale import (
    finite_range,
    prefix_power,
    prefixed_unit,
    tick_labels,
    value_axis,
)
from affair.outputs.plot.text import TextPainter, TextStyle
from affair.outputs.plot.timeaxis import time_ticks
from affair.units import BINARY_UNITS, prefix_base
from affair.vocab import CONSOLIDATION_STYLES

DPI = 72  # one point is one pixel: sizes below are pixels (at scale 1)
# The PNG text chunk that says where the plot area is and what times its edges are,
# so a page can turn a drag on the image into a time range (affair serve's zoom).
PLOT_AREA_KEY = "affair:plot"

TITLE = TextStyle(13, bold=True)
SUBTITLE = TextStyle(11)
TICK = TextStyle(10)
LEGEND = TextStyle(11)
HEADING = TextStyle(10)

INK = (0x22, 0x22, 0x22)
MUTED = (0x6B, 0x6B, 0x6B)
FAINT = (0x99, 0x99, 0x99)
PAGE = "#ffffff"
PLOT_FACE = "#fcfcfd"
FRAME = "#c9ccd1"
GRID = "#e9ebee"

MARGIN = 10
PLOT_LEFT = 62  # room for tick labels like "1000"
PLOT_RIGHT_PAD = 14
TITLE_HEIGHT = 30
HEADER_HEIGHT = 16  # the axis label above each plot
PLOT_HEIGHT = 170  # a graph of one panel
PANEL_PLOT_HEIGHT = 120  # each panel of a many-panel graph
SMALL_PLOT_HEIGHT = 50  # a panel of 0/1 flags or identifiers
TICKS_HEIGHT = 18
ROW = 16  # a legend line
PANEL_GAP = 10
KEY_HEIGHT = 18
STAT_COLUMN = 76  # width of a legend number column
COMPACT_COLUMN = 160  # width of an overlay legend column: four in 720 px
COMPACT_GAP = 6  # between the time labels and a compact legend
COMPACT_NAME = 68  # room for a host name in an overlay legend, left of its value
LINE_WIDTH = {"solid": 1.6, "dashed": 1.0, "dotted": 1.2}
LINE_ALPHA = {"solid": 1.0, "dashed": 0.8, "dotted": 0.8}  # the average stands out
DASHES = {"solid": (0, None), "dashed": (0, (5, 3)), "dotted": (0, (1.2, 2.6))}
STAT_NAMES = ("now", "min", "avg", "max")  # now: the newest value, not the last row


@dataclass(frozen=True)
class PanelShape:
    plot_height: int
    legend_rows: int
    legend_columns: int  # 0: a table with stat columns; n: a compact legend in n columns
    legend: tuple = ()  # (label, color, style) per entry: drawn once, in the background


@dataclass(frozen=True)
class Shape:
    """Everything of a graph that does not change with its data: drawn once per process."""

    width: int
    panels: tuple
    key: bool  # a row under the panels for the line-style key and footnotes
    styles: tuple = ()  # consolidations explained in the key
    band: bool = False
    latest: str = "now"  # heading of the legend's first column

    @property
    def height(self):
        height = MARGIN + TITLE_HEIGHT
        for panel in self.panels:
            height += HEADER_HEIGHT + panel.plot_height + TICKS_HEIGHT + _legend_height(panel)
        return height + (KEY_HEIGHT if self.key else 0) + MARGIN - PANEL_GAP // 2


def shape_of(chart, width):
    panels = []
    for panel in chart.panels:
        plot_height = PLOT_HEIGHT if len(chart.panels) == 1 else PANEL_PLOT_HEIGHT
        if panel.small and len(chart.panels) > 1:
            plot_height = SMALL_PLOT_HEIGHT
        legend = tuple((entry.label, entry.color, entry.style) for entry in panel.legend)
        if panel.compact_legend:
            columns = _compact_columns(width)
            rows = -(-len(panel.legend) // columns)
            panels.append(PanelShape(plot_height, rows, columns, legend))
        else:
            panels.append(PanelShape(plot_height, len(panel.legend), 0, legend))
    key = bool(chart.styles or chart.band or chart.footnote)
    return Shape(width, tuple(panels), key, tuple(chart.styles), chart.band, chart.latest)


def _compact_columns(width):
    return max(1, (width - PLOT_LEFT - PLOT_RIGHT_PAD) // COMPACT_COLUMN)


@dataclass(frozen=True)
class _PanelBox:
    """Where a panel's parts are, in pixels from the top left."""

    shape: PanelShape
    header: int  # baseline of the axis label
    top: int  # plot area
    bottom: int
    left: int
    right: int
    legend_top: int


class Renderer:
    """Draws charts to PNG bytes; keeps one canvas per shape (a few dozen at most).

    ``scale`` 2 draws the same layout at twice the pixels (HiDPI screens):
    everything below is laid out in scale-1 pixels, and each canvas maps
    them to its device pixels (:attr:`_Canvas.device`); Agg sizes lines,
    dashes and glyphs by its DPI, so they come out twice as big, and sharp.
    """

    def __init__(self, width=720, max_shapes=48, scale=1):
        self.width = width
        self.scale = scale
        painter = TextPainter(DPI * scale)
        self.text = painter if scale == 1 else _ScaledText(painter, scale)
        self._canvases = OrderedDict()
        self._max_shapes = max_shapes
        self._colors = {}
        self._ticks = {}

    def png(self, chart):
        """PNG bytes, with where the plot area is in a text chunk (:meth:`plot_area`)."""
        area = json.dumps(self.plot_area(chart), separators=(",", ":"))
        return encode_png(self.draw(chart), text=((PLOT_AREA_KEY, area),))

    def plot_area(self, chart):
        """The plot area's left and right edges in the PNG's pixels and their times.

        Every panel of a graph shares them; a page maps a pointer's x to a time
        with them (``start + (x - x0) / (x1 - x0) * (end - start)``).
        """
        return {
            "width": self.width * self.scale,
            "x0": PLOT_LEFT * self.scale,
            "x1": (self.width - PLOT_RIGHT_PAD) * self.scale,
            "start": chart.grid.start,
            "end": chart.grid.end,
        }

    def draw(self, chart):
        """Draw ``chart`` and return the canvas pixels, an (h, w, 4) uint8 array (a view)."""
        canvas = self._canvas(shape_of(chart, self.width))
        canvas.renderer.restore_region(canvas.background)
        self._draw_title(canvas, chart)
        for panel, box in zip(chart.panels, canvas.boxes, strict=True):
            self._draw_panel(canvas, chart, panel, box)
        if chart.footnote:
            self._draw_footnote(canvas, chart.footnote)
        return np.asarray(canvas.renderer.buffer_rgba())

    # --- shapes ---

    def _canvas(self, shape):
        canvas = self._canvases.get(shape)
        if canvas is None:
            canvas = self._canvases[shape] = self._make_canvas(shape)
            if len(self._canvases) > self._max_shapes:
                self._canvases.popitem(last=False)
        else:
            self._canvases.move_to_end(shape)
        return canvas

    def _make_canvas(self, shape):
        scale = self.scale
        renderer = RendererAgg(shape.width * scale, shape.height * scale, DPI * scale)
        # Layout pixels from the top left -> device pixels from the bottom left.
        device = Affine2D().scale(scale, -scale).translate(0, renderer.height)
        canvas = _Canvas(shape, renderer, self._layout(shape), None, device)
        gc = renderer.new_gc()
        self._fill(canvas, (0, 0, shape.width, shape.height), PAGE)
        for box in canvas.boxes:
            self._fill(canvas, (box.left, box.top, box.right, box.bottom), PLOT_FACE)
            self._stroke_rect(canvas, (box.left, box.top, box.right, box.bottom), FRAME)
            if box.shape.legend_columns:
                self._compact_legend_labels(canvas, gc, box)
            elif box.shape.legend_rows:
                self._table_legend_labels(canvas, gc, box)
        if shape.key:
            self._draw_key(canvas)
        whole = Bbox.from_bounds(0, 0, renderer.width, renderer.height)
        canvas.background = renderer.copy_from_bbox(whole)
        return canvas

    @staticmethod
    def _layout(shape):
        boxes = []
        y = MARGIN + TITLE_HEIGHT
        left, right = PLOT_LEFT, shape.width - PLOT_RIGHT_PAD
        for panel in shape.panels:
            top = y + HEADER_HEIGHT
            bottom = top + panel.plot_height
            legend_top = bottom + TICKS_HEIGHT
            if panel.legend_columns:
                legend_top += COMPACT_GAP
            boxes.append(_PanelBox(panel, top - 5, top, bottom, left, right, legend_top))
            y = bottom + TICKS_HEIGHT + _legend_height(panel)
        return boxes

    # --- parts ---

    def _draw_title(self, canvas, chart):
        renderer, gc = canvas.renderer, canvas.renderer.new_gc()
        baseline = MARGIN + 14
        right = canvas.shape.width - PLOT_RIGHT_PAD
        self.text.draw(renderer, gc, right, baseline, chart.subtitle, SUBTITLE, MUTED, "right")
        room = right - self.text.width(chart.subtitle, SUBTITLE) - 16 - MARGIN
        title = _fit(self.text, chart.title, TITLE, room)
        self.text.draw(renderer, gc, MARGIN, baseline, title, TITLE, INK)

    def _draw_panel(self, canvas, chart, panel, box):
        renderer = canvas.renderer
        gc = renderer.new_gc()
        grid = chart.grid
        low, high = finite_range(
            *(line.values for line in panel.lines),
            *(band.lower for band in panel.bands),
            *(band.upper for band in panel.bands),
        )
        if panel.unit in BINARY_UNITS:
            bottom, top, ticks, power = _binary_axis(low, high, panel, _max_ticks(box))
        else:
            bottom, top, ticks = value_axis(
                low, high, panel.floor, panel.ceiling, max_ticks=_max_ticks(box)
            )
            # Identifiers (a run number) are read, not measured: no "k", no decimals.
            power = 0 if panel.integer else prefix_power(max(abs(bottom), abs(top)), panel.unit)
        labels = tick_labels(ticks, float(prefix_base(panel.unit)) ** power)

        def to_y(values):
            return box.bottom - (values - bottom) * ((box.bottom - box.top) / (top - bottom))

        span = grid.end - grid.start

        def to_x(times):
            return box.left + (times - grid.start) * ((box.right - box.left) / span)

        # grid lines (a pixel short of the frame, which is in the background) and tick labels
        segments = []
        for tick, label in zip(ticks, labels, strict=True):
            y = float(to_y(tick))
            if box.top + 1 < y < box.bottom - 1:
                segments.append(((box.left + 1, y), (box.right - 1, y)))
            baseline = round(y + self.text.cap_height(TICK) / 2)
            self.text.draw(renderer, gc, box.left - 6, baseline, label, TICK, MUTED, "right")
        for x, at, label in self._time_labels(chart, box):
            if box.left + 1 < x < box.right - 1:
                segments.append(((x, box.top + 1), (x, box.bottom - 1)))
            if label:
                self.text.draw(renderer, gc, at, box.bottom + 13, label, TICK, MUTED, "center")
        self._stroke_segments(canvas, segments, GRID)

        # the axis label
        unit = prefixed_unit(power, panel.unit)
        header = f"{panel.label} ({unit})" if panel.label and unit else panel.label or unit
        self.text.draw(renderer, gc, box.left, box.header, header, TICK, MUTED)

        # data
        # A pixel of slack, so a line on the frame (a value at the axis' end) is drawn whole.
        clip = canvas.device.transform_bbox(
            Bbox.from_extents(box.left, box.bottom + 1, box.right, box.top - 1)
        )
        xs = to_x(grid.row_ends() - grid.step / 2)  # each row drawn at the middle of its interval
        for band in panel.bands:
            self._fill_band(canvas, clip, xs, to_y(band.lower), to_y(band.upper), band.color)
        for line in panel.lines:
            self._stroke_line(canvas, clip, xs, to_y(line.values), line.color, line.style)
        if panel.note:
            middle = (box.top + box.bottom) // 2 + 4
            center = (box.left + box.right) / 2
            self.text.draw(renderer, gc, center, middle, panel.note, LEGEND, FAINT, "center")

        # legend
        if box.shape.legend_columns:
            self._compact_legend(renderer, gc, panel, box)
        else:
            self._table_legend(renderer, gc, panel, box)

    def _table_legend_labels(self, canvas, gc, box):
        renderer = canvas.renderer
        names = (canvas.shape.latest, *STAT_NAMES[1:])
        for index, name in enumerate(reversed(names)):
            x = box.right - index * STAT_COLUMN
            self.text.draw(renderer, gc, x, box.legend_top + 11, name, HEADING, FAINT, "right")
        room = box.right - len(STAT_NAMES) * STAT_COLUMN - (box.left + 24) - 8
        for row, (label, color, style) in enumerate(box.shape.legend):
            baseline = box.legend_top + ROW * (row + 1) + 12
            self._stroke_sample(canvas, box.left, baseline - 4, 18, color, style)
            label = _fit(self.text, label, LEGEND, room)
            self.text.draw(renderer, gc, box.left + 24, baseline, label, LEGEND, INK)

    def _table_legend(self, renderer, gc, panel, box):
        for row, entry in enumerate(panel.legend):
            baseline = box.legend_top + ROW * (row + 1) + 12
            ink = FAINT if entry.stale else INK  # a silent host's values are old news
            for index, value in enumerate(reversed(entry.values)):
                x = box.right - index * STAT_COLUMN
                self.text.draw(renderer, gc, x, baseline, value, LEGEND, ink, "right")

    def _compact_cells(self, box, count):
        """``(x, baseline)`` of each compact legend entry, filling down the columns."""
        rows = box.shape.legend_rows
        for index in range(count):
            column, row = divmod(index, rows)
            yield box.left + column * COMPACT_COLUMN, box.legend_top + ROW * row + 12

    def _compact_legend_labels(self, canvas, gc, box):
        renderer = canvas.renderer
        # The values of a compact legend need their column's name too.
        self.text.draw(renderer, gc, box.right, box.header, "values: now", HEADING, FAINT, "right")
        cells = self._compact_cells(box, len(box.shape.legend))
        for (x, baseline), (label, color, style) in zip(cells, box.shape.legend, strict=True):
            self._stroke_sample(canvas, x, baseline - 4, 14, color, style)
            label = _fit(self.text, label, LEGEND, COMPACT_NAME)
            self.text.draw(renderer, gc, x + 19, baseline, label, LEGEND, INK)

    def _compact_legend(self, renderer, gc, panel, box):
        cells = self._compact_cells(box, len(panel.legend))
        for (x, baseline), entry in zip(cells, panel.legend, strict=True):
            value = entry.values[0] if entry.values else ""
            right = x + COMPACT_COLUMN - 10
            ink = FAINT if entry.stale else INK  # a silent host's value is old news
            self.text.draw(renderer, gc, right, baseline, value, LEGEND, ink, "right")

    def _key_baseline(self, shape):
        return shape.height - MARGIN - 4

    def _draw_key(self, canvas):
        renderer, gc = canvas.renderer, canvas.renderer.new_gc()
        shape = canvas.shape
        baseline = self._key_baseline(shape)
        x = PLOT_LEFT
        words = {"AVERAGE": "average", "MAX": "max", "MIN": "min"}
        for cf in shape.styles:
            self._stroke_sample(canvas, x, baseline - 4, 20, "#555555", CONSOLIDATION_STYLES[cf])
            self.text.draw(renderer, gc, x + 25, baseline, words[cf], TICK, MUTED)
            x += 30 + self.text.width(words[cf], TICK) + 14
        if shape.band:
            self._fill(canvas, (x, baseline - 9, x + 20, baseline + 1), "#555555", 0.18)
            self.text.draw(renderer, gc, x + 25, baseline, "min to max", TICK, MUTED)
            x += 30 + self.text.width("min to max", TICK) + 14
        canvas.key_end = x

    def _draw_footnote(self, canvas, footnote):
        renderer, gc = canvas.renderer, canvas.renderer.new_gc()
        right = canvas.shape.width - PLOT_RIGHT_PAD
        text = _fit(self.text, footnote, TICK, right - canvas.key_end)
        baseline = self._key_baseline(canvas.shape)
        self.text.draw(renderer, gc, right, baseline, text, TICK, (0xB0, 0x30, 0x30), "right")

    def _time_labels(self, chart, box):
        """``[(x, label x, label or "")]`` of a window's ticks; the same for a pass's graphs."""
        grid = chart.grid
        rule = chart.ticks or chart.window
        key = (grid.start, grid.end, rule, box.left, box.right)
        cached = self._ticks.get(key)
        if cached is not None:
            return cached
        span = grid.end - grid.start
        placed, last_label_end = [], -math.inf
        for stamp, label in time_ticks(grid.start, grid.end, rule):
            x = box.left + (stamp - grid.start) * (box.right - box.left) / span
            half = self.text.width(label, TICK) / 2
            at = min(max(x, box.left + half), self.width - MARGIN - half)
            if at - half < last_label_end + 6:
                placed.append((x, at, ""))  # a grid line, but never two labels touching
                continue
            placed.append((x, at, label))
            last_label_end = at + half
        if len(self._ticks) > 64:
            self._ticks.clear()
        self._ticks[key] = placed
        return placed

    # --- primitives (coordinates in layout pixels from the top left) ---

    def _rgb(self, color):
        rgb = self._colors.get(color)
        if rgb is None:
            rgb = self._colors[color] = to_rgb(color)
        return rgb

    def _fill(self, canvas, rect, color, alpha=1.0):
        x0, y0, x1, y1 = rect
        path = Path(
            [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)],
            [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY],
        )
        gc = canvas.renderer.new_gc()
        gc.set_linewidth(0)
        canvas.renderer.draw_path(gc, path, canvas.device, (*self._rgb(color), alpha))

    def _stroke_rect(self, canvas, rect, color):
        x0, y0, x1, y1 = rect
        self._stroke_segments(
            canvas,
            [
                ((x0, y0), (x1, y0)),
                ((x1, y0), (x1, y1)),
                ((x1, y1), (x0, y1)),
                ((x0, y1), (x0, y0)),
            ],
            color,
        )

    def _stroke_segments(self, canvas, segments, color):
        if not segments:
            return
        vertices = np.array(segments, dtype=float).reshape(-1, 2)
        codes = np.tile([Path.MOVETO, Path.LINETO], len(segments))
        gc = canvas.renderer.new_gc()
        gc.set_linewidth(1.0)
        gc.set_foreground(self._rgb(color))
        gc.set_snap(True)
        gc.set_antialiased(False)
        canvas.renderer.draw_path(gc, Path(vertices, codes), canvas.device)

    def _stroke_line(self, canvas, clip, xs, ys, color, style):
        known = np.isfinite(ys)
        if not known.any():
            return
        renderer = canvas.renderer
        gc = self._line_gc(renderer, color, style)
        gc.set_clip_rectangle(clip)
        renderer.draw_path(gc, Path(np.column_stack((xs, ys))), canvas.device)
        # A value alone between gaps has no neighbour to join: give it its row's width.
        padded = np.concatenate(([False], known, [False]))
        alone = known & ~padded[:-2] & ~padded[2:]
        if alone.any():
            half = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 1.0
            half = max(half, 1.0)
            segments = [
                ((xs[i] - half, ys[i]), (xs[i] + half, ys[i])) for i in np.flatnonzero(alone)
            ]
            vertices = np.array(segments, dtype=float).reshape(-1, 2)
            codes = np.tile([Path.MOVETO, Path.LINETO], len(segments))
            renderer.draw_path(gc, Path(vertices, codes), canvas.device)

    def _fill_band(self, canvas, clip, xs, lower, upper, color):
        known = np.isfinite(lower) & np.isfinite(upper)
        if not known.any():
            return
        vertices, codes = [], []
        for start, stop in _runs(known):
            x = xs[start:stop]
            top = np.column_stack((x, upper[start:stop]))
            under = np.column_stack((x[::-1], lower[start:stop][::-1]))
            if stop - start == 1:  # a single row: give it its width
                half = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 1.0
                top = np.array([[x[0] - half, top[0, 1]], [x[0] + half, top[0, 1]]])
                under = np.array([[x[0] + half, under[0, 1]], [x[0] - half, under[0, 1]]])
            ring = np.vstack((top, under, top[:1]))
            vertices.append(ring)
            codes.append([Path.MOVETO] + [Path.LINETO] * (len(ring) - 2) + [Path.CLOSEPOLY])
        gc = canvas.renderer.new_gc()
        gc.set_linewidth(0)
        gc.set_clip_rectangle(clip)
        path = Path(np.vstack(vertices), np.concatenate(codes))
        canvas.renderer.draw_path(gc, path, canvas.device, (*self._rgb(color), 0.16))

    def _stroke_sample(self, canvas, x, y, length, color, style):
        gc = self._line_gc(canvas.renderer, color, style)
        path = Path([(x, y), (x + length, y)])
        canvas.renderer.draw_path(gc, path, canvas.device)

    def _line_gc(self, renderer, color, style):
        gc = renderer.new_gc()
        gc.set_foreground((*self._rgb(color), LINE_ALPHA[style]), isRGBA=True)
        gc.set_linewidth(LINE_WIDTH[style])
        gc.set_dashes(*DASHES[style])
        # Round joins on every dot of a dotted line are dear for Agg (RESULTS.md); dashes need none.
        gc.set_joinstyle("round" if style == "solid" else "miter")
        gc.set_capstyle("round" if style == "solid" else "butt")
        gc.set_antialiased(True)
        return gc


class _ScaledText:
    """A TextPainter at ``scale`` times the DPI, measured and placed in layout pixels."""

    def __init__(self, painter, scale):
        self.painter = painter
        self.scale = scale

    def width(self, text, style):
        return self.painter.width(text, style) / self.scale

    def cap_height(self, style):
        return self.painter.cap_height(style) / self.scale

    def draw(self, renderer, gc, x, baseline, text, style, color, align="left"):
        at = round(baseline * self.scale)
        self.painter.draw(renderer, gc, x * self.scale, at, text, style, color, align)


@dataclass
class _Canvas:
    shape: Shape
    renderer: RendererAgg
    boxes: list
    background: object
    device: Affine2D  # layout pixels -> this canvas's device pixels
    key_end: float = PLOT_LEFT  # where the static key row ends: room for a footnote


def _binary_axis(low, high, panel, max_ticks):
    """:func:`value_axis` in the prefix's own units (GiB), so ticks fall on 1, 2, 4 GiB."""
    base = prefix_base(panel.unit)
    power = prefix_power(max(abs(low or 0.0), abs(high or 0.0)), panel.unit)
    scale = float(base) ** power

    def scaled(value):
        return None if value is None else value / scale

    bottom, top, ticks = value_axis(
        scaled(low),
        scaled(high),
        scaled(panel.floor),
        scaled(panel.ceiling),
        max_ticks=max_ticks,
    )
    return bottom * scale, top * scale, [tick * scale for tick in ticks], power


def _legend_height(panel):
    """The legend and the gap after it: a table has a heading row, a compact legend a gap."""
    if panel.legend_columns:
        return COMPACT_GAP + panel.legend_rows * ROW + PANEL_GAP
    return (panel.legend_rows + 1) * ROW + PANEL_GAP


def _max_ticks(box):
    return max(2, (box.bottom - box.top) // 32)


def _runs(mask):
    """``[(start, stop), ...]`` of the runs of True in a boolean array."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2], edges[1::2], strict=True))


def _fit(painter, text, style, room):
    """``text``, cut with an ellipsis to fit ``room`` pixels."""
    if painter.width(text, style) <= room:
        return text
    while text and painter.width(text + "…", style) > room:
        text = text[:-1]
    return text + "…"
