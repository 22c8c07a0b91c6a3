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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from convcli.errors import ShapeError

if TYPE_CHECKING:  # fractions (with its regexes) loads only for receptive fields
    from fractions import Fraction

__all__ = [
    "LAYER_KINDS",
    "PADDING_NAMES",
    "AxisGeometry",
    "ChainStep",
    "FieldNumber",
    "LayerField",
    "LayerSpec",
    "Padding",
    "PaddingSolution",
    "axis_geometry",
    "chain_geometry",
    "dropped_rows",
    "effective_kernel_size",
    "formula_text",
    "normalize_padding",
    "output_size",
    "pair",
    "parse_int_pair",
    "parse_layer_spec",
    "parse_padding_text",
    "raw_output_size",
    "receptive_field",
    "resolve_padding",
    "resolve_padding2d",
    "solve_output_padding",
    "solve_padding",
    "transposed_output_range",
]

PADDING_NAMES = ("valid", "same", "full")

#: A padding argument: a name, one int for all sides, ``(rows, cols)`` or
#: ``(top, bottom, left, right)``.
Padding = str | int | Sequence[int]


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
        return parse_padding_text(name)
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
    """Parse ``"3"``, ``"3,5"``, ``"3x5"`` or ``"3 5"`` into a tuple of ints.

    Every separator must stand between two integers: ``"x,1"`` or ``"1,,2"``
    is an error, not ``(1,)`` or ``(1, 2)``.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        raise ShapeError(f"`{name}` is empty")
    parts = re.split(r"\s*[,x]\s*|\s+", cleaned)
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ShapeError(f"`{name}` must be integers written N or A,B, got {text!r}") from None


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
    try:
        values = parse_int_list(name, "padding")
    except ShapeError:
        raise ShapeError(
            f"`padding` must be one of {', '.join(PADDING_NAMES)}, N, 'PH,PW' or 'T,B,L,R', got {text!r}"
        ) from None
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


#: A receptive-field quantity: an int, or a Fraction once a transposed layer
#: (fractional stride ``1/s``) is in the chain.
FieldNumber = Union[int, "Fraction"]  # a string: Fraction loads lazily


def _simplify(value: Fraction) -> FieldNumber:
    """A Fraction with denominator 1 becomes an int."""
    return value.numerator if value.denominator == 1 else value


@dataclass(frozen=True)
class LayerField:
    """Receptive field after a layer, along one axis.

    Output index ``j`` sees input rows ``[j·jump − start, j·jump − start + size − 1]``.
    After a transposed layer these may be fractions (see :func:`receptive_field`).
    """

    size: FieldNumber
    jump: FieldNumber
    start: FieldNumber


def receptive_field(layers: Sequence[tuple]) -> list[LayerField]:
    """Receptive field of a chain of layers along one axis.

    Parameters
    ----------
    layers : sequence of (k_eff, stride, pad_before) or (k_eff, stride, pad_before, transposed)
        Effective kernel size (dilation included), stride and the pad on the
        leading side (for a transposed layer: the rows cropped at the top),
        first layer first. Pooling layers follow the same rule as convolutions.

    Returns
    -------
    list of LayerField
        After each layer, for forward layers (SPEC "Receptive field of a chain"):
        ``r = Σ_l (k_l − 1)·Π_{i<l} s_i + 1``, ``jump = Π_l s_l``,
        ``start = Σ_l p_l·Π_{i<l} s_i``.

    Notes
    -----
    A transposed layer (kernel ``k_eff``, stride ``s``, crop ``p``) makes its
    output row ``o`` from input rows ``i`` with ``s·i ≤ o + p ≤ s·i + k_eff − 1``,
    i.e. ``i ∈ [(o + p − k_eff + 1)/s, (o + p)/s]``. That is the forward rule
    with a *fractional* layer: stride ``1/s``, ``k − 1 = (k_eff − 1)/s`` and
    pad ``(k_eff − 1 − p)/s``. So after a transposed layer the jump is a
    :class:`fractions.Fraction` (e.g. ``1/2``), and ``size`` and ``start``
    may be fractions too: output ``j`` sees the real interval
    ``[j·jump − start, j·jump − start + size − 1]`` of input rows, and the
    rows it really reads are the integers inside it (how many depends on the
    phase of ``j``: ``floor`` or ``ceil`` of ``size``). Values that are whole
    numbers are returned as ``int``.
    """
    from fractions import Fraction

    size, jump, start = Fraction(1), Fraction(1), Fraction(0)
    fields = []
    for layer in layers:
        k_eff, stride, pad = layer[:3]
        transposed = bool(layer[3]) if len(layer) > 3 else False
        if k_eff < 1 or stride < 1 or (pad < 0 and not transposed):
            raise ShapeError(f"bad layer (k_eff={k_eff}, stride={stride}, pad={pad})")
        if transposed:
            jump_in = jump / stride
            size += (k_eff - 1) * jump_in
            start += (k_eff - 1 - pad) * jump_in
            jump = jump_in
        else:
            size += (k_eff - 1) * jump
            start += pad * jump
            jump *= stride
        fields.append(LayerField(size=_simplify(size), jump=_simplify(jump), start=_simplify(start)))
    return fields


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)



def formula_text(axis: AxisGeometry) -> str:
    """The output-size formula of one axis with its numbers filled in.

    Examples: ``floor((224 + 0 + 1 − 3) / 2) + 1 = 112`` (forward) and
    ``(3 − 1)·2 − 1 − 1 + 3 + 1 = 6`` (transposed). A dilated kernel gets its
    ``k_eff = d·(k − 1) + 1`` written first.
    """
    parts = []
    if axis.dilation != 1:
        parts.append(f"k_eff = {axis.dilation}·({axis.kernel} − 1) + 1 = {axis.kernel_effective}; ")
    k_eff = axis.kernel_effective
    if axis.transposed:
        after = f"({axis.pad_after})" if axis.pad_after < 0 else str(axis.pad_after)
        parts.append(
            f"({axis.size_in} − 1)·{axis.stride} − {axis.pad_before} − {after} + {k_eff} "
            f"+ {axis.output_padding} = {axis.size_out}"
        )
    else:
        parts.append(
            f"floor(({axis.size_in} + {axis.pad_before} + {axis.pad_after} − {k_eff}) "
            f"/ {axis.stride}) + 1 = {axis.size_out}"
        )
    return "".join(parts)


def raw_output_size(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: object = "valid",
    dilation: int = 1,
    transposed: bool = False,
    output_padding: int = 0,
) -> int:
    """The output-size formula without the ``H' ≥ 1`` check (may be 0 or negative).

    Used to report *how* impossible a layer is; use :func:`output_size` to
    get a validated size.
    """
    before, after = resolve_padding(
        n, k, stride=stride, padding=padding, dilation=dilation,
        transposed=transposed, output_padding=output_padding,
    )
    k_eff = effective_kernel_size(k, dilation)
    if transposed:
        return (n - 1) * stride - before - after + k_eff + output_padding
    return (n + before + after - k_eff) // stride + 1


def transposed_output_range(
    n: int, k: int, *, stride: int = 1, padding: object = 0, dilation: int = 1
) -> tuple[int, int]:
    """Smallest and largest transposed output size over every allowed output_padding.

    ``output_padding`` runs over ``0 … max(stride, dilation) − 1``; with
    ``same`` the size is always ``n·s``.

    Raises
    ------
    ShapeError
        When no output_padding gives a size of at least 1.
    """
    sizes = []
    for op in range(max(stride, dilation)):
        try:
            sizes.append(output_size(
                n, k, stride=stride, padding=padding, dilation=dilation,
                transposed=True, output_padding=op,
            ))
        except ShapeError:
            continue
    if not sizes:
        # Re-raise the op = 0 error: it says why.
        output_size(n, k, stride=stride, padding=padding, dilation=dilation, transposed=True)
    return (min(sizes), max(sizes))


@dataclass(frozen=True)
class PaddingSolution:
    """Paddings of one forward axis that give a wanted output size.

    Any total ``total_min ≤ before + after ≤ total_max`` works. ``before`` and
    ``after`` are the smallest total split like ``same`` (the odd pixel at
    the bottom/right); ``symmetric`` is the smallest ``p`` with ``(p, p)``
    in range (PyTorch's ``padding=p``), or None when no even total fits.
    """

    target: int
    before: int
    after: int
    total_min: int
    total_max: int
    symmetric: int | None


def solve_padding(n: int, k: int, target: int, *, stride: int = 1, dilation: int = 1) -> PaddingSolution:
    """Find the pads of a forward convolution that give ``target`` output rows.

    ``floor((n + T − k_eff) / s) + 1 = target`` holds for every total pad
    ``T`` with ``(target − 1)·s ≤ n + T − k_eff ≤ (target − 1)·s + s − 1``,
    and ``T ≥ 0``.

    Raises
    ------
    ShapeError
        When ``target < 1`` or no non-negative padding reaches it (the
        unpadded output is already larger).
    """
    _check_axis(n, k, stride, dilation)
    if not _is_int(target) or target < 1:
        raise ShapeError(f"`target` must be a positive integer, got {target!r}")
    k_eff = effective_kernel_size(k, dilation)
    total_max = (target - 1) * stride + stride - 1 + k_eff - n
    if total_max < 0:
        smallest = (n - k_eff) // stride + 1
        raise ShapeError(
            f"no padding gives {target}: with no padding the output is already {smallest} "
            f"(floor(({n} − {k_eff}) / {stride}) + 1); a larger stride or kernel is needed"
        )
    total_min = max((target - 1) * stride + k_eff - n, 0)
    even = total_min + total_min % 2
    symmetric = even // 2 if even <= total_max else None
    return PaddingSolution(
        target=target, before=total_min // 2, after=total_min - total_min // 2,
        total_min=total_min, total_max=total_max, symmetric=symmetric,
    )


def solve_output_padding(
    n: int, k: int, target: int, *, stride: int = 1, padding: object = 0, dilation: int = 1
) -> int:
    """The ``output_padding`` of a transposed convolution that gives ``target`` rows.

    ``op = target − ((n − 1)·s − before − after + k_eff)`` must lie in
    ``[0, max(s, d))``.

    Raises
    ------
    ShapeError
        When no allowed output_padding reaches ``target``; the message gives
        the reachable range and, when one exists, a symmetric padding
        ``p`` with an output_padding that does.
    """
    if not _is_int(target) or target < 1:
        raise ShapeError(f"`target` must be a positive integer, got {target!r}")
    for op in range(max(stride, dilation)):
        try:
            size = output_size(
                n, k, stride=stride, padding=padding, dilation=dilation,
                transposed=True, output_padding=op,
            )
        except ShapeError:
            continue
        if size == target:
            return op
    try:
        low, high = transposed_output_range(n, k, stride=stride, padding=padding, dilation=dilation)
        reach = f"output_padding reaches {low}…{high} only"
    except ShapeError as exc:
        reach = f"every output_padding fails ({exc})"
    message = f"no output_padding gives {target}: with this padding {reach}"
    k_eff = effective_kernel_size(k, dilation)
    for op in range(max(stride, dilation)):
        total = (n - 1) * stride + k_eff + op - target
        if total >= 0 and total % 2 == 0:
            message += f"; padding {total // 2} with output_padding {op} gives {target}"
            break
    raise ShapeError(message)


LAYER_KINDS = ("conv", "pool", "tconv")
_LAYER_KEYS = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "op": "output_padding"}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a chain: kind, kernel ``(kh, kw)``, stride, padding, dilation.

    ``padding`` is a name or ``(top, bottom, left, right)``;
    ``output_padding`` only applies to ``tconv``.
    """

    kind: str
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: str | tuple[int, int, int, int] = "valid"
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    text: str = ""

    @property
    def transposed(self) -> bool:
        """True for a transposed convolution (``tconv``)."""
        return self.kind == "tconv"

    def axis_padding(self, axis: int) -> str | tuple[int, int]:
        """The padding of axis 0 (rows) or 1 (columns): a name or ``(before, after)``."""
        if isinstance(self.padding, str):
            return self.padding
        return (self.padding[2 * axis], self.padding[2 * axis + 1])


def parse_layer_spec(text: str) -> LayerSpec:
    """Parse a chain layer written ``KIND:key=value,…``.

    ``KIND`` is ``conv``, ``pool`` or ``tconv``; keys ``k`` (kernel, required),
    ``s`` (stride; default 1, for ``pool`` the kernel size as in PyTorch),
    ``p`` (padding: ``valid``, ``same``, ``full``, ``N``, ``PH,PW`` or
    ``T,B,L,R``; default 0), ``d`` (dilation, default 1), ``op``
    (output_padding, ``tconv`` only). A value for two axes is written
    ``3x5`` or ``3,5``: a comma-separated item without ``=`` continues the
    previous value. Examples: ``conv:k=7,s=2,p=3``, ``pool:k=3,s=2,p=1``,
    ``conv:k=3,p=same,d=2``, ``tconv:k=4,s=2,p=1,op=1``, ``conv:k=1,5,p=0,2``.

    Raises
    ------
    ShapeError
        Naming the layer text and the bad part.
    """
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in LAYER_KINDS:
        raise ShapeError(
            f"layer {text!r}: kind must be one of {', '.join(LAYER_KINDS)} "
            f"(written KIND:k=3,s=2,p=1), got {kind!r}"
        )
    values: dict[str, str] = {}
    last = None
    for item in (rest.split(",") if sep else []):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            key, _, value = item.partition("=")
            key = key.strip().lower()
            if key not in _LAYER_KEYS:
                raise ShapeError(
                    f"layer {text!r}: unknown key {key!r} (use k, s, p, d"
                    f"{', op' if kind == 'tconv' else ''})"
                )
            if key in values:
                raise ShapeError(f"layer {text!r}: {key!r} given twice")
            values[key] = value.strip()
            last = key
        elif last is None:
            raise ShapeError(f"layer {text!r}: expected key=value, got {item!r}")
        else:
            values[last] += "," + item
    if "k" not in values:
        raise ShapeError(f"layer {text!r}: the kernel size k= is required, e.g. {kind}:k=3")
    if "op" in values and kind != "tconv":
        raise ShapeError(f"layer {text!r}: `op` (output_padding) only applies to tconv")

    def _pair(key: str, minimum: int = 1) -> tuple[int, int]:
        try:
            return parse_int_pair(values[key], _LAYER_KEYS[key], minimum=minimum)
        except ShapeError as exc:
            raise ShapeError(f"layer {text!r}: {exc}") from None

    kernel = _pair("k")
    stride = _pair("s") if "s" in values else (kernel if kind == "pool" else (1, 1))
    dilation = _pair("d") if "d" in values else (1, 1)
    output_padding = _pair("op", minimum=0) if "op" in values else (0, 0)
    try:
        padding = parse_padding_text(values.get("p", "0"))
    except ShapeError as exc:
        raise ShapeError(f"layer {text!r}: {exc}") from None
    if isinstance(padding, tuple) and padding == (0, 0, 0, 0):
        padding = "valid"
    return LayerSpec(
        kind=kind, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
        output_padding=output_padding, text=text.strip(),
    )


@dataclass(frozen=True)
class ChainStep:
    """One layer of a chain applied to an input size.

    ``size_out`` is the raw formula's value; when ``problem`` is set it is
    below 1 (or otherwise impossible) and the chain stops there.
    ``field`` is the receptive field after this layer, per axis.
    """

    layer: LayerSpec
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    pads: tuple[int, int, int, int]
    field: tuple[LayerField, LayerField]
    axes: tuple[AxisGeometry, AxisGeometry] | None
    problem: str | None = None


def chain_geometry(size: Sequence[int], layers: Sequence[LayerSpec]) -> list[ChainStep]:
    """Sizes and receptive fields through a chain of layers.

    Each layer's pads are resolved for the size that reaches it (``same``
    depends on it). The chain stops after the first layer whose output is
    below 1; that step carries the raw size and a ``problem`` message.

    Raises
    ------
    ShapeError
        For an impossible layer other than a too-small output (e.g. an
        output_padding too large for the stride).
    """
    rows, cols = pair(tuple(size), "size")
    steps: list[ChainStep] = []
    per_axis: tuple[list, list] = ([], [])
    for index, layer in enumerate(layers, start=1):
        sizes = (rows, cols)
        axes = []
        raw = []
        pads = []
        problem = None
        for axis in (0, 1):
            options = dict(
                stride=layer.stride[axis], padding=layer.axis_padding(axis),
                dilation=layer.dilation[axis], transposed=layer.transposed,
                output_padding=layer.output_padding[axis],
            )
            before, after = resolve_padding(sizes[axis], layer.kernel[axis], **options)
            pads += [before, after]
            raw_size = raw_output_size(sizes[axis], layer.kernel[axis], **options)
            raw.append(raw_size)
            if raw_size < 1:
                name = "rows" if axis == 0 else "columns"
                problem = problem or (
                    f"layer {index} ({layer.text or layer.kind}) leaves {raw_size} {name} "
                    f"from {sizes[axis]}: output < 1"
                )
                continue
            axes.append(axis_geometry(sizes[axis], layer.kernel[axis], **options))
            per_axis[axis].append((
                axes[-1].kernel_effective, layer.stride[axis], before, layer.transposed,
            ))
        if problem:
            for axis in (0, 1):
                if len(per_axis[axis]) < index:
                    k_eff = effective_kernel_size(layer.kernel[axis], layer.dilation[axis])
                    per_axis[axis].append((k_eff, layer.stride[axis], pads[2 * axis], layer.transposed))
        fields = (receptive_field(per_axis[0])[-1], receptive_field(per_axis[1])[-1])
        steps.append(ChainStep(
            layer=layer, size_in=sizes, size_out=(raw[0], raw[1]), pads=tuple(pads),
            field=fields, axes=None if problem else (axes[0], axes[1]), problem=problem,
        ))
        if problem:
            break
        rows, cols = raw
    return steps
