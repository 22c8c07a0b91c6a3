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
_LAZY = {
    "CHANNEL_MODES": "convcli.conv",
    "conv2d": "convcli.conv",
    "conv_transpose2d": "convcli.conv",
    "luminance": "convcli.conv",
    "upsample_nearest_conv2d": "convcli.conv",
    "load_bank": "convcli.presets",
    "resolve_kernel": "convcli.presets",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "load_bank",
    "luminance",
    "output_size",
    "receptive_field",
    "resolve_kernel",
    "resolve_padding",
    "resolve_padding2d",
    "upsample_nearest_conv2d",
]
