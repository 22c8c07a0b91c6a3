"""The one exception family of convcli.

Every error that a user can cause (bad geometry, bad kernel text, an unreadable
image, an unwritable output) is raised as a subclass of :class:`ConvcliError`.
The CLI turns any of them into one line on stderr and a non-zero exit code.
Each subclass also derives from the matching builtin (``ValueError``,
``OSError``) so that library users can catch either.
"""

from __future__ import annotations

__all__ = [
    "ConvcliError",
    "ImageError",
    "KernelError",
    "OptionError",
    "OutputError",
    "ShapeError",
]


class ConvcliError(Exception):
    """Base class of every error convcli raises on purpose."""

    exit_code: int = 1


class ShapeError(ConvcliError, ValueError):
    """An impossible geometry: stride, padding, dilation, sizes or channel counts."""


class KernelError(ConvcliError, ValueError):
    """A kernel or bank that cannot be used: bad spec text, bad weights, unknown name."""


class ImageError(ConvcliError, OSError):
    """An input that cannot be read as an image or array."""


class OutputError(ConvcliError, OSError):
    """An output that cannot be written (exists, unwritable, disk full, input clash)."""


class OptionError(ConvcliError, ValueError):
    """An option value that is not one of the allowed names (border, channels, method, …)."""
