"""Border modes: what fills the padding around an image.

1-D picture, ``[1 2 3 4 5]`` padded by 3 on each side::

    zero / constant:V   0 0 0 | 1 2 3 4 5 | 0 0 0     numpy 'constant'
    replicate           1 1 1 | 1 2 3 4 5 | 5 5 5     numpy 'edge'
    symmetric           3 2 1 | 1 2 3 4 5 | 5 4 3     numpy 'symmetric'
    reflect             4 3 2 | 1 2 3 4 5 | 4 3 2     numpy 'reflect'
    wrap                3 4 5 | 1 2 3 4 5 | 1 2 3     numpy 'wrap'

Pads larger than the image follow ``numpy.pad`` (repeated reflection or
wrapping). ``reflect`` is PyTorch's ``reflect`` and OpenCV's REFLECT_101;
``symmetric`` is scipy.signal's ``symm`` and OpenCV's REFLECT; ``wrap`` is
PyTorch's ``circular``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convcli.errors import OptionError

__all__ = ["BORDER_NAMES", "Border", "pad_image", "parse_border"]

BORDER_NAMES = ("zero", "constant:V", "reflect", "symmetric", "replicate", "wrap")

_NUMPY_MODES = {
    "zero": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
}


@dataclass(frozen=True)
class Border:
    """A parsed border: the convcli name, its ``numpy.pad`` mode and fill value."""

    name: str
    numpy_mode: str
    value: float = 0.0

    def __str__(self) -> str:
        if self.name == "constant":
            return f"constant:{self.value:g}"
        return self.name


def parse_border(border: str | Border) -> Border:
    """Parse ``zero``, ``constant:V``, ``reflect``, ``symmetric``, ``replicate`` or ``wrap``.

    Raises
    ------
    OptionError
        For an unknown name or a constant that is not a finite number.
    """
    if isinstance(border, Border):
        return border
    if not isinstance(border, str):
        raise OptionError(f"`border` must be a string such as 'zero' or 'reflect', got {border!r}")
    text = border.strip().lower()
    name, _, value_text = text.partition(":")
    if name not in _NUMPY_MODES:
        raise OptionError(f"`border` must be one of {', '.join(BORDER_NAMES)}, got {border!r}")
    value = 0.0
    if name == "constant":
        try:
            value = float(value_text) if value_text else 0.0
        except ValueError:
            raise OptionError(f"`border` constant must be a number, got {border!r}") from None
        if not math.isfinite(value):
            raise OptionError(f"`border` constant must be finite, got {border!r}")
    elif value_text:
        raise OptionError(f"`border` {name!r} takes no value, got {border!r}")
    return Border(name=name, numpy_mode=_NUMPY_MODES[name], value=value)


def pad_image(image: np.ndarray, pads: tuple[int, int, int, int], border: Border) -> np.ndarray:
    """Pad an ``(H, W, C)`` image by ``(top, bottom, left, right)`` with a border mode.

    Returns the image itself (no copy) when every pad is zero.
    """
    top, bottom, left, right = pads
    if not any(pads):
        return image
    widths = ((top, bottom), (left, right), (0, 0))
    if border.numpy_mode == "constant":
        return np.pad(image, widths, mode="constant", constant_values=border.value)
    return np.pad(image, widths, mode=border.numpy_mode)
