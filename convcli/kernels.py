"""Kernels and kernel banks: the data types, the inline parser, the generators.

This module is pure (numpy only, no file access). Reading the ``kernels/``
presets and user files is :mod:`convcli.presets`.

All weights are **correlation** weights (the CNN convention of SPEC.md): the
tap ``weights[m, n]`` multiplies the pixel ``m`` rows below and ``n`` columns
right of the window's top-left corner. Rows are written top to bottom.

Parametric kernels (all ``float64``, odd sizes are centred on a pixel, even
sizes on a pixel corner; ``r`` is the offset from the centre):

* ``box``: ``ones(kh, kw) / (kh·kw)``
* ``gaussian``: ``exp(−r²/2σ²)``, normalised to sum 1, size ``2·ceil(3σ)+1``
* ``log``: Laplacian of Gaussian ``∇²G = G·(r² − 2σ²)/σ⁴`` (G of sum 1) minus
  its mean, so it sums to 0: negative centre, like ``laplacian-4`` and
  ``scipy.ndimage.gaussian_laplace``
* ``dog``: ``gaussian(σ1) − gaussian(σ2)`` on one grid: sums to 0
* ``gabor``: ``exp(−(x'² + γ²y'²)/2σ²)·cos(2π x'/λ + ψ)`` (real part)
* ``motion``: a line of ``length`` equal taps at ``angle``, sum 1

:data:`GENERATORS` maps each name to its function and parameters; a spec
``gaussian:sigma=2`` becomes :func:`make_parametric` ``("gaussian", {"sigma": 2})``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcli.errors import KernelError

__all__ = [
    "DISPLAY_HINTS",
    "GENERATORS",
    "Generator",
    "Kernel",
    "KernelBank",
    "box",
    "check_display_hint",
    "dog",
    "gabor",
    "gaussian",
    "is_imagemagick",
    "log",
    "make_parametric",
    "motion",
    "parse_inline",
    "parse_numbers",
    "parse_params",
    "separable_factors",
]

#: The display hints a kernel may carry (how ``apply`` maps floats to pixels).
DISPLAY_HINTS = ("abs", "minmax", "clip")
_OFFSET_HINT = re.compile(r"^offset:[-+]?(\d+(\.\d*)?|\.\d+)$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")
_SEPARABLE_RTOL = 1e-10


def check_display_hint(display: str | None) -> str | None:
    """Return ``display`` if it is ``None``, ``abs``, ``minmax``, ``clip`` or ``offset:V``."""
    if display is None or (isinstance(display, str) and (
            display in DISPLAY_HINTS or _OFFSET_HINT.match(display))):
        return display
    raise KernelError(
        f"`display` must be one of abs, minmax, clip or offset:V, got {display!r}"
    )


def _as_weights(weights: object, name: str) -> np.ndarray:
    """Validate weights: real, finite, non-empty, (kh, kw) or (kh, kw, C); read-only copy."""
    try:
        array = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(f"kernel {name!r}: weights must be numbers ({exc})") from None
    if array.ndim not in (2, 3):
        raise KernelError(
            f"kernel {name!r}: weights must be (kh, kw) or (kh, kw, C), got shape {array.shape}"
        )
    if array.size == 0:
        raise KernelError(f"kernel {name!r}: weights must not be empty, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise KernelError(f"kernel {name!r}: weights must be finite (found NaN or inf)")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Kernel:
    """One named 2-D kernel (or one CNN kernel over C channels).

    Attributes
    ----------
    name : str
        A label usable in a file name: ``"sobel-x"``, ``"gaussian-s2"``,
        ``"k0"`` for inline weights.
    weights : numpy.ndarray
        Correlation weights, ``float64``, shape ``(kh, kw)`` or ``(kh, kw, C)``;
        stored as a read-only copy.
    description : str
        One line for humans.
    display : str or None
        Display hint for ``apply --scale auto``: ``"offset:128"``, ``"abs"``,
        ``"minmax"``, ``"clip"`` or ``None`` (no preference).
    """

    name: str
    weights: np.ndarray
    description: str = ""
    display: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _LABEL.match(self.name):
            raise KernelError(
                f"kernel name must be letters, digits and '_.+=-' (usable in a file name), "
                f"got {self.name!r}"
            )
        object.__setattr__(self, "weights", _as_weights(self.weights, self.name))
        object.__setattr__(self, "display", check_display_hint(self.display))

    @property
    def shape(self) -> tuple[int, ...]:
        """``(kh, kw)`` or ``(kh, kw, C)``."""
        return tuple(self.weights.shape)

    @property
    def size_text(self) -> str:
        """``"3×3"`` (rows × columns), with ``"×C"`` for a 3-D kernel."""
        return "×".join(str(n) for n in self.weights.shape)


@dataclass(frozen=True, eq=False)
class KernelBank:
    """An ordered group of kernels applied together (``F`` features).

    Attributes
    ----------
    name : str
        ``"sobel"``, ``"sobel-x"``, ``"gaussian-s2"``, ``"inline"``, …
    kernels : tuple of Kernel
        The members, in output order.
    layer : convcli.layers.ModelLayer or None
        Set for a bank read from a model file (``FILE:TENSOR``): its kernels
        are then the layer's filters in convcli layout ``(kh, kw, C/G)``
        (:meth:`convcli.layers.ModelLayer.to_bank`), and :attr:`bias`,
        :attr:`groups`, :attr:`transposed`, :attr:`geometry` carry the rest.
    """

    name: str
    kernels: tuple[Kernel, ...]
    layer: Any = None

    def __post_init__(self) -> None:
        members = tuple(self.kernels)
        if not members:
            raise KernelError(f"kernel bank {self.name!r} has no kernels")
        if not all(isinstance(kernel, Kernel) for kernel in members):
            raise KernelError(f"kernel bank {self.name!r}: members must be Kernel objects")
        object.__setattr__(self, "kernels", members)

    def __len__(self) -> int:
        return len(self.kernels)

    @property
    def labels(self) -> list[str]:
        """The members' names, in order."""
        return [kernel.name for kernel in self.kernels]

    @property
    def display(self) -> str | None:
        """The display hint shared by every member, else ``None``."""
        hints = {kernel.display for kernel in self.kernels}
        return hints.pop() if len(hints) == 1 else None

    @property
    def layout(self) -> str:
        """Where the weights came from: ``"pytorch"`` (a model file) or ``"convcli"``."""
        return "convcli" if self.layer is None else "pytorch"

    @property
    def bias(self) -> np.ndarray | None:
        """The model layer's bias (one value per output channel), else ``None``."""
        return None if self.layer is None else self.layer.bias

    @property
    def groups(self) -> int | None:
        """G stated by the model file (ONNX ``group``); ``None``: inferred from the image."""
        return None if self.layer is None else self.layer.groups

    @property
    def transposed(self) -> bool:
        """True for a transposed layer (ONNX ``ConvTranspose``)."""
        return False if self.layer is None else bool(self.layer.transposed)

    @property
    def geometry(self) -> dict[str, Any]:
        """The model layer's stored geometry (ONNX attributes), else ``{}``."""
        return {} if self.layer is None else dict(self.layer.geometry)

    def stack(self) -> np.ndarray:
        """All weights as one array ``(F, kh, kw)`` or ``(F, kh, kw, C)``, float64.

        Smaller kernels are zero-padded, centred, to the largest rows and
        columns: a ``3×3`` beside a ``5×5`` gets one ring of zeros. The padding
        must split evenly (``2×2`` beside ``3×3`` has no centre) or a
        :class:`KernelError` names both kernels. A 2-D kernel beside
        ``(kh, kw, C)`` kernels is repeated over the ``C`` channels (the same
        result in every channel mode); different ``C`` are an error.
        """
        rows = max(kernel.weights.shape[0] for kernel in self.kernels)
        cols = max(kernel.weights.shape[1] for kernel in self.kernels)
        depths = {kernel.weights.shape[2] for kernel in self.kernels if kernel.weights.ndim == 3}
        if len(depths) > 1:
            raise KernelError(
                f"kernel bank {self.name!r} mixes channel counts C={sorted(depths)}; "
                "every (kh, kw, C) kernel of a bank needs the same C"
            )
        depth = depths.pop() if depths else None
        out_shape = (len(self.kernels), rows, cols) + ((depth,) if depth else ())
        bank = np.zeros(out_shape, dtype=np.float64)
        for index, kernel in enumerate(self.kernels):
            kh, kw = kernel.weights.shape[:2]
            if (rows - kh) % 2 or (cols - kw) % 2:
                axis, target = (0, rows) if (rows - kh) % 2 else (1, cols)
                other = next(k for k in self.kernels if k.weights.shape[axis] == target)
                raise KernelError(
                    f"cannot centre kernel {kernel.name!r} ({kernel.size_text}) in "
                    f"{rows}×{cols} beside {other.name!r} ({other.size_text}): the size "
                    "difference is odd; pad it yourself or use kernels of matching parity"
                )
            top, left = (rows - kh) // 2, (cols - kw) // 2
            weights = kernel.weights
            if depth and weights.ndim == 2:
                weights = np.repeat(weights[:, :, None], depth, axis=2)
            bank[index, top:top + kh, left:left + kw] = weights
        return bank


