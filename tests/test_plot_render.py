"""Pixels: gaps stay gaps, 50-host overlays stay readable, text and PNGs are right."""

import io
import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgb
from PIL import Image

from affair.outputs.plot.chart import HOST_PALETTE, Band, Chart, LegendEntry, Line, Panel
from affair.outputs.plot.data import Grid
from affair.outputs.plot.png import encode_png, read_text
from affair.outputs.plot.render import (
    COMPACT_COLUMN,
    PLOT_AREA_KEY,
    PLOT_LEFT,
    Renderer,
    shape_of,
)
from affair.outputs.plot.text import TextPainter, TextStyle

END = 1_700_006_400


def chart_of(panels, window="1h", step=10, count=360, **extra):
    return Chart("host · system", "last hour", window, Grid(step, END, count), panels, **extra)


def decode(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def colour_mask(pixels, color, tolerance=120):
    """Pixels mostly of ``color`` (a thin antialiased line is never fully opaque)."""
    target = np.array([round(c * 255) for c in to_rgb(color)])
    return (np.abs(pixels.astype(int) - target).sum(axis=2)) < tolerance


def test_png_round_trips_exactly():
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgba))))
    np.testing.assert_array_equal(decoded, rgba)


def test_a_gap_in_the_data_is_a_gap_in_the_picture():
    values = np.full(360, 50.0)
    values[100:200] = np.nan  # unknown, not zero
    panel = Panel(
        unit="%",
        lines=[Line(values, "#e15759")],
        legend=[LegendEntry("cpu", "#e15759", values=("50 %",) * 4)],
        floor=0.0,
    )
    renderer = Renderer(width=720)
    pixels = decode(renderer.png(chart_of([panel])))
    red = colour_mask(pixels, "#e15759")
    columns = np.flatnonzero(red.any(axis=0))
    plot_width = 720 - PLOT_LEFT - 14
    gap_from = PLOT_LEFT + plot_width * 101 / 360
    gap_to = PLOT_LEFT + plot_width * 199 / 360
    inside_gap = columns[(columns > gap_from) & (columns < gap_to)]
    assert len(inside_gap) == 0, f"line drawn across the gap at columns {inside_gap}"
    assert (columns < gap_from).sum() > 100 and (columns > gap_to).sum() > 100
    # and nothing red lies at zero: the gap was not drawn as a drop to the axis
    plot_rows = red[50:232, PLOT_LEFT + 5 : 700]  # the plot area, above the legend's swatch
    rows = np.flatnonzero(plot_rows.any(axis=1))
    assert len(rows) and rows.max() - rows.min() <= 3  # one horizontal line


def test_a_single_known_value_between_gaps_is_still_visible():
    values = np.full(360, np.nan)
    values[180] = 40.0
    panel = Panel(unit="%", lines=[Line(values, "#59a14f")], floor=0.0)
    pixels = decode(Renderer().png(chart_of([panel])))
    assert colour_mask(pixels, "#59a14f").sum() >= 2


