"""Contact sheets of feature maps (the classic CNN "what each filter sees" picture) and of
filters (:func:`make_filter_montage`, the classic "first-layer filters" picture).

An I/O-side module (it draws text with Pillow); the core never imports it.

Layout (all sizes in pixels; :func:`montage_layout` computes them)::

    ┌─────────────────────────────────────────────┐
    │ GAP                                         │
    │ ┌────────┐ GAP ┌────────┐ GAP ┌────────┐    │   tile: tile_h × tile_w
    │ │ tile 0 │     │ tile 1 │     │ tile 2 │    │   label band: LABEL_HEIGHT
    │ ├────────┤     ├────────┤     ├────────┤    │   under every tile
    │ │ label  │     │ label  │     │ label  │    │
    │ └────────┘     └────────┘     └────────┘    │
    │ GAP                                         │
    │ ┌────────┐ …                                │
    └─────────────────────────────────────────────┘

* Tiles are filled row by row; ``columns`` defaults to ``ceil(sqrt(n_tiles))``.
* Every tile has the same size, from the maps' ``(H, W)``: a map larger than
  ``tile_max`` on its longer side is shrunk to fit (box filter, aspect kept,
  ``round``); a smaller one is enlarged by the largest integer factor
  ``f = tile_max // max(H, W)`` (nearest neighbour, so pixels stay square).
* Tile ``k`` (0-based, the input image first when given) has its top-left
  corner at ``(GAP + row·(tile_h + LABEL_HEIGHT + GAP), GAP + col·(tile_w + GAP))``
  with ``row, col = divmod(k, columns)``; its label band follows directly
  below. Sheet size: ``width = columns·(tile_w + GAP) + GAP``,
  ``height = rows·(tile_h + LABEL_HEIGHT + GAP) + GAP``.
* Scaling to grey levels: ``per-map`` maps each map's own ``[min, max]`` to
  ``[0, 255]``; ``shared`` uses one ``[min, max]`` over all maps, so
  strengths can be compared. A constant map (``min == max``) is black.
* The input image (native range: ``0–255``, or ``0–65535`` when its maximum
  exceeds 255; anything else is min-max scaled) is shown in colour, fitted
  and centred in a tile, labelled ``input``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convcli.errors import OptionError, ShapeError

__all__ = [
    "GAP",
    "LABEL_HEIGHT",
    "SCALINGS",
    "MontageLayout",
    "make_filter_montage",
    "make_montage",
    "montage_layout",
]

GAP = 4
LABEL_HEIGHT = 16
SCALINGS = ("per-map", "shared")
BACKGROUND = (24, 24, 24)
LABEL_COLOR = (235, 235, 235)


@dataclass(frozen=True)
class MontageLayout:
    """Where every tile of a contact sheet goes (see the module notes)."""

    n_tiles: int
    columns: int
    rows: int
    tile_h: int
    tile_w: int
    gap: int = GAP
    label_height: int = LABEL_HEIGHT

    @property
    def width(self) -> int:
        """``columns·(tile_w + gap) + gap``."""
        return self.columns * (self.tile_w + self.gap) + self.gap

    @property
    def height(self) -> int:
        """``rows·(tile_h + label_height + gap) + gap``."""
        return self.rows * (self.tile_h + self.label_height + self.gap) + self.gap

    def tile_origin(self, index: int) -> tuple[int, int]:
        """Top-left ``(row, col)`` pixel of tile ``index`` (its label band is below)."""
        row, col = divmod(index, self.columns)
        return (
            self.gap + row * (self.tile_h + self.label_height + self.gap),
            self.gap + col * (self.tile_w + self.gap),
        )


def tile_size(map_shape: tuple[int, int], tile_max: int) -> tuple[int, int]:
    """``(tile_h, tile_w)`` for maps of ``(H, W)``: shrink to fit, or integer enlarge."""
    rows, cols = map_shape
    longest = max(rows, cols)
    if longest > tile_max:
        return max(1, round(rows * tile_max / longest)), max(1, round(cols * tile_max / longest))
    factor = max(1, tile_max // longest)
    return rows * factor, cols * factor


def montage_layout(
    n_tiles: int, map_shape: tuple[int, int], *, columns: int | None = None, tile_max: int = 256
) -> MontageLayout:
    """The grid for ``n_tiles`` tiles of maps shaped ``(H, W)``.

    Raises
    ------
    OptionError
        When ``columns`` or ``tile_max`` is not a positive integer.
    """
    if tile_max < 1:
        raise OptionError(f"`tile_max` must be a positive integer, got {tile_max}")
    if columns is None:
        columns = math.ceil(math.sqrt(n_tiles))
    if columns < 1:
        raise OptionError(f"`columns` must be a positive integer, got {columns}")
    columns = min(columns, max(n_tiles, 1))
    tile_h, tile_w = tile_size(map_shape, tile_max)
    return MontageLayout(
        n_tiles=n_tiles, columns=columns, rows=math.ceil(n_tiles / columns),
        tile_h=tile_h, tile_w=tile_w,
    )


def _to_gray(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``[low, high]`` → ``[0, 255]`` uint8; a constant range gives 0."""
    finite = np.nan_to_num(values.astype(np.float64), nan=low, posinf=high, neginf=low)
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (finite - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())


