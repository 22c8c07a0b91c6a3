"""conv2d and conv_transpose2d: validate, normalise, dispatch to a strategy.

The operation is CNN "convolution", i.e. cross-correlation (no kernel flip)::

    O[i, j, f] = bias + Σ_m Σ_n Σ_c  P[s_y·i + d_y·m,  s_x·j + d_x·n,  c] · K[f, m, n, c]

where ``P`` is the image padded by the resolved pads with the border mode.
Arrays are channels-last: image ``(H, W, C)`` (or ``(H, W)``), bank
``(kh, kw)``, ``(F, kh, kw)`` or ``(F, kh, kw, C)``, result ``(H', W', N)``.

Channel modes (``channels``):

* ``depthwise`` (default): every kernel on every channel on its own (PyTorch
  ``groups=C``); ``N = F·C``, kernel-major: output ``f·C + c`` is kernel ``f``
  on channel ``c``. A 4-D bank gives channel ``c`` the weights ``K[f, …, c]``.
* ``sum``: each kernel sums over all channels (PyTorch ``groups=1``); a 2-D
  kernel uses the same weights on every channel; ``N = F``.
* ``gray``: the image is turned to luminance ``0.299 R + 0.587 G + 0.114 B``
  first (1 channel kept, LA → L, RGBA → RGB's luminance); ``N = F``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from convcli import engines
from convcli.borders import Border, parse_border
from convcli.engines._finite import ensure_finite
from convcli.errors import KernelError, OptionError, ShapeError
from convcli.geometry import Padding, normalize_padding, output_size, pair, resolve_padding2d

__all__ = [
    "CHANNEL_MODES",
    "conv2d",
    "conv_transpose2d",
    "grouped_conv2d",
    "luminance",
    "upsample_nearest_conv2d",
]

CHANNEL_MODES = ("depthwise", "sum", "gray")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _result_dtype(image: np.ndarray, dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float64 if image.dtype == np.float64 else np.float32)
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise OptionError(f"`dtype` must be float32 or float64, got {resolved}")
    return resolved


#: Strategies that read the image only through padded row bands
#: (:class:`convcli.engines._bands.Padder`), which convert each band to the
#: compute dtype: they take 8/16-bit pixels as they are, and no float copy of
#: the whole image is made (for a 4K RGB photo that copy is 100 MB, and on
#: the project machine the first touch of that much new memory costs ~0.2 s).
BAND_STRATEGIES = frozenset({"direct", "gemm", "separable", "native"})


def _as_image(image: Any, dtype: Any, keep_integers: bool = False, defer_check: bool = False) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` → contiguous ``(H, W, C)`` float array of finite values.

    With ``keep_integers``, uint8/uint16 pixels stay as they are (the caller
    converts them later or lets a band strategy do it).

    NaN and ±inf are refused (:mod:`convcli.engines._finite`). With
    ``defer_check``, a float image used as it is (no cast) is returned
    unchecked: the caller must check it (:func:`conv2d` lets a strategy that
    fuses the check do it).
    """
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"image must be an array of numbers: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise ShapeError(f"image must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ShapeError(f"image must be (H, W) or (H, W, C), got shape {array.shape}")
    if min(array.shape) < 1:
        raise ShapeError(f"image must not be empty, got shape {array.shape}")
    if keep_integers and array.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(array)
    source = array
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(array, dtype=_result_dtype(array, dtype))
    if source.dtype.kind == "f" and not (defer_check and array is source):
        ensure_finite(array, source)
    return array