# --- inline text ---------------------------------------------------------------

_IM_HEADER = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*:(.*)$", re.DOTALL)
_VALUE_SPLIT = re.compile(r"[,\s]+")
_EMPTY_VALUE = re.compile(r"^,|,\s*,|,$")


def parse_numbers(text: str, where: str) -> list[float]:
    """``"1, 0 -1"`` → ``[1.0, 0.0, -1.0]`` (commas and/or spaces; ``1/16`` allowed).

    ``where`` starts the error message ("row 2", "k.txt line 3"). Words, NaN,
    inf, an empty value between commas (``"1,,2"``: a weight left out would
    silently shrink the kernel) and Python's ``1_000`` digit grouping raise
    :class:`KernelError`.
    """
    values = []
    stripped = text.strip()
    if _EMPTY_VALUE.search(stripped):
        raise KernelError(f"{where}: empty value between commas in {stripped!r}")
    for token in _VALUE_SPLIT.split(stripped):
        if not token:
            continue
        try:
            if "_" in token:
                raise ValueError(token)
            value = float(_fraction(token))
        except (ValueError, ZeroDivisionError):
            raise KernelError(f"{where}: {token!r} is not a number") from None
        if not math.isfinite(value):
            raise KernelError(f"{where}: weights must be finite, got {token!r}")
        values.append(value)
    return values


