"""Animated GIF of a kernel window sliding over the padded input (``explain --gif``).

An I/O-side module (it draws with Pillow); it renders an
:class:`convcli.explain.Explanation` and never computes a convolution itself.

Each frame shows, left, the grid the window slides over (the padded input;
for transposed convolution the zero-inserted, padded input) and, right, the
output grid filling in::

    ┌──────────────────────────────────────────────┐
    │ title: "out[i, j] = value"     (TITLE_HEIGHT)│
    │ margin                                       │
    │  padded grid (Hp × Wp cells)  1 cell  output (H' × W' cells)
    │ margin                                       │
    └──────────────────────────────────────────────┘

* width  = ``2·margin + (Wp + 1 + W')·cell``,
  height = ``TITLE_HEIGHT + 2·margin + max(Hp, H')·cell``, with
  ``margin = max(4, cell // 2)`` (:func:`frame_size`).
* ``cell`` defaults to ``clamp(480 // (Wp + 1 + W'), 6, 40)``, also limited
  so that the taller panel fits in 480 px (:func:`default_cell`).
* Input pixels are grey (min-max over the grid); padding cells are tinted
  blue and zeros inserted between pixels (transposed) purple. The window's
  taps are outlined red — they are ``d`` cells apart, so dilation shows as
  gaps — and a yellow frame spans the whole window; the window moves by the
  stride. Output cells already computed are grey (min-max over the output),
  the current one outlined red. Values are printed when ``cell >= 22``.
* One frame per output cell, row by row, when ``H'·W' <= max_frames``
  (default :data:`MAX_FRAMES` = 400); otherwise ``max_frames`` cells are
  sampled evenly, always including the first and the last
  (:func:`frame_cells`), and each frame fills in every cell up to its own.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from convcli.errors import OptionError
from convcli.explain import INSERTED_CELL, PADDING_CELL, Explanation

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["MAX_FRAMES", "TITLE_HEIGHT", "default_cell", "encode_gif", "frame_cells",
           "frame_size", "render_frames"]

MAX_FRAMES = 400
TITLE_HEIGHT = 20
MAX_PANEL = 480
BACKGROUND = (250, 250, 250)
GRID_LINE = (90, 90, 90)
PADDING_TINT = (60, 110, 215)
INSERTED_TINT = (165, 80, 190)
EMPTY_OUTPUT = (215, 215, 215)
TAP_COLOR = (225, 30, 30)
SPAN_COLOR = (240, 190, 0)
TEXT_COLOR = (20, 20, 20)


def frame_cells(n_cells: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """Flat output indices shown, one per frame.

    All of ``0 .. n_cells − 1`` when ``n_cells <= max_frames``; otherwise
    ``round(k·(n_cells − 1) / (max_frames − 1))`` for ``k = 0 .. max_frames − 1``
    (strictly increasing, first and last included).
    """
    if max_frames < 1:
        raise OptionError(f"`max_frames` must be a positive integer, got {max_frames}")
    if n_cells <= max_frames:
        return list(range(n_cells))
    if max_frames == 1:
        return [n_cells - 1]
    span, steps = n_cells - 1, max_frames - 1
    return [(k * span + steps // 2) // steps for k in range(max_frames)]


def default_cell(explanation: Explanation) -> int:
    """Cell size in pixels: ``clamp(480 // (Wp + 1 + W'), 6, 40)``, height-limited too."""
    grid_rows, grid_cols = explanation.padded.shape
    out_rows, out_cols = explanation.output.shape
    fit = min(MAX_PANEL // (grid_cols + 1 + out_cols), MAX_PANEL // max(grid_rows, out_rows))
    return max(6, min(40, fit))


def _margin(cell: int) -> int:
    return max(4, cell // 2)


def frame_size(explanation: Explanation, cell: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of every frame (see the module notes)."""
    cell = cell or default_cell(explanation)
    grid_rows, grid_cols = explanation.padded.shape
    out_rows, out_cols = explanation.output.shape
    margin = _margin(cell)
    width = 2 * margin + (grid_cols + 1 + out_cols) * cell
    height = TITLE_HEIGHT + 2 * margin + max(grid_rows, out_rows) * cell
    return width, height


def _grays(values: np.ndarray) -> np.ndarray:
    """Min-max ``values`` to grey levels 40–235 (a constant grid is mid-grey)."""
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.full(values.shape, 140, dtype=np.int64)
    return np.rint(40 + (values - low) * (195 / (high - low))).astype(np.int64)


def _blend(gray: int, tint: tuple[int, int, int], weight: float = 0.55) -> tuple[int, int, int]:
    return tuple(round((1 - weight) * gray + weight * t) for t in tint)  # type: ignore[return-value]


def _value_text(value: float) -> str:
    text = f"{value:.3g}"
    return text.replace("e+0", "e").replace("e-0", "e-")


class _Canvas:
    """Pixel positions of the two panels and drawing of their cells."""

    def __init__(self, explanation: Explanation, cell: int) -> None:
        from PIL import ImageFont

        self.explanation = explanation
        self.cell = cell
        self.margin = _margin(cell)
        self.grid_origin = (TITLE_HEIGHT + self.margin, self.margin)
        grid_cols = explanation.padded.shape[1]
        self.output_origin = (TITLE_HEIGHT + self.margin, self.margin + (grid_cols + 1) * cell)
        self.show_values = cell >= 22
        self.value_font = ImageFont.load_default(size=max(8, cell // 3))
        self.title_font = ImageFont.load_default(size=12)

    def box(self, origin: tuple[int, int], row: int, col: int) -> tuple[int, int, int, int]:
        top, left = origin[0] + row * self.cell, origin[1] + col * self.cell
        return (left, top, left + self.cell - 1, top + self.cell - 1)

    def fill(self, draw: object, origin: tuple[int, int], row: int, col: int,
             color: tuple[int, int, int], value: float | None) -> None:
        box = self.box(origin, row, col)
        draw.rectangle(box, fill=color, outline=GRID_LINE)  # type: ignore[attr-defined]
        if value is not None and self.show_values:
            light = sum(color) / 3 > 120
            draw.text(  # type: ignore[attr-defined]
                ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), _value_text(value),
                fill=TEXT_COLOR if light else (245, 245, 245), font=self.value_font, anchor="mm",
            )

    def base(self) -> PILImage.Image:
        """The padded-input panel and an empty output panel."""
        from PIL import Image, ImageDraw

        explanation = self.explanation
        width, height = frame_size(explanation, self.cell)
        picture = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(picture)
        grays = _grays(explanation.padded)
        for (row, col), value in np.ndenumerate(explanation.padded):
            kind = explanation.cell_kind[row, col]
            gray = int(grays[row, col])
            if kind == PADDING_CELL:
                color = _blend(gray, PADDING_TINT)
            elif kind == INSERTED_CELL:
                color = _blend(gray, INSERTED_TINT)
            else:
                color = (gray, gray, gray)
            self.fill(draw, self.grid_origin, row, col, color, float(value))
        for row, col in np.ndindex(*explanation.output.shape):
            self.fill(draw, self.output_origin, row, col, EMPTY_OUTPUT, None)
        return picture

    def outline_window(self, draw: object, at: tuple[int, int]) -> None:
        rows, cols = self.explanation.window_at(*at)
        width = 2 if self.cell >= 10 else 1
        first, last = self.box(self.grid_origin, rows[0], cols[0]), self.box(
            self.grid_origin, rows[-1], cols[-1]
        )
        draw.rectangle((first[0] - 1, first[1] - 1, last[2] + 1, last[3] + 1),  # type: ignore[attr-defined]
                       outline=SPAN_COLOR, width=1)
        for row in rows:
            for col in cols:
                draw.rectangle(self.box(self.grid_origin, row, col),  # type: ignore[attr-defined]
                               outline=TAP_COLOR, width=width)
        draw.rectangle(self.box(self.output_origin, *at), outline=TAP_COLOR,  # type: ignore[attr-defined]
                       width=width)


def render_frames(
    explanation: Explanation, *, max_frames: int = MAX_FRAMES, cell: int | None = None
) -> list[PILImage.Image]:
    """One RGB frame per shown output cell (:func:`frame_cells`), all of :func:`frame_size`."""
    from PIL import ImageDraw

    cell = cell or default_cell(explanation)
    if cell < 1:
        raise OptionError(f"`cell` must be a positive number of pixels, got {cell}")
    canvas = _Canvas(explanation, cell)
    output = explanation.output
    out_cols = output.shape[1]
    grays = _grays(output)
    running = canvas.base()
    running_draw = ImageDraw.Draw(running)
    frames = []
    filled = 0
    for index in frame_cells(output.size, max_frames):
        for flat in range(filled, index + 1):
            row, col = divmod(flat, out_cols)
            gray = int(grays[row, col])
            canvas.fill(running_draw, canvas.output_origin, row, col, (gray, gray, gray),
                        float(output[row, col]))
        filled = index + 1
        frame = running.copy()
        draw = ImageDraw.Draw(frame)
        at = divmod(index, out_cols)
        canvas.outline_window(draw, at)
        title = f"out[{at[0]}, {at[1]}] = {_value_text(float(output[at]))}"
        draw.text((canvas.margin, 4), title, fill=TEXT_COLOR, font=canvas.title_font)
        frames.append(frame)
    return frames


def encode_gif(
    explanation: Explanation,
    *,
    max_frames: int = MAX_FRAMES,
    cell: int | None = None,
    duration_ms: int | None = None,
) -> bytes:
    """The animation as GIF bytes (loops forever; the last frame is held 2 s).

    ``duration_ms`` per frame defaults to ``clamp(15000 // n_frames, 60, 500)``.
    """
    from PIL import Image

    frames = render_frames(explanation, max_frames=max_frames, cell=cell)
    per_frame = duration_ms or max(60, min(500, 15000 // len(frames)))
    durations = [per_frame] * (len(frames) - 1) + [2000]
    # One palette for all frames (from the last, fullest frame): no per-frame
    # quantisation, and unchanged regions stay byte-identical between frames.
    palette = frames[-1].quantize(colors=256)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=durations, loop=0, disposal=1)
    return buffer.getvalue()
