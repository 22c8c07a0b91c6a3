"""Pure geometry of 2-D convolution: pads, output sizes, receptive fields.

This module imports nothing heavier than the standard library, so that
``convcli shape`` answers fast. Every other part of convcli takes its sizes
from here: there is one copy of each formula.

Conventions (``../shared/SPEC.md``):

* effective kernel size ``k_eff = d·(k − 1) + 1``
* forward: ``H' = floor((H + pad_before + pad_after − k_eff) / s) + 1``
* transposed: ``H' = (H − 1)·s − pad_before − pad_after + k_eff + output_padding``
* ``same`` is TensorFlow's SAME / ONNX's SAME_UPPER: ``out = ceil(H / s)``,
  ``total = max((out − 1)·s + k_eff − H, 0)``, ``before = total // 2``,
  ``after = total − before`` (the odd pixel goes to the bottom/right).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from convcli.errors import ShapeError

__all__ = [
    "PADDING_NAMES",
    "AxisGeometry",
    "LayerField",
    "Padding",
    "axis_geometry",
    "dropped_rows",
    "effective_kernel_size",
    "normalize_padding",
    "output_size",
    "pair",
    "parse_int_pair",
    "parse_padding_text",
    "receptive_field",
    "resolve_padding",
    "resolve_padding2d",
]

PADDING_NAMES = ("valid", "same", "full")

#: A padding argument: a name, one int for all sides, ``(rows, cols)`` or
#: ``(top, bottom, left, right)``.
Padding = Union[str, int, Sequence[int]]


def _is_int(value: object) -> bool:
    """True for Python and numpy integers, never for bool or float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return type(value).__name__.startswith(("int", "uint")) and hasattr(value, "__index__")


