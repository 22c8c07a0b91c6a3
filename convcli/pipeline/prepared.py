"""A source's rows as ``--alpha`` wants them filtered, for :func:`convcli.pipeline.render.render_rows`.

:class:`PreparedRows` wraps a source (anything with ``shape``, ``dtype`` and
``read_rows``) and gives one or two row sources:

* ``colour``: the channels to filter, made by :func:`convcli.alpha.prepare_input`
  from each band of rows read (premultiplied for ``keep``, flattened over the
  background for ``drop``, every channel for ``channel``; an image without
  alpha is passed through unchanged);
* ``alpha``: for ``keep`` on an image with alpha, the alpha channel as float
  ``(H, W, 1)``, to be filtered with :func:`convcli.alpha.alpha_weights` and
  the same geometry; else None.

Both are element-wise on the rows read, so a border row (reflected, wrapped)
is prepared exactly like the pixel it copies, and a band equals the rows of
the whole prepared image. The last band read is kept, so the colour and
alpha plans of one band read the source once.

:func:`is_float_unit` decides whether a float source is a ``[0, 1]`` image
(one pass over its rows, in bands).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from convcli.alpha import prepare_input

__all__ = ["PreparedRows", "is_float_unit"]


class _Rows:
    """One of the row sources of :class:`PreparedRows`."""

    def __init__(self, owner: PreparedRows, part: str, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        self._owner, self._part = owner, part
        self.shape, self.dtype = shape, dtype

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop − 1`` of this part, ``(stop − start, W, C_part)``."""
        return getattr(self._owner._prepared(start, stop), self._part)


class PreparedRows:
    """The ``colour`` (and ``alpha``) row sources of ``source`` for ``--alpha mode``.

    Parameters
    ----------
    source : Source
        Has ``shape`` (H, W, C), ``dtype`` and ``read_rows(start, stop)``.
    channel_names : sequence of str
        The source's channel names (alpha is the last of ``L A`` / ``R G B A``).
    mode : {'keep', 'drop', 'channel', 'filter'}
    max_value : float
        Opaque alpha (:func:`convcli.alpha.alpha_max`).
    background : str or (R, G, B) or None
        ``--background`` for ``drop``.

    Attributes
    ----------
    colour : row source, (H, W, C')
    alpha : row source (H, W, 1) float, or None
    channel_names : tuple of str
        Names of ``colour``'s channels.
    """

    def __init__(self, source: Any, channel_names: Sequence[str], mode: str, *, max_value: float,
                 background: str | Sequence[float] | None = None) -> None:
        self._source = source
        self._names = tuple(channel_names)
        self._mode, self._max_value, self._background = mode, max_value, background
        self._lock = threading.Lock()
        self._last: tuple[int, int, Any] | None = None
        rows, cols, _ = source.shape
        probe = self._prepare(source.read_rows(0, min(1, rows)))
        self.channel_names = probe.channel_names
        self.colour = _Rows(self, "colour", (rows, cols, probe.colour.shape[2]), probe.colour.dtype)
        self.alpha = None if probe.alpha is None else _Rows(self, "alpha", (rows, cols, 1), probe.alpha.dtype)

    def _prepare(self, rows: np.ndarray) -> Any:
        return prepare_input(rows, self._names, self._mode, max_value=self._max_value,
                             background=self._background)

    def _prepared(self, start: int, stop: int) -> Any:
        with self._lock:
            if self._last is not None and self._last[:2] == (start, stop):
                return self._last[2]
            prepared = self._prepare(self._source.read_rows(start, stop))
            self._last = (start, stop, prepared)
            return prepared


def is_float_unit(source: Any, *, band_rows: int = 256) -> bool:
    """True for a float source whose values all lie in ``[0, 1]`` (NaN ignored): a ``[0, 1]`` image.

    Reads the rows in bands of ``band_rows``; integer sources are False at once.
    """
    if np.dtype(source.dtype).kind != "f":
        return False
    rows = source.shape[0]
    seen = False
    for start in range(0, rows, band_rows):
        band = np.asarray(source.read_rows(start, min(rows, start + band_rows)))
        finite_or_inf = band[~np.isnan(band)]
        if not finite_or_inf.size:
            continue
        seen = True
        if float(finite_or_inf.min()) < 0.0 or float(finite_or_inf.max()) > 1.0:
            return False
    return seen