def _fraction(token: str) -> float:
    """``"1/16"`` → 0.0625, ``"2.5"`` → 2.5 (a single ``/`` at most)."""
    if "/" in token:
        numerator, _, denominator = token.partition("/")
        return float(numerator) / float(denominator)
    return float(token)


def is_imagemagick(text: str) -> bool:
    """True when ``text`` starts with ImageMagick's ``WxH:`` (or ``N:``) header."""
    return bool(_IM_HEADER.match(text))


def _parse_imagemagick(text: str) -> list[np.ndarray]:
    """``"3x3: 1,0,-1, 2,0,-2, 1,0,-1"`` (``W×H``, values row by row) → arrays.

    Several kernels may follow one another separated by ``;``, each with its
    own header, as in ImageMagick's kernel lists. Pieces after ``;`` without a
    header continue the current kernel's values.
    """
    kernels: list[tuple[int, int, list[float]]] = []
    for piece in text.split(";"):
        match = _IM_HEADER.match(piece)
        if match:
            cols = int(match.group(1))
            rows = int(match.group(2) or match.group(1))
            if rows < 1 or cols < 1:
                raise KernelError(f"kernel header {piece.strip()!r}: sizes must be at least 1")
            kernels.append((rows, cols, []))
            body = match.group(3)
        elif not kernels:
            raise KernelError("ImageMagick kernel text must start with 'WxH:'")
        else:
            body = piece
        rows, cols, values = kernels[-1]
        values.extend(parse_numbers(body, f"kernel {len(kernels) - 1}"))
    arrays = []
    for index, (rows, cols, values) in enumerate(kernels):
        if len(values) != rows * cols:
            raise KernelError(
                f"kernel {index}: header {cols}x{rows} (width x height) needs {rows * cols} "
                f"values, got {len(values)}"
            )
        arrays.append(np.array(values, dtype=np.float64).reshape(rows, cols))
    return arrays


