"""Alpha channels and kernel kinds: what a filter does to a transparent image (pure numpy).

Kernel kinds
------------
A kernel is an *image kernel* when its weights sum to 1,
``|Σw − 1| ≤ 1e-6 · Σ|w|`` (blur, sharpen, identity): a flat image stays flat.
Every other kernel is a *feature kernel* (derivatives, Kirsch, LoG, Gabor,
trained filters). The rule is applied per kernel of a bank
(:func:`kernel_kinds`); a ``--reduce`` result is a feature map.

Alpha modes (``--alpha``)
-------------------------
With colour ``C`` and alpha ``A`` in the image's native units (maximum
``M``: 255, 65535, or 1 for a ``[0, 1]`` float image) and ``*`` the
convolution:

``keep`` (default)
    Premultiply before filtering, ``P = C · A / M`` (:func:`premultiply`),
    so a transparent pixel's hidden colour never contributes. Filter ``P``
    and ``A`` alike (same stride, padding, border, dilation; ``A`` with
    :func:`alpha_weights`). Image kernels:
    ``C' = (K * P) · M / (K * A)`` (0 where ``K * A`` is 0) and ``A' = K * A``
    is written as the map's alpha (:func:`unpremultiply`). Feature kernels:
    ``K * P`` as it is, written opaque. The 1×2 RGBA image
    ``[(255, 0, 0, 0), (255, 255, 255, 255)]`` filtered by ``[0.5 0.5]``
    (valid) gives ``P = [(0, 0, 0), (255, 255, 255)]``, ``K * P = 127.5``,
    ``K * A = 127.5``, so ``(255, 255, 255, 128)`` after rounding.
``drop``
    Flatten first, ``C · A / M + B · (1 − A / M)`` over the background
    ``B`` (black, or ``--background``; :func:`flatten`); maps are opaque.
``channel`` (alias ``filter``)
    Alpha is one more plain channel, filtered like the others.

Every function here is element-wise after the convolution, so it applies to
any band of rows of a streamed image as well as to the whole image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from convcli.errors import KernelError, OptionError

__all__ = [
    "ALPHA_MODES",
    "COLOR_NAMES",
    "KeptGroup",
    "Prepared",
    "alpha_max",
    "alpha_weights",
    "background_values",
    "flatten",
    "has_alpha",
    "is_image_kernel",
    "keep_alpha",
    "keep_layout",
    "kernel_kinds",
    "parse_alpha_mode",
    "parse_color",
    "premultiply",
    "prepare_input",
    "unpremultiply",
]

ALPHA_MODES = ("keep", "drop", "channel")
"""The ``--alpha`` modes (``filter`` is accepted as an alias of ``channel``)."""

_ALIASES = {"filter": "channel"}
_SUM_TOLERANCE = 1e-6
_ZERO_ALPHA = 1e-6  # filtered alpha at most M·1e-6 counts as 0 (float noise of the engines)

COLOR_NAMES: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "red": (255, 0, 0), "green": (0, 128, 0), "lime": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "orange": (255, 165, 0), "silver": (192, 192, 192),
    "navy": (0, 0, 128), "purple": (128, 0, 128), "maroon": (128, 0, 0),
    "olive": (128, 128, 0), "teal": (0, 128, 128),
}
"""Colour names of :func:`parse_color` (CSS values, 8-bit sRGB)."""


def parse_alpha_mode(text: str) -> str:
    """``keep``, ``drop`` or ``channel`` (``filter`` → ``channel``); else :class:`OptionError`."""
    mode = str(text).strip().lower()
    mode = _ALIASES.get(mode, mode)
    if mode not in ALPHA_MODES:
        raise OptionError(f"`--alpha` must be keep, drop, channel or filter, got {text!r}")
    return mode


def has_alpha(channel_names: Sequence[str]) -> bool:
    """True for ``(L, A)`` and ``(R, G, B, A)`` images: the last channel is alpha."""
    return len(channel_names) in (2, 4) and channel_names[-1] == "A"


def alpha_max(bit_depth: int, *, float_unit: bool = False) -> float:
    """``M``, the value of an opaque pixel: 255 (8-bit), 65535 (16-bit), 1.0 (``[0, 1]`` float)."""
    if float_unit:
        return 1.0
    if bit_depth == 8:
        return 255.0
    if bit_depth == 16:
        return 65535.0
    raise OptionError(f"an alpha channel needs an 8- or 16-bit or [0, 1] float image, got {bit_depth}-bit")


# ---------------------------------------------------------------------------
# colours


def parse_color(text: str) -> tuple[float, float, float]:
    """A colour as ``(R, G, B)`` in 8-bit units (0–255, may be fractional).

    Accepts a name of :data:`COLOR_NAMES`, ``#RGB``, ``#RRGGBB``, one number
    ``V`` (gray, 0–255), ``R,G,B`` (0–255 each), ``gray:V`` or ``V%`` (gray
    as a percentage).

    Raises
    ------
    OptionError
        Naming ``--background`` and the text.
    """
    raw = str(text)
    value = raw.strip().lower().replace(" ", "")
    fail = OptionError(
        f"`--background` must be a colour name (black, white, gray, …), #RRGGBB, #RGB, "
        f"a gray level 0-255, V% or R,G,B; got {raw!r}"
    )
    if value in COLOR_NAMES:
        return tuple(float(c) for c in COLOR_NAMES[value])  # type: ignore[return-value]
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return tuple(float(int(c, 16) * 17) for c in value[1:])  # type: ignore[return-value]
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return tuple(float(int(value[i:i + 2], 16)) for i in (1, 3, 5))  # type: ignore[return-value]
    for prefix in ("gray:", "grey:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    percent = value.endswith("%")
    parts = (value[:-1] if percent else value).split(",")
    if len(parts) not in (1, 3) or (percent and len(parts) != 1):
        raise fail
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise fail from None
    if percent:
        numbers = [numbers[0] * 2.55]
    if not all(np.isfinite(n) and 0 <= n <= 255 for n in numbers):
        raise fail
    return (numbers[0],) * 3 if len(numbers) == 1 else tuple(numbers)  # type: ignore[return-value]


def background_values(color: str | Sequence[float] | None, n_colour: int,
                      max_value: float) -> np.ndarray:
    """The background of :func:`flatten` as ``n_colour`` values in the image's units.

    ``color`` is :func:`parse_color` text or ``(R, G, B)`` in 8-bit units;
    None is black. A gray image (``n_colour = 1``) gets the colour's
    luminance ``0.299 R + 0.587 G + 0.114 B``. Values are scaled by
    ``max_value / 255``.
    """
    if color is None:
        return np.zeros(n_colour, np.float64)
    rgb = np.asarray(parse_color(color) if isinstance(color, str) else color, np.float64)
    if rgb.shape != (3,):
        raise OptionError(f"`--background` needs three values R,G,B, got {color!r}")
    if n_colour == 1:
        rgb = np.array([0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]])
    elif n_colour != 3:
        raise OptionError(f"`--background` needs a gray or RGB image, got {n_colour} colour channels")
    return rgb * (max_value / 255.0)


# ---------------------------------------------------------------------------
# kernel kinds


def is_image_kernel(weights: object) -> bool:
    """True when the weights of one kernel sum to 1: ``|Σw − 1| ≤ 1e-6 · Σ|w|``.

    Parameters
    ----------
    weights : array_like, any shape (one kernel: ``(kh, kw)`` or ``(kh, kw, C)``)

    Raises
    ------
    KernelError
        Empty or non-finite weights.
    """
    array = np.asarray(weights, dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise KernelError(f"kernel weights must be finite and non-empty, got shape {array.shape}")
    return bool(abs(array.sum() - 1.0) <= _SUM_TOLERANCE * np.abs(array).sum())


def _bank(bank: object) -> np.ndarray:
    array = np.asarray(bank, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim not in (3, 4) or array.size == 0:
        raise KernelError(f"bank must be (kh, kw), (F, kh, kw) or (F, kh, kw, C), got shape {array.shape}")
    return array


def alpha_weights(bank: object, channels: str = "depthwise") -> np.ndarray:
    """The ``(F, kh, kw)`` kernels that filter alpha alongside a bank's colour maps.

    A 2-D or ``(F, kh, kw)`` bank is used as it is. A full ``(F, kh, kw, C)``
    bank is summed over C for ``sum``/``gray`` (what a flat opaque image
    sees through the kernel) and averaged over C for ``depthwise``.
    """
    array = _bank(bank)
    if array.ndim == 3:
        return array
    if channels == "depthwise":
        return array.mean(axis=3)
    return array.sum(axis=3)


def kernel_kinds(bank: object, channels: str = "depthwise") -> tuple[str, ...]:
    """``"image"`` or ``"feature"`` for every kernel of a bank (:func:`is_image_kernel`
    of its :func:`alpha_weights`)."""
    return tuple("image" if is_image_kernel(k) else "feature" for k in alpha_weights(bank, channels))


# ---------------------------------------------------------------------------
# element-wise steps


def _float(array: np.ndarray) -> np.dtype:
    return np.dtype(np.float64 if np.asarray(array).dtype == np.float64 else np.float32)


def premultiply(colour: np.ndarray, alpha: np.ndarray, max_value: float,
                out: np.ndarray | None = None) -> np.ndarray:
    """``P = colour · alpha / max_value``.

    Parameters
    ----------
    colour : ndarray, (H, W, C) (any number type)
    alpha : ndarray, (H, W) or (H, W, 1)
    max_value : float
        Opaque alpha (:func:`alpha_max`).
    out : ndarray or None
        Float (H, W, C) to write into (may be ``colour`` if it is float).

    Returns
    -------
    ndarray, float32 (float64 for float64 colour), (H, W, C)
    """
    colour = np.asarray(colour)
    alpha = np.asarray(alpha)
    if alpha.ndim == colour.ndim - 1:
        alpha = alpha[..., None]
    dtype = _float(colour) if out is None else out.dtype
    factor = (alpha * dtype.type(1.0 / max_value)).astype(dtype, copy=False)
    return np.multiply(colour, factor, out=out, dtype=dtype)


def flatten(colour: np.ndarray, alpha: np.ndarray, max_value: float,
            background: Sequence[float] | np.ndarray | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """``colour · a + background · (1 − a)`` with ``a = alpha / max_value`` (``--alpha drop``).

    ``background`` holds one value per colour channel in the image's units
    (:func:`background_values`); None is black (the premultiplied colour).
    Returns float32 (float64 for float64 colour), (H, W, C).
    """
    result = premultiply(colour, alpha, max_value, out=out)
    if background is None:
        return result
    values = np.asarray(background, dtype=result.dtype)
    if not values.any():
        return result
    alpha = np.asarray(alpha)
    if alpha.ndim == result.ndim - 1:
        alpha = alpha[..., None]
    coverage = 1.0 - alpha.astype(result.dtype) * result.dtype.type(1.0 / max_value)
    result += coverage * values
    return result


def unpremultiply(colour: np.ndarray, alpha: np.ndarray, max_value: float,
                  out: np.ndarray | None = None) -> np.ndarray:
    """``colour · max_value / alpha``, and 0 where ``alpha ≤ max_value · 1e-6`` (transparent).

    The filtered alpha of an image kernel may be 0 (all of the window
    transparent) or, by float rounding, a tiny number; both give colour 0.
    Negative alpha (a sharpen's undershoot at an alpha edge) gives 0 too.
    Returns float32 (float64 for float64 colour), (H, W, C).
    """
    colour = np.asarray(colour)
    alpha = np.asarray(alpha)
    if alpha.ndim == colour.ndim - 1:
        alpha = alpha[..., None]
    dtype = _float(colour) if out is None else out.dtype
    visible = alpha > max_value * _ZERO_ALPHA
    safe = np.where(visible, alpha, max_value).astype(dtype, copy=False)
    result = np.multiply(colour, dtype.type(max_value), out=out, dtype=dtype)
    np.divide(result, safe, out=result)
    np.copyto(result, 0, where=np.broadcast_to(~visible, result.shape))
    return result


class KeptGroup(NamedTuple):
    """One kernel's channels in :func:`keep_alpha`'s result."""

    start: int
    """First channel."""
    count: int
    """Number of channels, alpha included."""
    has_alpha: bool
    """The last channel is the filtered alpha (an image kernel)."""


def keep_layout(kinds: Sequence[str], per_kernel: int) -> list[KeptGroup]:
    """Where each kernel's channels land in :func:`keep_alpha`'s result.

    An image kernel gets ``per_kernel`` colour channels plus its alpha, a
    feature kernel its ``per_kernel`` colour channels only.
    """
    groups, start = [], 0
    for kind in kinds:
        if kind not in ("image", "feature"):
            raise OptionError(f"kernel kind must be 'image' or 'feature', got {kind!r}")
        count = per_kernel + (kind == "image")
        groups.append(KeptGroup(start, count, kind == "image"))
        start += count
    return groups


def keep_alpha(colour_maps: np.ndarray, alpha_maps: np.ndarray, kinds: Sequence[str],
               max_value: float) -> np.ndarray:
    """``--alpha keep`` after the convolution, for the whole result or any band of its rows.

    Parameters
    ----------
    colour_maps : ndarray, (H', W', N)
        The bank applied to the premultiplied colour; kernel-major, ``N = F·C_k``.
    alpha_maps : ndarray, (H', W', F)
        Alpha filtered by :func:`alpha_weights` with the same geometry.
    kinds : sequence of str, length F
        :func:`kernel_kinds` of the bank.
    max_value : float
        Opaque alpha (:func:`alpha_max`).

    Returns
    -------
    ndarray, (H', W', N + number of image kernels), float
        Per kernel, in order (:func:`keep_layout`): an image kernel's
        :func:`unpremultiply`-ed colour then its filtered alpha; a feature
        kernel's maps unchanged (premultiplied, to be written opaque).
    """
    n_filters = len(kinds)
    rows, cols, n_out = colour_maps.shape
    if n_filters < 1 or n_out % n_filters or alpha_maps.shape != (rows, cols, n_filters):
        raise OptionError(
            f"keep_alpha: {n_out} colour maps and alpha maps of shape {alpha_maps.shape} do not "
            f"match {n_filters} kernels"
        )
    per_kernel = n_out // n_filters
    layout = keep_layout(kinds, per_kernel)
    dtype = np.result_type(_float(colour_maps), _float(alpha_maps))
    result = np.empty((rows, cols, layout[-1].start + layout[-1].count), dtype)
    for f, group in enumerate(layout):
        colour = colour_maps[:, :, f * per_kernel:(f + 1) * per_kernel]
        target = result[:, :, group.start:group.start + per_kernel]
        if group.has_alpha:
            unpremultiply(colour, alpha_maps[:, :, f], max_value, out=target)
            result[:, :, group.start + per_kernel] = alpha_maps[:, :, f]
        else:
            target[...] = colour
    return result


class Prepared(NamedTuple):
    """What goes into the convolution for one ``--alpha`` mode (:func:`prepare_input`)."""

    colour: np.ndarray
    """(H, W, C') the channels to filter: premultiplied (keep), flattened (drop), all (channel),
    or the image as it is when it has no alpha."""
    alpha: np.ndarray | None
    """(H, W, 1) float alpha to filter with :func:`alpha_weights` (keep), else None."""
    channel_names: tuple[str, ...]
    """Names of ``colour``'s channels."""


def prepare_input(pixels: np.ndarray, channel_names: Sequence[str], mode: str, *, max_value: float,
                  background: str | Sequence[float] | None = None) -> Prepared:
    """Split an image (or any band of its rows) for ``--alpha`` ``mode`` before the convolution.

    Parameters
    ----------
    pixels : ndarray, (H, W, C)
        The input in its native units (uint8/uint16/float).
    channel_names : sequence of str
        :attr:`convcli.imageio.LoadedImage.channel_names`; alpha is the last
        channel of ``(L, A)`` and ``(R, G, B, A)``.
    mode : str
        ``keep``, ``drop``, ``channel`` (or ``filter``).
    max_value : float
        Opaque alpha (:func:`alpha_max`).
    background : str or (R, G, B) or None
        ``--background`` for ``drop`` (8-bit units; None: black).

    Returns
    -------
    Prepared
        An image without alpha is returned as it is (integer pixels stay
        integer) in every mode; ``background`` is then not used.
    """
    mode = parse_alpha_mode(mode)
    names = tuple(channel_names)
    if not has_alpha(names) or mode == "channel":
        return Prepared(pixels, None, names)
    colour, alpha = pixels[:, :, :-1], pixels[:, :, -1]
    if mode == "drop":
        values = background_values(background, colour.shape[2], max_value) if background is not None \
            else None
        return Prepared(flatten(colour, alpha, max_value, values), None, names[:-1])
    dtype = _float(colour)
    return Prepared(premultiply(colour, alpha, max_value), alpha[:, :, None].astype(dtype), names[:-1])
