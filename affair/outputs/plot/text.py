"""Text for graphs, fast: each glyph is rendered once by matplotlib, then reused.

matplotlib lays out and rasterises every label afresh (its text shaping runs
per call), while a graph has 30 to 100 labels: text alone would cost more
than rrdtool's whole graph (see benchmarks/RESULTS.md). Our
labels use a few dozen characters, so each (character, style) is drawn
once through matplotlib's own Agg text path (DejaVu Sans, hinted as usual)
onto a scratch canvas, its coverage kept as an alpha mask, and strings are
composed from those masks at hinted advances into one small RGBA image per
(string, style, colour), which Agg blends onto the graph in one cheap call
(``draw_image``). Composed strings are kept (tick labels repeat).

What is lost: kerning pairs (DejaVu's digits, which most labels are, have
none) and sub-pixel glyph placement; glyphs sit on whole pixels, as in
classic hinted text rendering.
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag

FAMILY = "DejaVu Sans"  # matplotlib's bundled default: no system fonts needed
_SCRATCH = 96  # pixels; room for any glyph at the sizes graphs use
_ORIGIN = (24, 64)  # where glyphs are drawn on the scratch canvas (x, baseline row)


@dataclass(frozen=True)
class TextStyle:
    size: float  # points
    bold: bool = False


@dataclass(frozen=True)
class _Glyph:
    mask: np.ndarray  # uint8 coverage
    left: int  # mask's left edge relative to the pen position
    top: int  # mask's top row relative to the baseline (negative: above it)
    advance: float  # pixels to the next pen position


@dataclass(frozen=True)
class _Run:
    """A composed string: one image, placed relative to its pen start and baseline."""

    image: np.ndarray  # RGBA uint8, bottom row first: the colour, the glyphs' coverage as alpha
    left: int
    top: int
    width: float  # advance width, what alignment uses


class TextPainter:
    """Draws strings onto a matplotlib RendererAgg, positions in rows from the top."""

    def __init__(self, dpi=100, cache_strings=4096):
        self.dpi = dpi
        self._scratch = RendererAgg(_SCRATCH, _SCRATCH, dpi)
        self._glyphs = {}
        self._runs = OrderedDict()
        self._cache_strings = cache_strings
        self._fonts = {}
        self._metrics = {}

    # --- measuring ---

    def width(self, text, style):
        return self._run(text, style, (0, 0, 0)).width

    def cap_height(self, style):
        """Pixels from the baseline to the top of a capital letter."""
        if style not in self._metrics:
            self._metrics[style] = -self._glyph("H", style).top
        return self._metrics[style]

    # --- drawing ---

    def draw(self, renderer, gc, x, baseline, text, style, color, align="left"):
        """Blend ``text`` in ``color`` (r, g, b bytes) with its pen start or end at ``x``.

        ``align`` is "left", "right" or "center"; ``baseline`` is a pixel row
        counted from the top. ``gc`` is any graphics context of ``renderer``
        (its clip rectangle applies).
        """
        if not text:
            return
        run = self._run(text, style, color)
        if not run.image.size:
            return
        if align == "right":
            x -= run.width
        elif align == "center":
            x -= run.width / 2
        top = baseline + run.top
        # draw_image takes the image's lower-left corner, y counted from the bottom.
        renderer.draw_image(
            gc, round(x) + run.left, renderer.height - top - run.image.shape[0], run.image
        )

    # --- caches ---

    def _run(self, text, style, color):
        key = (text, style, color)
        run = self._runs.get(key)
        if run is not None:
            self._runs.move_to_end(key)
            return run
        run = self._compose(text, style, color)
        self._runs[key] = run
        if len(self._runs) > self._cache_strings:
            self._runs.popitem(last=False)
        return run

    def _compose(self, text, style, color):
        glyphs = [self._glyph(char, style) for char in text]
        pens, pen = [], 0.0
        for glyph in glyphs:
            pens.append(round(pen))
            pen += glyph.advance
        inked = [(g, p) for g, p in zip(glyphs, pens, strict=True) if g.mask.size]
        if not inked:
            return _Run(np.zeros((0, 0, 4), np.uint8), 0, 0, pen)
        left = min(p + g.left for g, p in inked)
        right = max(p + g.left + g.mask.shape[1] for g, p in inked)
        top = min(g.top for g, _ in inked)
        bottom = max(g.top + g.mask.shape[0] for g, _ in inked)
        mask = np.zeros((bottom - top, right - left), np.uint8)
        for glyph, pen_x in inked:
            x0 = pen_x + glyph.left - left
            y0 = glyph.top - top
            height, width = glyph.mask.shape
            target = mask[y0 : y0 + height, x0 : x0 + width]
            np.maximum(target, glyph.mask, out=target)
        image = np.empty(mask.shape + (4,), np.uint8)
        image[..., :3] = color
        image[..., 3] = mask[::-1]  # draw_image wants the bottom row first
        return _Run(image, left, top, pen)

    def _glyph(self, char, style):
        key = (char, style)
        glyph = self._glyphs.get(key)
        if glyph is None:
            glyph = self._glyphs[key] = self._render_glyph(char, style)
        return glyph

    def _render_glyph(self, char, style):
        properties, font = self._font(style)
        font.set_size(style.size, self.dpi)
        advance = font.load_char(ord(char), flags=get_hinting_flag()).linearHoriAdvance / 65536
        if char.isspace():
            return _Glyph(np.zeros((0, 0), np.uint8), 0, 0, advance)
        scratch = self._scratch
        scratch.clear()
        gc = scratch.new_gc()
        gc.set_foreground((1.0, 1.0, 1.0))
        x, baseline = _ORIGIN
        # The renderer's text y is a row counted from the top: the baseline lands on it.
        scratch.draw_text(gc, x, baseline, char, properties, 0)
        gc.restore()
        coverage = np.asarray(scratch.buffer_rgba())[:, :, 3]
        rows = np.flatnonzero(coverage.any(axis=1))
        columns = np.flatnonzero(coverage.any(axis=0))
        if not len(rows):
            return _Glyph(np.zeros((0, 0), np.uint8), 0, 0, advance)
        mask = coverage[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1].copy()
        return _Glyph(mask, int(columns[0] - x), int(rows[0] - baseline), advance)

    def _font(self, style):
        weight = "bold" if style.bold else "normal"
        if weight not in self._fonts:
            properties = font_manager.FontProperties(family=FAMILY, weight=weight)
            path = font_manager.findfont(properties, fallback_to_default=True)
            self._fonts[weight] = (properties, path)
        properties, path = self._fonts[weight]
        sized = properties.copy()
        sized.set_size(style.size)
        return sized, font_manager.get_font(path)