def overlay_chart(hosts):
    rng = np.random.default_rng(3)
    panel = Panel(unit="%", label="CPU user", compact_legend=True, floor=0.0)
    for index in range(hosts):
        color = HOST_PALETTE[index % len(HOST_PALETTE)]
        style = ("solid", "dashed", "dotted")[index // len(HOST_PALETTE) % 3]
        panel.lines.append(Line(rng.uniform(10, 90, 360), color, style))
        panel.legend.append(LegendEntry(f"gdc{index + 1:02d}", color, style, ("45.2 %",)))
    return chart_of([panel])


def test_an_overlay_of_50_hosts_renders_with_every_host_in_a_readable_legend():
    chart = overlay_chart(50)
    shape = shape_of(chart, 720)
    (panel_shape,) = shape.panels
    assert panel_shape.legend_columns == 4 and panel_shape.legend_rows == 13
    pixels = decode(Renderer(width=720).png(chart))
    assert pixels.shape == (shape.height, 720, 3)
    # every legend cell holds its own text, none pushed off the image
    legend_top = shape.height - 10 - 18 * shape.key - 13 * 16 - 10 + 5
    for index in range(50):
        column, row = divmod(index, 13)
        x0 = PLOT_LEFT + column * COMPACT_COLUMN + 19
        y0 = legend_top + row * 16
        cell = pixels[y0 : y0 + 14, x0 : x0 + COMPACT_COLUMN - 25]
        assert (cell.sum(axis=2) < 300).sum() > 20, f"legend entry {index} is empty"
    # the lines themselves are drawn in many colours
    drawn = [colour_mask(pixels[40:220], color).sum() > 50 for color in HOST_PALETTE]
    assert sum(drawn) >= 15


def test_redrawing_on_a_reused_canvas_leaves_nothing_behind():
    renderer = Renderer()
    first = overlay_chart(50)
    second = overlay_chart(50)
    for line in second.panels[0].lines:
        line.values = line.values * 0.3
    a = renderer.png(first)
    renderer.png(second)
    assert renderer.png(first) == a  # same canvas, restored background: byte-identical
    assert Renderer().png(first) == a  # and the same as a fresh renderer's


def test_multi_panel_graph_and_band_and_key_render():
    values = np.linspace(0, 1e8, 360)
    bytes_panel = Panel(
        unit="B/s",
        lines=[Line(values * 0.9, "#4e79a7", "dotted"), Line(values, "#4e79a7")],
        bands=[Band(values * 0.9, values * 1.1, "#4e79a7")],
        legend=[LegendEntry("net", "#4e79a7", values=("1 MB/s",) * 4)],
    )
    empty_panel = Panel(unit="%", note="no data in this window")
    chart = chart_of([bytes_panel, empty_panel], styles=("AVERAGE", "MIN"), band=True)
    shape = shape_of(chart, 720)
    pixels = decode(Renderer().png(chart))
    assert pixels.shape[0] == shape.height and len(shape.panels) == 2
    band = colour_mask(pixels, "#dde4ed", tolerance=30)  # the band's light blue over white
    assert band.sum() > 500


def test_text_painter_draws_like_matplotlib():
    text = "ldc01 · 345 MB/s"
    reference = RendererAgg(200, 30, 72)
    from matplotlib.font_manager import FontProperties

    gc = reference.new_gc()
    gc.set_foreground((0, 0, 0))
    reference.draw_text(gc, 5, 20, text, FontProperties(family="DejaVu Sans", size=11), 0)
    ours = RendererAgg(200, 30, 72)
    TextPainter(72).draw(ours, ours.new_gc(), 5, 20, text, TextStyle(11), (0, 0, 0))
    a = np.asarray(reference.buffer_rgba())[:, :, 3].astype(int)
    b = np.asarray(ours.buffer_rgba())[:, :, 3].astype(int)
    assert a.sum() > 0 and abs(a.sum() - b.sum()) / a.sum() < 0.05  # the same ink
    rows_a, rows_b = np.flatnonzero(a.any(axis=1)), np.flatnonzero(b.any(axis=1))
    assert (rows_a.min(), rows_a.max()) == (rows_b.min(), rows_b.max())  # on the same baseline
    cols_a, cols_b = np.flatnonzero(a.any(axis=0)), np.flatnonzero(b.any(axis=0))
    assert abs(cols_a.max() - cols_b.max()) <= 2  # and as wide, within a pixel or two


def test_text_alignment():
    painter = TextPainter(72)
    width = painter.width("12:30", TextStyle(10))
    assert 20 < width < 35
    renderer = RendererAgg(100, 20, 72)
    painter.draw(renderer, renderer.new_gc(), 90, 15, "12:30", TextStyle(10), (0, 0, 0), "right")
    columns = np.flatnonzero(np.asarray(renderer.buffer_rgba())[:, :, 3].any(axis=0))
    assert 87 <= columns.max() <= 90 and columns.min() >= 90 - width - 1


@pytest.mark.parametrize("width", [480, 1000])
def test_other_widths(width):
    pixels = decode(Renderer(width=width).png(overlay_chart(5)))
    assert pixels.shape[1] == width


def test_a_2x_graph_is_the_same_layout_at_twice_the_pixels_and_says_where_its_plot_is():
    values = np.full(360, 50.0)
    values[180:] = 75.0
    panel = Panel(
        unit="%",
        lines=[Line(values, "#e15759")],
        legend=[LegendEntry("cpu", "#e15759", values=("75 %", "50 %", "62 %", "75 %"))],
        floor=0.0,
        ceiling=100.0,
    )
    chart = chart_of([panel], latest="last")
    one, two = Renderer(width=720).png(chart), Renderer(width=720, scale=2).png(chart)
    small, big = decode(one), decode(two)
    assert big.shape == (2 * small.shape[0], 2 * small.shape[1], 3)
    start = END - 3600
    assert json.loads(read_text(one)[PLOT_AREA_KEY]) == {
        "width": 720,
        "x0": PLOT_LEFT,
        "x1": 706,
        "start": start,
        "end": END,
    }
    assert json.loads(read_text(two)[PLOT_AREA_KEY]) == {
        "width": 1440,
        "x0": 2 * PLOT_LEFT,
        "x1": 1412,
        "start": start,
        "end": END,
    }
    # the red line's step from 50 % to 75 % is at the same place, in each one's own pixels
    heights = []
    for pixels, scale in ((small, 1), (big, 2)):
        red = colour_mask(pixels, "#e15759")
        early = np.flatnonzero(red[:, (PLOT_LEFT + 100) * scale]).mean() / scale
        late = np.flatnonzero(red[:, (706 - 100) * scale]).mean() / scale
        heights.append((early, late))
    (early_1x, late_1x), (early_2x, late_2x) = heights
    assert late_1x < early_1x - 20  # 75 % is higher up than 50 %
    assert abs(early_2x - early_1x) < 1.5 and abs(late_2x - late_1x) < 1.5

    # its text is twice as tall: the title's ink in the top band
    def ink_rows(pixels):
        dark = (pixels[: pixels.shape[0] // 8].sum(axis=2) < 200).any(axis=1)
        return np.flatnonzero(dark)

    small_ink, big_ink = ink_rows(small), ink_rows(big)
    assert abs((big_ink[-1] - big_ink[0]) - 2 * (small_ink[-1] - small_ink[0])) <= 3