def _parse_rows(text: str) -> np.ndarray:
    """``"1,0,-1; 2,0,-2"`` → a 2-D array; ragged rows name the row (1-based)."""
    rows = [piece for piece in text.split(";")]
    if rows and not rows[-1].strip():  # allow one trailing ';'
        rows = rows[:-1]
    parsed = []
    for number, row in enumerate(rows, start=1):
        values = parse_numbers(row, f"row {number}")
        if not values:
            raise KernelError(f"row {number} is empty")
        parsed.append(values)
    if not parsed:
        raise KernelError("no weights given")
    width = len(parsed[0])
    for number, values in enumerate(parsed, start=1):
        if len(values) != width:
            raise KernelError(
                f"ragged rows: row {number} has {len(values)} values, row 1 has {width}"
            )
    return np.array(parsed, dtype=np.float64)


def parse_inline(text: str) -> KernelBank:
    """Parse inline weights into a bank named ``"inline"`` (kernels ``k0``, ``k1``, …).

    Two forms:

    * rows split by ``;``, values by ``,`` and/or spaces:
      ``"1,0,-1; 2,0,-2; 1,0,-1"`` (3×3), ``"1 2 1"`` (1×3); a value may be a
      fraction ``1/16``;
    * ImageMagick's ``"WxH: v,v,…"`` with ``W`` columns and ``H`` rows, values
      row by row (``"3x3: 1,0,-1,2,0,-2,1,0,-1"``; ``"3: …"`` means 3×3);
      several such kernels may be joined by ``;``.

    Raises
    ------
    KernelError
        Empty text, a non-number, NaN/inf, ragged rows (naming the row), or a
        value count that does not match the ``WxH`` header.
    """
    if not isinstance(text, str) or not text.strip():
        raise KernelError(f"empty kernel weights {text!r}")
    arrays = _parse_imagemagick(text) if is_imagemagick(text) else [_parse_rows(text)]
    return KernelBank(
        "inline", tuple(Kernel(f"k{index}", array) for index, array in enumerate(arrays))
    )


