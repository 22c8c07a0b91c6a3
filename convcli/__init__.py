"""convcli: CNN-style 2-D convolution with exact PyTorch / scipy semantics.

The public API is pure: arrays in, arrays out. Shapes are channels-last:
images ``(H, W, C)``, banks ``(F, kh, kw)`` or ``(F, kh, kw, C)``, results
``(H', W', N)``.
"""

from convcli.errors import ConvcliError, ImageError, KernelError, OptionError, OutputError, ShapeError
from convcli.geometry import (
    effective_kernel_size,
    output_size,
    receptive_field,
    resolve_padding,
    resolve_padding2d,
)

__version__ = "0.1.0"

# numpy-backed names are loaded on first use (PEP 562), so that importing
# convcli (and so ``convcli --help`` / ``convcli shape``) does not import numpy.
_FROM_CONV = ("CHANNEL_MODES", "conv2d", "conv_transpose2d", "luminance", "upsample_nearest_conv2d")


def __getattr__(name: str) -> object:
    if name in _FROM_CONV:
        from convcli import conv

        value = getattr(conv, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM_CONV))

__all__ = [
    "CHANNEL_MODES",
    "ConvcliError",
    "ImageError",
    "KernelError",
    "OptionError",
    "OutputError",
    "ShapeError",
    "__version__",
    "conv2d",
    "conv_transpose2d",
    "effective_kernel_size",
    "luminance",
    "output_size",
    "receptive_field",
    "resolve_padding",
    "resolve_padding2d",
    "upsample_nearest_conv2d",
]