def luminance(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` → ``(H, W, 1)`` luminance ``0.299 R + 0.587 G + 0.114 B``.

    One channel is kept as it is; two (LA) keep the first; four (RGBA) use
    RGB and ignore alpha.
    """
    channels = image.shape[2]
    if channels in (1, 2):
        return np.ascontiguousarray(image[:, :, :1])
    if channels in (3, 4):
        from convcli.engines.reduce import weighted_channel_sum

        fused = weighted_channel_sum(image, LUMA_WEIGHTS)  # compiled kernels, when built
        if fused is not None:
            return fused
        r, g, b = (image[:, :, i] for i in range(3))
        luma = LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b
        return np.ascontiguousarray(luma[:, :, None], dtype=image.dtype)
    raise ShapeError(
        f"`channels='gray'` needs an image with 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) "
        f"channels, got {channels}"
    )


def _as_bank(bank: Any, dtype: np.dtype) -> np.ndarray:
    """``(kh, kw)`` / ``(F, kh, kw)`` / ``(F, kh, kw, C)`` → float ``(F, kh, kw, C?)``."""
    if np.iscomplexobj(bank):
        raise KernelError(f"bank must hold real numbers, got dtype {np.asarray(bank).dtype}")
    try:
        weights = np.asarray(bank, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(f"bank must be an array of numbers: {exc}") from None
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim not in (3, 4):
        raise KernelError(
            f"bank must be (kh, kw), (F, kh, kw) or (F, kh, kw, C), got shape {weights.shape}"
        )
    if min(weights.shape) < 1:
        raise KernelError(f"bank must not be empty, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(weights))[0])
        raise KernelError(
            f"bank weights must be finite, got {weights[where]} at index {where} "
            f"of the (F, kh, kw[, C]) bank"
        )
    return weights.astype(dtype)


def _prepare(
    image: Any, bank: Any, channels: str, flip: bool, dtype: Any, keep_integers: bool = False,
    defer_check: bool = False,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Shared validation of conv2d / conv_transpose2d.

    Returns the ``(H, W, C)`` image, ``(F, kh, kw, C)`` weights (flipped when
    asked) in the compute dtype and the engine mode (``sum`` or ``depthwise``).
    With ``keep_integers`` an 8/16-bit image may stay integer (not for
    ``gray``); the weights' dtype is then the compute dtype. With
    ``defer_check`` a float image may come back unchecked for NaN/inf
    (see :func:`_as_image`; never for ``gray``).
    """
    if channels not in CHANNEL_MODES:
        raise OptionError(f"`channels` must be one of {', '.join(CHANNEL_MODES)}, got {channels!r}")
    array = _as_image(image, dtype, keep_integers and channels != "gray",
                      defer_check and channels != "gray")
    compute = array.dtype if array.dtype.kind == "f" else _result_dtype(array, dtype)
    weights = _as_bank(bank, compute)
    if flip:
        weights = weights[:, ::-1, ::-1]
    if channels == "gray":
        array = luminance(array)
    n_channels = array.shape[2]
    if weights.ndim == 4:
        bank_channels = weights.shape[3]
        if bank_channels != n_channels and not (channels == "depthwise" and bank_channels == 1):
            raise ShapeError(
                f"bank has C={bank_channels} channels but the image has C={n_channels} "
                f"(channels={channels!r}); give a (F, kh, kw) bank or a matching C"
            )
        weights = np.broadcast_to(weights, (*weights.shape[:3], n_channels))
    else:
        weights = np.broadcast_to(weights[..., None], (*weights.shape, n_channels))
    weights = np.ascontiguousarray(weights)
    mode = "depthwise" if channels == "depthwise" else "sum"
    return array, weights, mode


def _check_extent(what: str, shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse a working or output array numpy could never allocate (more bytes than an index holds)."""
    count = 1
    for n in shape:
        count *= max(int(n), 0)
    if count * itemsize > np.iinfo(np.intp).max:
        raise ShapeError(f"this geometry needs a {'×'.join(str(int(n)) for n in shape)} {what}, "
                         "too large to allocate; check padding, dilation and stride")


def _computed(run: Any, problem: Any, shape: tuple[int, ...], itemsize: int) -> np.ndarray:
    """``run(problem)``; running out of memory is a :class:`ShapeError` naming the size it needed."""
    try:
        return run(problem)
    except MemoryError:
        count = 1
        for n in shape:
            count *= int(n)
        raise ShapeError(f"not enough memory for this geometry: its {'×'.join(map(str, shape))} working "
                         f"image alone is {count * itemsize / 2**30:.1f} GiB") from None


def _is_zero(bias: Any) -> bool:
    """Whether ``bias`` is 0 (a number or numbers); anything else is for :func:`_add_bias` to judge."""
    try:
        return not np.any(np.asarray(bias, dtype=np.float64))
    except (TypeError, ValueError):
        return False


def _add_bias(out: np.ndarray, bias: Any, n_filters: int) -> np.ndarray:
    """Add a scalar, per-kernel (F) or per-output-channel (N) bias in place."""
    try:
        values = np.asarray(bias, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError(f"`bias` must be a number or a list of numbers, got {bias!r}") from None
    if not np.isfinite(values).all():
        raise ShapeError(f"`bias` must be finite, got {bias!r}")
    n_out = out.shape[2]
    if values.ndim == 0:
        if values != 0:
            out += out.dtype.type(values)
        return out
    values = values.ravel()
    if values.size == n_out:
        per_channel = values
    elif values.size == n_filters:
        per_channel = np.repeat(values, n_out // n_filters)
    else:
        raise ShapeError(
            f"`bias` must be a scalar or have F={n_filters} or N={n_out} values, got {values.size}"
        )
    out += per_channel.astype(out.dtype)
    return out


#: The compiled strategies (registered only when the extension imports).
COMPILED_METHODS = ("native", "native-separable", "native-polyphase")


def _pick(method: str, table: dict, choose: Any, problem: Any) -> tuple[str, Any]:
    name = choose(problem) if method == "auto" else method
    try:
        return name, table[name]
    except KeyError:
        names = ", ".join(["auto", *sorted(table)])
        hint = ""
        transposed = table is engines.TRANSPOSE_ENGINES
        other = engines.FORWARD_ENGINES if transposed else engines.TRANSPOSE_ENGINES
        if method in other:
            hint = (" (a strategy for forward convolution)" if transposed
                    else " (a strategy for transposed convolution: --transpose)")
        elif method in COMPILED_METHODS:
            hint = (f" ({method} is compiled, and the compiled kernels are not built here: "
                    "convcli --version says why)")
        raise OptionError(f"`method` must be one of {names}, got {method!r}{hint}") from None


def conv2d(
    image: Any,
    bank: Any,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "valid",
    border: str | Border = "zero",
    dilation: int | tuple[int, int] = 1,
    channels: str = "depthwise",
    flip: bool = False,
    bias: Any = 0.0,
    method: str = "auto",
    dtype: Any = None,
    groups: int | None = None,
    reduce: str = "none",
) -> np.ndarray:
    """2-D CNN convolution (cross-correlation) of an image with a kernel bank.

    ``O[i, j, f] = bias + Σ_{m,n,c} P[s_y·i + d_y·m, s_x·j + d_x·n, c] · K[f, m, n, c]``

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Pixel values in their native range; integers are converted.
    bank : array_like, shape (kh, kw), (F, kh, kw) or (F, kh, kw, C)
        Correlation weights. Non-square and even sizes are allowed.
    stride, dilation : int or (rows, cols)
        Positive integers.
    padding : str, int, (rows, cols) or (top, bottom, left, right)
        ``valid``, ``same`` (TF SAME / ONNX SAME_UPPER: ``H' = ceil(H/s)``,
        the odd pixel at the bottom/right), ``full`` (``k_eff − 1`` each side)
        or explicit amounts.
    border : str
        What fills the padding: ``zero``, ``constant:V``, ``reflect``,
        ``symmetric``, ``replicate`` or ``wrap`` (see :mod:`convcli.borders`).
    channels : {'depthwise', 'sum', 'gray'}
        How kernels meet colour channels (see the module notes).
    flip : bool
        Rotate each kernel by 180° first (true convolution; ``valid`` and
        ``full`` then equal ``scipy.signal.convolve2d``).
    bias : float or array_like
        A scalar, one value per kernel (F) or per output channel (N).
    method : str
        ``auto`` or a strategy name from :data:`convcli.engines.FORWARD_ENGINES`.
    dtype : {None, float32, float64}
        Compute type; default float64 for float64 input, float32 otherwise.
    groups : int, optional
        PyTorch ``groups`` G (see :func:`grouped_conv2d`); replaces
        ``channels`` (which must then not be ``gray``).
    reduce : {'none', 'magnitude', 'max', 'min', 'sum'}
        Combine the F kernels' maps channel by channel after the bias:
        ``convcli.maps.reduce_maps(result, F, reduce)``. The ``native``
        strategy fuses it into its loop (no bias; depthwise or one-channel
        maps), storing only the reduced values.

    Returns
    -------
    ndarray, shape (H', W', N)
        ``H' = floor((H + pad_top + pad_bottom − k_eff) / s) + 1`` with
        ``k_eff = d·(kh − 1) + 1``; ``N = F·C`` (depthwise) or ``F``;
        ``N / F`` with ``reduce``.

    Raises
    ------
    ShapeError, KernelError, OptionError
        For any invalid argument; the message names it and its value.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> conv2d(x, [[1, 0, -1], [2, 0, -2], [1, 0, -1]], stride=2, padding=1)[..., 0]
    array([[ -7.,  -6.],
           [-36.,  -8.]], dtype=float32)
    """
    from convcli.maps import REDUCTIONS, reduce_maps

    if reduce not in REDUCTIONS:
        raise OptionError(f"`reduce` must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
    if groups is not None:
        maps = grouped_conv2d(
            image, bank, groups=groups, stride=stride, padding=padding, border=border,
            dilation=dilation, channels=channels, flip=flip, bias=bias, method=method, dtype=dtype,
        )
        n_filters = 1 if np.ndim(bank) == 2 else np.shape(bank)[0]
        return reduce_maps(maps, n_filters, reduce) if reduce != "none" else maps
    array, weights, mode = _prepare(image, bank, channels, flip, dtype, keep_integers=True,
                                    defer_check=True)
    strides = pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    parsed_border = parse_border(border)
    rows, cols = array.shape[:2]
    kh, kw = weights.shape[1:3]
    pads = resolve_padding2d(
        (rows, cols), (kh, kw), stride=strides, padding=padding, dilation=dilations
    )
    out_shape = (
        output_size(rows, kh, stride=strides[0], padding=pads[:2], dilation=dilations[0]),
        output_size(cols, kw, stride=strides[1], padding=pads[2:], dilation=dilations[1]),
    )
    itemsize = weights.dtype.itemsize
    n_channels = array.shape[2] if array.ndim == 3 else 1
    padded = (rows + pads[0] + pads[1], cols + pads[2] + pads[3], n_channels)
    _check_extent("padded image", padded, itemsize)
    _check_extent("output", (*out_shape, weights.shape[0] * n_channels), itemsize)
    problem = engines.ForwardProblem(
        image=array, weights=weights, mode=mode, pads=pads, border=parsed_border,
        stride=strides, dilation=dilations, out_shape=out_shape,
    )
    name, run = _pick(method, engines.FORWARD_ENGINES, engines.choose_forward, problem)
    if array.dtype.kind == "f":  # not checked for NaN/inf yet (defer_check)
        if name in engines.FUSED_CHECK:
            problem = dataclasses.replace(problem, check_finite=True)
        else:
            ensure_finite(array)
    if array.dtype != weights.dtype and name not in BAND_STRATEGIES:
        problem = dataclasses.replace(problem, image=np.ascontiguousarray(array, dtype=weights.dtype))
    n_filters = weights.shape[0]
    if reduce != "none" and name == "native" and _is_zero(bias):
        from convcli.engines import native

        if native.fuses_reduce(problem):
            return _computed(lambda p: native.run(p, reduce), problem, padded, itemsize)
    out = _add_bias(_computed(run, problem, padded, itemsize), bias, n_filters)
    return reduce_maps(out, n_filters, reduce) if reduce != "none" else out


def conv_transpose2d(
    image: Any,
    bank: Any,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    channels: str = "depthwise",
    flip: bool = False,
    bias: Any = 0.0,
    method: str = "auto",
    dtype: Any = None,
    groups: int | None = None,
) -> np.ndarray:
    """Transposed convolution with PyTorch ``conv_transpose2d`` semantics.

    The adjoint (gradient) of :func:`conv2d` with the same geometry::

        full[s·i + d·m, s·j + d·n, f] += I[i, j, c] · K[f, m, n, c]   (scatter-add)
        H' = (H − 1)·s − pad_top − pad_bottom + k_eff + output_padding

    then ``pad_top`` rows are cropped at the top and ``H'`` rows kept (rows
    past the scatter extent are zeros, plus bias). In PyTorch terms the
    weight is ``W[c, f, m, n] = K[f, m, n, c]`` (``groups=1`` for ``sum``,
    ``groups=C`` for ``depthwise``).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    bank : array_like, shape (kh, kw), (F, kh, kw) or (F, kh, kw, C)
    stride, dilation : int or (rows, cols)
    padding : int, (rows, cols), (top, bottom, left, right), 'valid' or 'same'
        Rows and columns cropped from the full result. ``valid`` is 0;
        ``same`` gives ``H' = H·s`` (ONNX SAME_UPPER split of
        ``total = k_eff − s + output_padding``).
    output_padding : int or (rows, cols)
        Extra rows/columns at the bottom/right, ``0 <= op < max(s, d)``.
    channels, flip, bias, method, dtype
        As in :func:`conv2d`.
    groups : int, optional
        PyTorch ``groups`` G (see :func:`grouped_conv2d`).

    Returns
    -------
    ndarray, shape (H', W', N)
    """
    if groups is not None:
        return grouped_conv2d(
            image, bank, groups=groups, transposed=True, stride=stride, padding=padding,
            output_padding=output_padding, dilation=dilation, channels=channels, flip=flip,
            bias=bias, method=method, dtype=dtype,
        )
    array, weights, mode = _prepare(image, bank, channels, flip, dtype)
    strides = pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    out_pads = pair(output_padding, "output_padding", minimum=0)
    rows, cols = array.shape[:2]
    kh, kw = weights.shape[1:3]
    pads = resolve_padding2d(
        (rows, cols), (kh, kw), stride=strides, padding=padding, dilation=dilations,
        transposed=True, output_padding=out_pads,
    )
    norm = normalize_padding(padding)
    per_axis = (norm, norm) if isinstance(norm, str) else (norm[:2], norm[2:])
    out_shape = (
        output_size(rows, kh, stride=strides[0], padding=per_axis[0], dilation=dilations[0],
                    transposed=True, output_padding=out_pads[0]),
        output_size(cols, kw, stride=strides[1], padding=per_axis[1], dilation=dilations[1],
                    transposed=True, output_padding=out_pads[1]),
    )
    itemsize = weights.dtype.itemsize
    n_channels = array.shape[2] if array.ndim == 3 else 1
    full = ((rows - 1) * strides[0] + dilations[0] * (kh - 1) + 1 + out_pads[0],
            (cols - 1) * strides[1] + dilations[1] * (kw - 1) + 1 + out_pads[1],
            weights.shape[0] * n_channels)
    _check_extent("full (uncropped) result", full, itemsize)
    _check_extent("output", (*out_shape, weights.shape[0] * n_channels), itemsize)
    problem = engines.TransposeProblem(
        image=array, weights=weights, mode=mode, crop=(max(pads[0], 0), max(pads[2], 0)),
        stride=strides, dilation=dilations, out_shape=out_shape,
    )
    _, run = _pick(method, engines.TRANSPOSE_ENGINES, engines.choose_transpose, problem)
    out = _computed(run, problem, full, itemsize)
    return _add_bias(out, bias, weights.shape[0])


def grouped_conv2d(
    image: Any,
    bank: Any,
    *,
    groups: int,
    transposed: bool = False,
    channels: str = "sum",
    bias: Any = 0.0,
    dtype: Any = None,
    **options: Any,
) -> np.ndarray:
    """PyTorch ``groups``: input channels and filters split into G groups.

    With ``C/G`` channels and ``F/G`` filters per group, filter ``f`` of group
    ``g = f // (F/G)`` sees only that group's channels::

        O[i, j, f] = bias[f] + Σ_{m,n} Σ_{c < C/G}  P[s·i + d·m, s·j + d·n, g·C/G + c] · K[f, m, n, c]

    (transposed: the scatter-add of :func:`conv_transpose2d` per group). Output
    channels are in PyTorch's order: group 0's filters, then group 1's, …
    ``groups=1`` equals ``channels='sum'``; ``groups=C`` with F = C is a
    depthwise layer with one kernel per channel. Each group is computed by the
    ordinary ``sum`` mode on its channel slice.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    bank : array_like, shape (F, kh, kw, C/G) or (F, kh, kw)
        convcli layout (a PyTorch ``(F, C/G, kh, kw)`` weight is
        ``W.transpose(0, 2, 3, 1)``, see :func:`convcli.layers.to_bank_layout`);
        a 3-D bank uses the same weights on every channel of a group.
    groups : int
        G, a positive integer dividing both C and F.
    transposed : bool
        Use :func:`conv_transpose2d` instead of :func:`conv2d`.
    channels : str
        Must not be ``gray`` (any other value is ignored: the groups decide).
    bias : float or array_like
        A scalar or F values.
    dtype : {None, float32, float64}
    **options
        The geometry and method options of :func:`conv2d` / :func:`conv_transpose2d`.

    Returns
    -------
    ndarray, shape (H', W', F)

    Raises
    ------
    OptionError
        ``groups`` not a positive integer, or ``channels='gray'``.
    ShapeError
        G does not divide C or F, or the bank's ``C/G`` does not match.
    """
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise OptionError(f"`groups` must be a positive integer, got {groups!r}")
    if channels == "gray":
        raise OptionError("`groups` and `channels='gray'` exclude each other; convert the image first")
    groups = int(groups)
    array = _as_image(image, dtype, keep_integers=True)
    weights = _as_bank(bank, _result_dtype(array, dtype))
    n_channels, n_filters = array.shape[2], weights.shape[0]
    if n_channels % groups or n_filters % groups:
        raise ShapeError(
            f"`groups`={groups} must divide the image's C={n_channels} channels and the bank's "
            f"F={n_filters} filters"
        )
    per_group = n_channels // groups
    if weights.ndim == 4 and weights.shape[3] != per_group:
        raise ShapeError(
            f"bank has {weights.shape[3]} channels per filter but groups={groups} splits the "
            f"image's C={n_channels} into {per_group} per group (bank (F, kh, kw, C/G))"
        )
    run = conv_transpose2d if transposed else conv2d
    step = n_filters // groups
    out: np.ndarray | None = None
    for group in range(groups):
        part = run(
            array[:, :, group * per_group:(group + 1) * per_group],
            weights[group * step:(group + 1) * step], channels="sum", dtype=dtype, **options,
        )
        if out is None:
            out = np.empty((*part.shape[:2], n_filters), dtype=part.dtype)
        out[:, :, group * step:(group + 1) * step] = part
    assert out is not None
    return _add_bias(out, bias, n_filters)


def upsample_nearest_conv2d(
    image: Any,
    bank: Any,
    *,
    scale: int | tuple[int, int] = 2,
    padding: Padding = "valid",
    border: str | Border = "zero",
    dilation: int | tuple[int, int] = 1,
    channels: str = "depthwise",
    flip: bool = False,
    bias: Any = 0.0,
    method: str = "auto",
    dtype: Any = None,
) -> np.ndarray:
    """The seed's "transposed convolution": stride-1 correlation, then nearest upsampling.

    ``O[i, j, f] = Σ_{m,n,c} I[floor(i/s) + m, floor(j/s) + n, c] · K[f, m, n, c]``

    This is *not* PyTorch's ``conv_transpose2d`` (see :func:`conv_transpose2d`):
    it equals ``conv2d(image, bank, stride=1, …)`` with every output pixel
    repeated ``s`` times along rows and columns, so ``(H', W') = s·(H₁, W₁)``
    where ``(H₁, W₁)`` is the stride-1 output size.

    Examples
    --------
    >>> upsample_nearest_conv2d([[1, 2, 0], [0, 1, 3], [2, 0, 1]], [[1, 2], [-1, 1]])[..., 0]
    array([[6., 6., 4., 4.],
           [6., 6., 4., 4.],
           [0., 0., 8., 8.],
           [0., 0., 8., 8.]], dtype=float32)
    """
    scales = pair(scale, "scale")
    out = conv2d(
        image, bank, stride=1, padding=padding, border=border, dilation=dilation,
        channels=channels, flip=flip, bias=bias, method=method, dtype=dtype,
    )
    return np.repeat(np.repeat(out, scales[0], axis=0), scales[1], axis=1)
