"""The finiteness check of input images: NaN and ±inf are refused.

Each strategy would spread a non-finite value differently (a direct sum
skips zero weights, an FFT smears one NaN over the whole map), so there is
no one right answer to give; :func:`convcli.conv.conv2d` refuses them.

Two ways to check, with the same verdict:

* :func:`ensure_finite`: one summing pass (row blocks on the worker pool):
  a finite sum means every value is finite; only a non-finite sum (a NaN,
  an inf, or an overflow of the sum) needs the exact test.
* fused into the compiled kernels (:mod:`convcli.engines.native`): each
  image row is tested as a tile first reads it, while it is in cache, so
  the check costs no extra pass over memory; a failed test ends in
  :func:`require_finite`, which names the first bad value.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ShapeError

__all__ = ["ensure_finite", "finite_sum", "require_finite"]


def finite_sum(array: np.ndarray) -> bool:
    """True when the sum of ``array`` is finite (so every value is), summed in row blocks in parallel."""
    from convcli.engines._bands import by_row_blocks

    def block_sum(block: tuple[int, int]) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.add.reduce(array[block[0]:block[1]], axis=None))

    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(sum(by_row_blocks(block_sum, array))))


def require_finite(array: np.ndarray, source: np.ndarray | None = None) -> None:
    """Raise :class:`ShapeError` if ``array`` holds a NaN or ±inf; return otherwise.

    Parameters
    ----------
    array : ndarray, shape (H, W, C), float
        The image in the compute dtype.
    source : ndarray, optional
        The values ``array`` was cast from (default: ``array``): when they are
        finite, the non-finite values are an overflow of the cast, and the
        message says to compute in float64.

    Raises
    ------
    ShapeError
        Naming the first non-finite value, its (row, column, channel) and the
        count; or, for a cast overflow, the largest magnitude.
    """
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    source = array if source is None else source
    if source is not array and np.isfinite(source).all():  # finite values that overflowed the cast
        raise ShapeError(
            f"image values exceed the {array.dtype} range (largest magnitude "
            f"{float(np.abs(source).max()):.6g}); compute in float64 (dtype=np.float64, "
            "--dtype float64)"
        )
    # name the input's own NaN/inf, not an inf the cast made of a large finite value
    given = np.asarray(source).reshape(array.shape) if source is not array else array
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(given))[0])
    count = int(np.count_nonzero(~np.isfinite(given)))
    raise ShapeError(
        f"image values must be finite, got {given[bad]} at (row, column, channel) {bad} "
        f"({count} non-finite value{'s' if count != 1 else ''})"
    )


def ensure_finite(array: np.ndarray, source: np.ndarray | None = None) -> None:
    """:func:`require_finite`, after a summing pass that clears most arrays at memory speed."""
    if array.dtype.kind == "f" and not finite_sum(array):
        require_finite(array, source)