def parse_params(text: str) -> dict[str, float]:
    """``"sigma=2, size=9"`` → ``{"sigma": 2.0, "size": 9.0}``.

    Keys are identifiers; values are finite numbers (``1/2`` allowed). An
    empty text gives ``{}``. A missing ``=``, a repeated key or a value that
    is not a finite number raises :class:`KernelError`.
    """
    params: dict[str, float] = {}
    if not text.strip():
        return params
    for item in text.split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise KernelError(f"parameter {item.strip()!r} must be written name=value")
        if key in params:
            raise KernelError(f"parameter {key!r} given twice")
        try:
            number = _fraction(value)
        except (ValueError, ZeroDivisionError):
            raise KernelError(f"parameter {key}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise KernelError(f"parameter {key}={value!r} must be finite")
        params[key] = number
    return params


# --- separability --------------------------------------------------------------


def _nice_scale(column: np.ndarray, row: np.ndarray, weights: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Rescale (column, row) to integers when their outer product stays ``weights``."""
    nonzero = np.abs(column[np.abs(column) > 0])
    if nonzero.size:
        factor = nonzero.min()
        with np.errstate(all="ignore"):
            col_int, row_int = np.round(column / factor) + 0.0, np.round(row * factor) + 0.0
            error = np.abs(np.outer(col_int, row_int) - weights).max()
        if error <= _SEPARABLE_RTOL * np.abs(weights).max():  # False for NaN
            return col_int, row_int
    return column + 0.0, row + 0.0  # + 0.0 turns -0.0 into 0.0


def separable_factors(weights: object) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a rank-1 2-D kernel into ``(column, row)`` with ``outer(column, row) == weights``.

    Uses the SVD ``W = U S Vᵀ``: the kernel is separable when
    ``S[1] <= 1e-10·S[0]``; then ``column = U[:, 0]·√S[0]`` and
    ``row = Vᵀ[0]·√S[0]``, checked so that ``max|outer − W| <= 1e-10·max|W|``.
    Factors are scaled to integers when the kernel allows it (sobel-x →
    ``[1, 2, 1]`` and ``[-1, 0, 1]``); the column's largest entry is positive.

    Parameters
    ----------
    weights : array_like, shape (kh, kw)

    Returns
    -------
    (column, row) : tuple of numpy.ndarray, shapes (kh,) and (kw,), or None
        ``None`` when the kernel is not rank 1 or not 2-D.
    """
    array = np.asarray(weights, dtype=np.float64)
    if array.ndim != 2 or array.size == 0 or not np.isfinite(array).all():
        return None
    peak = np.abs(array).max()
    if peak == 0:
        return np.zeros(array.shape[0]), np.zeros(array.shape[1])
    u, s, vt = np.linalg.svd(array)
    if s.size > 1 and s[1] > _SEPARABLE_RTOL * s[0]:
        return None
    column, row = u[:, 0] * math.sqrt(s[0]), vt[0] * math.sqrt(s[0])
    if column[np.argmax(np.abs(column))] < 0:
        column, row = -column, -row
    column, row = _nice_scale(column, row, array)
    if np.abs(np.outer(column, row) - array).max() > _SEPARABLE_RTOL * peak:
        return None
    return column, row


# --- parametric generators ------------------------------------------------------


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KernelError(f"`{name}` must be a positive integer, got {value!r}")
    if not float(value).is_integer() or value < 1:
        raise KernelError(f"`{name}` must be a positive integer, got {value:g}")
    return int(value)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KernelError(f"`{name}` must be a positive number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise KernelError(f"`{name}` must be a positive number, got {value:g}")
    return float(value)


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise KernelError(f"`{name}` must be a number, got {value!r}")
    if not math.isfinite(value):
        raise KernelError(f"`{name}` must be finite, got {value:g}")
    return float(value)


_MAX_SIZE = 1025  # larger kernels are surely a typo (and would take gigabytes)


def _size_pair(size: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    pair = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    if len(pair) != 2:
        raise KernelError(f"`{name}` must be an int or a (rows, cols) pair, got {size!r}")
    rows, cols = (_positive_int(value, name) for value in pair)
    if max(rows, cols) > _MAX_SIZE:
        raise KernelError(f"`{name}` must be at most {_MAX_SIZE}, got {max(rows, cols)}")
    return rows, cols


def _default_size(sigma: float) -> int:
    if 2 * 3 * sigma + 1 > _MAX_SIZE:
        raise KernelError(
            f"`sigma` {sigma:g} is too large: the default size 2·ceil(3σ)+1 exceeds {_MAX_SIZE}; "
            "give `size`"
        )
    return 2 * math.ceil(3 * sigma) + 1


def _offsets(n: int) -> np.ndarray:
    """Offsets of ``n`` taps from their centre: ``arange(n) − (n − 1)/2``."""
    return np.arange(n, dtype=np.float64) - (n - 1) / 2


def box(size: int | tuple[int, int] = 3) -> np.ndarray:
    """Mean filter: ``ones(kh, kw) / (kh·kw)``.

    Parameters
    ----------
    size : int or (int, int)
        ``k`` for ``k×k`` or ``(kh, kw)``; each at least 1.
    """
    rows, cols = _size_pair(size)
    return np.full((rows, cols), 1.0 / (rows * cols))


def gaussian(sigma: float = 1.0, size: int | None = None) -> np.ndarray:
    """Sampled Gaussian ``G[m, n] ∝ exp(−(y² + x²) / 2σ²)``, normalised to sum 1.

    ``y, x`` are the offsets from the kernel centre (``arange(k) − (k−1)/2``).

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, > 0.
    size : int, optional
        Side ``k`` of the ``k×k`` kernel; default ``2·ceil(3σ) + 1``.
    """
    sigma = _positive(sigma, "sigma")
    rows, cols = _size_pair(_default_size(sigma) if size is None else size)
    with np.errstate(over="ignore"):  # a tiny σ gives a unit impulse, not NaN
        column = np.exp(-((_offsets(rows) / sigma) ** 2) / 2)
        row = np.exp(-((_offsets(cols) / sigma) ** 2) / 2)
    weights = np.outer(column, row)
    return weights / weights.sum()


def log(sigma: float = 1.4, size: int | None = None) -> np.ndarray:
    """Laplacian of Gaussian, zero-sum.

    ``L = G·(r² − 2σ²)/σ⁴ − mean``, where ``G`` is :func:`gaussian` (sum 1)
    and ``r² = y² + x²``: the sampled ``∇²G`` (the same taps as
    ``scipy.ndimage.gaussian_laplace`` and MATLAB ``fspecial('log')``), minus
    its mean so that a flat image gives 0. Sign: **negative centre**, positive
    surround, like ``laplacian-4``; negate it for the "Mexican hat".

    Parameters
    ----------
    sigma : float
        > 0. size : int, optional — default ``2·ceil(3σ) + 1``.
    """
    sigma = _positive(sigma, "sigma")
    g = gaussian(sigma, size)
    y, x = np.meshgrid(_offsets(g.shape[0]), _offsets(g.shape[1]), indexing="ij")
    with np.errstate(all="ignore"):
        weights = g * ((x / sigma) ** 2 + (y / sigma) ** 2 - 2) / sigma**2
        weights = weights - weights.mean()
    if not np.isfinite(weights).all():
        raise KernelError(f"`sigma` {sigma:g} is too small for a Laplacian of Gaussian")
    return weights


def dog(sigma1: float = 1.0, sigma2: float = 1.6, size: int | None = None) -> np.ndarray:
    """Difference of Gaussians ``gaussian(σ1) − gaussian(σ2)``, both sum 1: zero-sum.

    With ``σ1 < σ2`` (the default ratio 1.6 approximates the LoG) the centre
    is positive. ``size`` defaults to ``2·ceil(3·max(σ1, σ2)) + 1`` for both.
    """
    sigma1, sigma2 = _positive(sigma1, "sigma1"), _positive(sigma2, "sigma2")
    if sigma1 == sigma2:
        raise KernelError(f"`sigma1` and `sigma2` must differ, both are {sigma1:g}")
    if size is None:
        size = _default_size(max(sigma1, sigma2))
    return gaussian(sigma1, size) - gaussian(sigma2, size)


def gabor(
    theta: float = 0.0,
    lambda_: float = 8.0,
    sigma: float | None = None,
    gamma: float = 0.5,
    psi: float = 0.0,
    size: int | None = None,
) -> np.ndarray:
    """Real part of a Gabor filter.

    ``g(x, y) = exp(−(x'² + γ²·y'²) / 2σ²) · cos(2π·x'/λ + ψ)`` with
    ``x' = x·cosθ + y·sinθ`` and ``y' = −x·sinθ + y·cosθ``, where ``x`` is the
    column offset from the centre (to the right) and ``y`` the row offset
    **upwards** (so θ turns counter-clockwise as displayed). ``θ = 0`` gives
    vertical stripes (responds to vertical edges/bars), ``θ = 90`` horizontal
    ones. Not normalised (as OpenCV ``getGaborKernel``), not zero-sum.

    Parameters
    ----------
    theta : float
        Orientation of the wave vector, degrees.
    lambda_ : float
        Wavelength in pixels, > 0 (CLI name ``lambda``).
    sigma : float, optional
        Envelope width, > 0; default ``0.56·λ`` (a one-octave bandwidth).
    gamma : float
        Aspect ratio of the envelope, > 0.
    psi : float
        Phase offset, degrees (0: even/cosine, 90: odd/sine).
    size : int, optional
        Side of a square kernel; default: the smallest odd box that holds the
        rotated ±3σ envelope (``3σ`` along ``x'``, ``3σ/γ`` along ``y'``).
    """
    theta_rad = math.radians(_finite(theta, "theta"))
    lambda_ = _positive(lambda_, "lambda")
    sigma = 0.56 * lambda_ if sigma is None else _positive(sigma, "sigma")
    gamma = _positive(gamma, "gamma")
    psi_rad = math.radians(_finite(psi, "psi"))
    if size is None:
        along, across = 3 * sigma, 3 * sigma / gamma
        half_x = max(abs(along * math.cos(theta_rad)), abs(across * math.sin(theta_rad)), 1)
        half_y = max(abs(along * math.sin(theta_rad)), abs(across * math.cos(theta_rad)), 1)
        if 2 * max(half_x, half_y) + 1 > _MAX_SIZE:
            raise KernelError(
                f"the default size for σ={sigma:g}, γ={gamma:g} exceeds {_MAX_SIZE}; give `size`"
            )
        rows, cols = 2 * math.ceil(half_y) + 1, 2 * math.ceil(half_x) + 1
    else:
        rows, cols = _size_pair(size)
    y_down, x = np.meshgrid(_offsets(rows), _offsets(cols), indexing="ij")
    y = -y_down
    x_rot = x * math.cos(theta_rad) + y * math.sin(theta_rad)
    y_rot = -x * math.sin(theta_rad) + y * math.cos(theta_rad)
    with np.errstate(over="ignore"):
        envelope = np.exp(-((x_rot / sigma) ** 2 + (gamma * y_rot / sigma) ** 2) / 2)
    return envelope * np.cos(2 * math.pi * x_rot / lambda_ + psi_rad)


def motion(length: int = 9, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: equal taps on a centred line, sum 1.

    A digital line of exactly ``length`` taps, each ``1/length``, through the
    centre at ``angle`` degrees (counter-clockwise from the +column direction
    as displayed). It steps one pixel at a time along its major axis; the
    other coordinate is ``offset·tan`` (or ``cot``) rounded half up. All-zero
    outer rows/columns are trimmed in pairs, so ``angle=0`` gives
    ``ones(1, length) / length`` and ``angle=45`` an anti-diagonal.
    """
    length = _positive_int(length, "length")
    if length > _MAX_SIZE:
        raise KernelError(f"`length` must be at most {_MAX_SIZE}, got {length}")
    angle_rad = math.radians(_finite(angle, "angle"))
    centre = (length - 1) / 2
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    major = _offsets(length)
    if abs(cos) >= abs(sin):  # step along columns; rows go up as columns go right
        col_offsets, row_offsets = major, -major * sin / cos
    else:
        row_offsets, col_offsets = major, -major * cos / sin
    rows = np.floor(centre + row_offsets + 0.5).astype(int)
    cols = np.floor(centre + col_offsets + 0.5).astype(int)
    weights = np.zeros((length, length))
    weights[rows, cols] = 1.0
    while weights.shape[0] > 1 and not weights[0].any() and not weights[-1].any():
        weights = weights[1:-1]
    while weights.shape[1] > 1 and not weights[:, 0].any() and not weights[:, -1].any():
        weights = weights[:, 1:-1]
    return weights / weights.sum()


# --- the parametric registry ----------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a generator: its keyword, kind and short label."""

    keyword: str  # the Python keyword of the generator
    integer: bool
    default: float | None  # None: computed (shown as "auto")
    abbreviation: str  # used in kernel names: gaussian:sigma=2 → gaussian-s2


@dataclass(frozen=True)
class Generator:
    """A parametric kernel: ``name:key=value,…`` → weights."""

    name: str
    function: Callable[..., np.ndarray]
    params: Mapping[str, Param]
    description: str

    @property
    def params_text(self) -> str:
        """``"sigma=1, size=auto"``: the parameters with their defaults."""
        return ", ".join(
            f"{key}={'auto' if p.default is None else f'{p.default:g}'}"
            for key, p in self.params.items()
        )


def _param(keyword: str, default: float | None, abbreviation: str, integer: bool = False) -> Param:
    return Param(keyword, integer, default, abbreviation)


GENERATORS: dict[str, Generator] = {
    generator.name: generator
    for generator in (
        Generator("box", box, {"size": _param("size", 3, "", integer=True)},
                  "mean filter ones(k, k)/k²"),
        Generator("gaussian", gaussian,
                  {"sigma": _param("sigma", 1.0, "s"),
                   "size": _param("size", None, "n", integer=True)},
                  "Gaussian blur, sum 1, size 2·ceil(3σ)+1"),
        Generator("log", log,
                  {"sigma": _param("sigma", 1.4, "s"),
                   "size": _param("size", None, "n", integer=True)},
                  "Laplacian of Gaussian, zero-sum, negative centre"),
        Generator("dog", dog,
                  {"sigma1": _param("sigma1", 1.0, "s"), "sigma2": _param("sigma2", 1.6, "t"),
                   "size": _param("size", None, "n", integer=True)},
                  "difference of Gaussians G(σ1) − G(σ2), zero-sum"),
        Generator("gabor", gabor,
                  {"theta": _param("theta", 0.0, "t"), "lambda": _param("lambda_", 8.0, "l"),
                   "sigma": _param("sigma", None, "s"), "gamma": _param("gamma", 0.5, "g"),
                   "psi": _param("psi", 0.0, "p"),
                   "size": _param("size", None, "n", integer=True)},
                  "Gabor (real part); θ, ψ in degrees, σ default 0.56λ"),
        Generator("motion", motion,
                  {"length": _param("length", 9, "", integer=True),
                   "angle": _param("angle", 0.0, "a")},
                  "linear motion blur, line of equal taps, angle in degrees"),
    )
}


def _label_value(value: float) -> str:
    """A number for a file-name label: ``1.5`` → ``1p5``, ``-45`` → ``-45``."""
    return f"{value:g}".replace(".", "p").replace("+", "")


def make_parametric(name: str, params: Mapping[str, float]) -> KernelBank:
    """Generate the parametric kernel ``name`` with ``params`` (CLI names) as a bank of one.

    The kernel's label lists the given parameters: ``gaussian`` with
    ``{"sigma": 2}`` → ``gaussian-s2``; ``box`` with ``{"size": 5}`` → ``box-5``.

    Raises
    ------
    KernelError
        Unknown generator or parameter name, or a value the generator rejects.
    """
    generator = GENERATORS.get(name)
    if generator is None:
        raise KernelError(f"no parametric kernel {name!r}; choose from {', '.join(GENERATORS)}")
    kwargs: dict[str, float | int] = {}
    label = name
    for key, value in params.items():
        spec = generator.params.get(key)
        if spec is None:
            raise KernelError(
                f"{name} has no parameter {key!r}; it takes {', '.join(generator.params)}"
            )
        if spec.integer:
            if not float(value).is_integer() or value < 1:
                raise KernelError(f"`{key}` must be a positive integer, got {value:g}")
            value = int(value)
        kwargs[spec.keyword] = value
        label += "-" + spec.abbreviation + _label_value(value)
    with np.errstate(all="ignore"):
        weights = generator.function(**kwargs)
    if not np.isfinite(weights).all():
        raise KernelError(f"{name}: these parameters give non-finite weights (too small or large)")
    shown = ", ".join(f"{key}={value:g}" for key, value in params.items())
    description = generator.description + (f" ({shown})" if shown else "")
    return KernelBank(label, (Kernel(label, weights, description),))