def _input_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W[, C])`` native-range image → ``(H, W, 3)`` uint8 (alpha dropped)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ShapeError(f"montage input image must be (H, W) or (H, W, C), got shape {array.shape}")
    channels = array.shape[2]
    array = array[:, :, :3] if channels in (3, 4) else np.repeat(array[:, :, :1], 3, axis=2)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    low, high = _finite_range(array)
    if low >= 0 and high <= 255:
        return _to_gray(array, 0.0, 255.0)
    if low >= 0 and high <= 65535:
        return _to_gray(array, 0.0, 65535.0)
    return _to_gray(array, low, high)


def _fit(pixels: np.ndarray, tile_h: int, tile_w: int) -> np.ndarray:
    """Resize ``(h, w[, 3])`` uint8 into a ``tile_h × tile_w`` box, aspect kept, centred."""
    from PIL import Image

    rows, cols = pixels.shape[:2]
    ratio = min(tile_h / rows, tile_w / cols)
    size = (max(1, min(tile_w, round(cols * ratio))), max(1, min(tile_h, round(rows * ratio))))
    picture = Image.fromarray(pixels)
    if size != (cols, rows):
        exact_multiple = ratio >= 1 and size[0] % cols == 0 and size[1] % rows == 0
        picture = picture.resize(size, Image.Resampling.NEAREST if exact_multiple
                                 else Image.Resampling.BOX if ratio < 1 else Image.Resampling.BICUBIC)
    fitted = np.asarray(picture)
    box = np.zeros((tile_h, tile_w, *pixels.shape[2:]), dtype=np.uint8)
    top, left = (tile_h - fitted.shape[0]) // 2, (tile_w - fitted.shape[1]) // 2
    box[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    return box


def _short_label(draw: object, text: str, font: object, width: int) -> str:
    """``text`` cut with an ellipsis so it fits in ``width`` pixels."""
    length = draw.textlength  # type: ignore[attr-defined]
    if length(text, font=font) <= width:
        return text
    while text and length(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def make_montage(
    maps: np.ndarray,
    labels: list[str],
    *,
    input_image: np.ndarray | None = None,
    scaling: str = "per-map",
    columns: int | None = None,
    tile_max: int = 256,
) -> np.ndarray:
    """A labelled contact sheet of feature maps, as an ``(height, width, 3)`` uint8 array.

    Parameters
    ----------
    maps : ndarray, shape (H, W, N)
        The feature maps (any real dtype; a 2-D array is one map).
    labels : list of str, length N
        One label per map, e.g. ``"sobel-x.R"`` (kernel and channel).
    input_image : ndarray, shape (h, w[, C]), optional
        Shown first, in colour, labelled ``input``.
    scaling : {'per-map', 'shared'}
        Each map's own min/max, or one min/max over all maps.
    columns : int, optional
        Tiles per row; default ``ceil(sqrt(n_tiles))``.
    tile_max : int
        Longest tile side (see the module notes for the exact rule).

    Returns
    -------
    ndarray, shape (layout.height, layout.width, 3), uint8
        The geometry is :func:`montage_layout` ``(n_tiles, (H, W), columns=…,
        tile_max=…)`` with ``n_tiles = N`` (+1 with an input image).

    Raises
    ------
    ShapeError, OptionError
        For maps that are not ``(H, W, N)``, a label count that is not N, or
        an unknown ``scaling``.
    """
    stack = np.asarray(maps)
    if stack.ndim == 2:
        stack = stack[:, :, None]
    if stack.ndim != 3 or min(stack.shape) < 1:
        raise ShapeError(f"montage maps must be (H, W, N), got shape {stack.shape}")
    if stack.dtype.kind not in "biuf":
        raise ShapeError(f"montage maps must hold real numbers, got dtype {stack.dtype}")
    if len(labels) != stack.shape[2]:
        raise ShapeError(f"montage needs one label per map: {stack.shape[2]} maps, {len(labels)} labels")
    if scaling not in SCALINGS:
        raise OptionError(f"`scaling` must be one of {', '.join(SCALINGS)}, got {scaling!r}")

    tiles: list[tuple[np.ndarray, str]] = []
    if input_image is not None:
        tiles.append((_input_rgb(input_image), "input"))
    shared = _finite_range(stack) if scaling == "shared" else None
    for index, label in enumerate(labels):
        plane = stack[:, :, index]
        low, high = shared or _finite_range(plane)
        gray = _to_gray(plane, low, high)
        tiles.append((np.repeat(gray[:, :, None], 3, axis=2), label))

    layout = montage_layout(len(tiles), stack.shape[:2], columns=columns, tile_max=tile_max)
    return _compose(tiles, layout)


def _compose(tiles: list[tuple[np.ndarray, str]], layout: MontageLayout) -> np.ndarray:
    """Place ``(pixels, label)`` tiles on a sheet of ``layout`` and draw the labels."""
    from PIL import Image, ImageDraw, ImageFont

    sheet = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
    sheet[:] = BACKGROUND
    for index, (pixels, _) in enumerate(tiles):
        top, left = layout.tile_origin(index)
        sheet[top : top + layout.tile_h, left : left + layout.tile_w] = _fit(
            pixels, layout.tile_h, layout.tile_w
        )
    picture = Image.fromarray(sheet)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=11)
    for index, (_, label) in enumerate(tiles):
        top, left = layout.tile_origin(index)
        text = _short_label(draw, label, font, layout.tile_w)
        draw.text((left, top + layout.tile_h + 2), text, fill=LABEL_COLOR, font=font)
    return np.asarray(picture).copy()


def _symmetric(values: np.ndarray, bound: float) -> np.ndarray:
    """Weights → uint8 with 0 at mid-grey: ``round(127.5 + 127.5·w/bound)``; ``bound = 0`` → 128."""
    if not bound > 0:
        return np.full(values.shape, 128, dtype=np.uint8)
    return np.clip(np.rint(127.5 + 127.5 * values / bound), 0, 255).astype(np.uint8)


def make_filter_montage(
    bank: np.ndarray,
    labels: list[str],
    *,
    scaling: str = "per-map",
    columns: int | None = None,
    tile_max: int = 64,
) -> np.ndarray:
    """Draw a bank's filters: the classic "first-layer filters" picture, ``(height, width, 3)`` uint8.

    Each weight ``w`` becomes ``round(127.5 + 127.5·w / m)`` (clipped to
    0–255), so 0 is mid-grey, positive weights are lighter and negative
    darker; ``m`` is the filter's own ``max |w|`` (``per-map``) or one over the
    bank (``shared``). A bank with C = 3 draws one RGB tile per filter (the
    channels as red, green, blue); any other C draws one grey tile per
    channel, labelled ``label.cN``, a filter's channels side by side (C
    columns when C <= 16). Tiles are enlarged by an integer factor (square
    pixels), laid out as in :func:`montage_layout`.

    Parameters
    ----------
    bank : ndarray, shape (F, kh, kw), (F, kh, kw, C) or (kh, kw)
        convcli layout (a PyTorch weight ``W`` is ``W.transpose(0, 2, 3, 1)``).
    labels : list of str, length F
    scaling : {'per-map', 'shared'}
    columns : int, optional
    tile_max : int
        Longest tile side in pixels.

    Raises
    ------
    ShapeError, OptionError
        For another bank shape, a label count that is not F, or an unknown ``scaling``.
    """
    weights = np.asarray(bank, dtype=np.float64)
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim == 3:
        weights = weights[..., None]
    if weights.ndim != 4 or min(weights.shape) < 1:
        raise ShapeError(f"a filter montage needs an (F, kh, kw[, C]) bank, got shape {np.shape(bank)}")
    if len(labels) != weights.shape[0]:
        raise ShapeError(f"filter montage needs one label per filter: {weights.shape[0]} filters, "
                         f"{len(labels)} labels")
    if scaling not in SCALINGS:
        raise OptionError(f"`scaling` must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    shared = float(np.abs(weights).max())
    depth = weights.shape[3]
    tiles: list[tuple[np.ndarray, str]] = []
    for weight, label in zip(weights, labels):
        bound = shared if scaling == "shared" else float(np.abs(weight).max())
        if depth == 3:
            tiles.append((_symmetric(weight, bound), label))
            continue
        for channel in range(depth):
            grey = _symmetric(weight[:, :, channel], bound)
            name = label if depth == 1 else f"{label}.c{channel}"
            tiles.append((np.repeat(grey[:, :, None], 3, axis=2), name))
    if columns is None and depth not in (1, 3) and depth <= 16:
        columns = depth
    layout = montage_layout(len(tiles), weights.shape[1:3], columns=columns, tile_max=tile_max)
    return _compose(tiles, layout)