def pair(value: object, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or a ``(rows, cols)`` pair, each at least ``minimum``.

    Parameters
    ----------
    value : int or sequence of two ints
        One value for both axes, or one per axis.
    name : str
        The parameter's name, used in the error message.
    minimum : int
        Smallest allowed value (1 for stride and dilation, 0 for output padding).

    Returns
    -------
    tuple of int
        ``(rows, cols)``.

    Raises
    ------
    ShapeError
        When the value is not an int or a pair of ints, or is below ``minimum``.
    """
    if _is_int(value):
        values = (int(value), int(value))  # type: ignore[call-overload]
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        values = (int(value[0]), int(value[1]))
    else:
        raise ShapeError(f"`{name}` must be an integer or a pair of integers, got {value!r}")
    for v in values:
        if v < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ShapeError(f"`{name}` must be {what} or a pair of them, got {value!r}")
    return values


def normalize_padding(padding: Padding) -> str | tuple[int, int, int, int]:
    """Turn a padding argument into a name or ``(top, bottom, left, right)``.

    Raises
    ------
    ShapeError
        For an unknown name, a wrong number of values or a negative amount.
    """
    if isinstance(padding, str):
        name = padding.strip().lower()
        if name in PADDING_NAMES:
            return name
        try:
            return normalize_padding(parse_padding_text(name))
        except ShapeError:
            raise ShapeError(
                f"`padding` must be one of {', '.join(PADDING_NAMES)}, N, 'PH,PW' or "
                f"'T,B,L,R', got {padding!r}"
            ) from None
    if _is_int(padding):
        values: tuple[int, ...] = (int(padding),) * 4  # type: ignore[call-overload]
    elif isinstance(padding, (tuple, list)) and all(map(_is_int, padding)):
        if len(padding) == 2:
            values = (int(padding[0]),) * 2 + (int(padding[1]),) * 2
        elif len(padding) == 4:
            values = tuple(int(v) for v in padding)
        else:
            raise ShapeError(
                f"`padding` needs 1, 2 (rows, cols) or 4 (top, bottom, left, right) "
                f"values, got {len(padding)}: {tuple(padding)!r}"
            )
    else:
        raise ShapeError(f"`padding` must be a name, an int or a tuple of ints, got {padding!r}")
    if min(values) < 0:
        raise ShapeError(f"`padding` must not be negative, got {padding!r}")
    return values  # type: ignore[return-value]


def parse_int_list(text: str, name: str) -> tuple[int, ...]:
    """Parse ``"3"``, ``"3,5"`` or ``"3x5"`` (also spaces) into a tuple of ints."""
    cleaned = text.strip().lower().replace("x", ",").replace(" ", ",")
    parts = [p for p in cleaned.split(",") if p != ""]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ShapeError(f"`{name}` must be integers written N or A,B, got {text!r}") from None
    if not values:
        raise ShapeError(f"`{name}` is empty")
    return values


def parse_int_pair(text: str, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Parse ``"N"`` or ``"ROWS,COLS"`` into a validated pair (see :func:`pair`)."""
    values = parse_int_list(text, name)
    if len(values) not in (1, 2):
        raise ShapeError(f"`{name}` takes N or ROWS,COLS, got {text!r}")
    return pair(values[0] if len(values) == 1 else values, name, minimum=minimum)


def parse_padding_text(text: str) -> str | tuple[int, int, int, int]:
    """Parse a padding as written on the command line.

    ``valid``, ``same``, ``full``, ``N``, ``PH,PW`` or ``T,B,L,R``.
    """
    name = text.strip().lower()
    if name in PADDING_NAMES:
        return name
    values = parse_int_list(name, "padding")
    if len(values) == 3:
        raise ShapeError(f"`padding` takes N, PH,PW or T,B,L,R (not 3 values), got {text!r}")
    return normalize_padding(values[0] if len(values) == 1 else values)  # type: ignore[return-value]


def effective_kernel_size(k: int, dilation: int = 1) -> int:
    """``k_eff = d·(k − 1) + 1``: the span of a dilated kernel."""
    return dilation * (k - 1) + 1


def _check_axis(n: int, k: int, stride: int, dilation: int) -> None:
    if not _is_int(n) or n < 1:
        raise ShapeError(f"input size must be a positive integer, got {n!r}")
    if not _is_int(k) or k < 1:
        raise ShapeError(f"kernel size must be a positive integer, got {k!r}")
    if not _is_int(stride) or stride < 1:
        raise ShapeError(f"`stride` must be a positive integer, got {stride!r}")
    if not _is_int(dilation) or dilation < 1:
        raise ShapeError(f"`dilation` must be a positive integer, got {dilation!r}")


def _axis_pads(padding: object) -> str | tuple[int, int]:
    """One axis' padding: a name, an int, or ``(before, after)``."""
    if isinstance(padding, str):
        name = padding.strip().lower()
        if name not in PADDING_NAMES:
            raise ShapeError(f"`padding` must be one of {', '.join(PADDING_NAMES)}, got {padding!r}")
        return name
    if _is_int(padding):
        p = int(padding)  # type: ignore[call-overload]
        before_after = (p, p)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 and all(map(_is_int, padding)):
        before_after = (int(padding[0]), int(padding[1]))
    else:
        raise ShapeError(
            f"one axis' `padding` must be a name, an int or (before, after), got {padding!r}"
        )
    if min(before_after) < 0:
        raise ShapeError(f"`padding` must not be negative, got {padding!r}")
    return before_after


def resolve_padding(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: object = "valid",
    dilation: int = 1,
    transposed: bool = False,
    output_padding: int = 0,
) -> tuple[int, int]:
    """The ``(before, after)`` pads that a padding argument means on one axis.

    Parameters
    ----------
    n, k : int
        Input size and kernel size along the axis.
    stride, dilation : int
        Positive integers.
    padding : str, int or (int, int)
        ``valid`` (0, 0); ``full`` (k_eff − 1 on both sides); ``same``
        (TF SAME / ONNX SAME_UPPER, see the module notes); an int for both
        sides; or ``(before, after)``.
    transposed : bool
        For transposed convolution the pads are rows *cropped* from the full
        scatter result. ``same`` then gives ``H' = n·s`` with
        ``total = k_eff − s + output_padding`` split as ``before = total // 2``;
        when ``total < 0`` (a kernel shorter than the stride) ``after`` is
        negative: that many zero rows are appended.
    output_padding : int
        Only with ``transposed``.

    Returns
    -------
    tuple of int
        ``(before, after)``.
    """
    _check_axis(n, k, stride, dilation)
    k_eff = effective_kernel_size(k, dilation)
    pads = _axis_pads(padding)
    if pads == "valid":
        return (0, 0)
    if pads == "full":
        if transposed:
            raise ShapeError("`padding='full'` is not defined for transposed convolution")
        return (k_eff - 1, k_eff - 1)
    if pads == "same":
        if transposed:
            total = k_eff - stride + output_padding
            before = max(total, 0) // 2
            return (before, total - before)
        out = -(-n // stride)
        total = max((out - 1) * stride + k_eff - n, 0)
        return (total // 2, total - total // 2)
    return pads  # type: ignore[return-value]


def resolve_padding2d(
    size: Sequence[int],
    kernel: Sequence[int],
    *,
    stride: object = 1,
    padding: Padding = "valid",
    dilation: object = 1,
    transposed: bool = False,
    output_padding: object = 0,
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` pads for an ``(H, W)`` input and ``(kh, kw)`` kernel.

    See :func:`resolve_padding` for the meaning of each padding name.
    """
    strides = pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    out_pads = pair(output_padding, "output_padding", minimum=0)
    norm = normalize_padding(padding)
    if isinstance(norm, str):
        per_axis: tuple[object, object] = (norm, norm)
    else:
        per_axis = ((norm[0], norm[1]), (norm[2], norm[3]))
    top, bottom = resolve_padding(
        size[0], kernel[0], stride=strides[0], padding=per_axis[0], dilation=dilations[0],
        transposed=transposed, output_padding=out_pads[0],
    )
    left, right = resolve_padding(
        size[1], kernel[1], stride=strides[1], padding=per_axis[1], dilation=dilations[1],
        transposed=transposed, output_padding=out_pads[1],
    )
    return (top, bottom, left, right)


def output_size(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: object = "valid",
    dilation: int = 1,
    transposed: bool = False,
    output_padding: int = 0,
) -> int:
    """Output size along one axis.

    Forward: ``H' = floor((H + before + after − k_eff) / s) + 1``.
    Transposed: ``H' = (H − 1)·s − before − after + k_eff + output_padding``.

    Raises
    ------
    ShapeError
        When ``H' < 1`` (kernel larger than the padded input), when
        ``output_padding`` is not in ``[0, max(stride, dilation))`` for a
        transposed convolution, or when it is given to a forward one.
    """
    before, after = resolve_padding(
        n, k, stride=stride, padding=padding, dilation=dilation,
        transposed=transposed, output_padding=output_padding,
    )
    k_eff = effective_kernel_size(k, dilation)
    if transposed:
        if not _is_int(output_padding) or output_padding < 0:
            raise ShapeError(f"`output_padding` must be a non-negative integer, got {output_padding!r}")
        if output_padding >= max(stride, dilation):
            raise ShapeError(
                f"`output_padding` must be smaller than max(stride, dilation) = "
                f"{max(stride, dilation)}, got {output_padding}"
            )
        out = (n - 1) * stride - before - after + k_eff + output_padding
        if out < 1:
            raise ShapeError(
                f"transposed output size would be {out} < 1: (n−1)·s − pads + k_eff + op = "
                f"({n}−1)·{stride} − {before + after} + {k_eff} + {output_padding}"
            )
        return out
    if output_padding:
        raise ShapeError("`output_padding` only applies to transposed convolution")
    span = n + before + after
    if span < k_eff:
        raise ShapeError(
            f"kernel (effective size {k_eff} = {dilation}·({k}−1)+1) is larger than the padded "
            f"input ({n} + {before} + {after} = {span})"
        )
    return (span - k_eff) // stride + 1


def dropped_rows(n: int, k: int, *, stride: int = 1, padding: object = "valid", dilation: int = 1) -> int:
    """Rows (of input plus padding) at the end that the kernel never reaches.

    ``(H + before + after − k_eff) mod s``: non-zero when the stride does not
    divide the span, i.e. "the last convolution is dropped".
    """
    before, after = resolve_padding(n, k, stride=stride, padding=padding, dilation=dilation)
    k_eff = effective_kernel_size(k, dilation)
    output_size(n, k, stride=stride, padding=padding, dilation=dilation)
    return (n + before + after - k_eff) % stride


@dataclass(frozen=True)
class AxisGeometry:
    """Everything about one axis of one layer (used by ``convcli shape``)."""

    size_in: int
    kernel: int
    kernel_effective: int
    stride: int
    dilation: int
    pad_before: int
    pad_after: int
    size_out: int
    dropped: int
    transposed: bool
    output_padding: int


def axis_geometry(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: object = "valid",
    dilation: int = 1,
    transposed: bool = False,
    output_padding: int = 0,
) -> AxisGeometry:
    """Collect the pads, output size and dropped rows of one axis."""
    before, after = resolve_padding(
        n, k, stride=stride, padding=padding, dilation=dilation,
        transposed=transposed, output_padding=output_padding,
    )
    out = output_size(
        n, k, stride=stride, padding=padding, dilation=dilation,
        transposed=transposed, output_padding=output_padding,
    )
    dropped = 0 if transposed else dropped_rows(n, k, stride=stride, padding=padding, dilation=dilation)
    return AxisGeometry(
        size_in=n, kernel=k, kernel_effective=effective_kernel_size(k, dilation),
        stride=stride, dilation=dilation, pad_before=before, pad_after=after,
        size_out=out, dropped=dropped, transposed=transposed, output_padding=output_padding,
    )


@dataclass(frozen=True)
class LayerField:
    """Receptive field after a layer, along one axis.

    Output index ``j`` sees input rows ``[j·jump − start, j·jump − start + size − 1]``.
    """

    size: int
    jump: int
    start: int


def receptive_field(layers: Sequence[tuple[int, int, int]]) -> list[LayerField]:
    """Receptive field of a chain of forward layers along one axis.

    Parameters
    ----------
    layers : sequence of (k_eff, stride, pad_before)
        Effective kernel size (dilation included), stride and the pad on the
        leading side, first layer first. Pooling layers follow the same rule.

    Returns
    -------
    list of LayerField
        After each layer: ``r = Σ_l (k_l − 1)·Π_{i<l} s_i + 1``,
        ``jump = Π_l s_l``, ``start = Σ_l p_l·Π_{i<l} s_i``.
    """
    size, jump, start = 1, 1, 0
    fields = []
    for k_eff, stride, pad in layers:
        if k_eff < 1 or stride < 1 or pad < 0:
            raise ShapeError(f"bad layer (k_eff={k_eff}, stride={stride}, pad={pad})")
        size += (k_eff - 1) * jump
        start += pad * jump
        jump *= stride
        fields.append(LayerField(size=size, jump=jump, start=start))
    return fields


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)

