"""Every invalid input to the core raises the right ConvcliError, naming the parameter and value."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convcli import (
    ConvcliError,
    KernelError,
    OptionError,
    ShapeError,
    conv2d,
    conv_transpose2d,
    output_size,
    resolve_padding,
    upsample_nearest_conv2d,
)
from convcli.borders import parse_border

IMAGE = np.ones((5, 6, 3))
KERNEL = np.ones((3, 3))


def forward(image=IMAGE, bank=KERNEL, **kwargs):
    """A deferred conv2d call (default: a 5×6×3 image and a 3×3 kernel)."""
    return lambda: conv2d(image, bank, **kwargs)


def transposed(image=IMAGE, bank=KERNEL, **kwargs):
    """A deferred conv_transpose2d call."""
    return lambda: conv_transpose2d(image, bank, **kwargs)


# (call, error class, fragments the message must contain: the parameter and the value)
INVALID = [
    # geometry
    pytest.param(forward(image=np.ones((4, 4)), bank=np.ones((5, 5))), ShapeError,
                 ["kernel", "5", "4"], id="kernel-larger-than-input"),
    pytest.param(forward(image=np.ones((4, 4)), bank=np.ones((3, 3)), dilation=2), ShapeError,
                 ["kernel", "effective size 5", "4"], id="dilated-kernel-larger-than-input"),
    pytest.param(forward(stride=0), ShapeError, ["`stride`", "0"], id="stride-0"),
    pytest.param(forward(stride=-2), ShapeError, ["`stride`", "-2"], id="stride-negative"),
    pytest.param(forward(stride=(1, 0)), ShapeError, ["`stride`", "(1, 0)"], id="stride-pair-0"),
    pytest.param(forward(stride=1.5), ShapeError, ["`stride`", "1.5"], id="stride-float"),
    pytest.param(forward(stride=2.0), ShapeError, ["`stride`", "2.0"], id="stride-integral-float"),
    pytest.param(forward(stride="2"), ShapeError, ["`stride`", "'2'"], id="stride-string"),
    pytest.param(forward(stride=True), ShapeError, ["`stride`", "True"], id="stride-bool"),
    pytest.param(forward(stride=(1, 2, 3)), ShapeError, ["`stride`", "(1, 2, 3)"],
                 id="stride-three-values"),
    pytest.param(forward(dilation=0), ShapeError, ["`dilation`", "0"], id="dilation-0"),
    pytest.param(forward(dilation=-1), ShapeError, ["`dilation`", "-1"], id="dilation-negative"),
    pytest.param(forward(dilation=1.0), ShapeError, ["`dilation`", "1.0"], id="dilation-float"),
    pytest.param(transposed(stride=0), ShapeError, ["`stride`", "0"], id="transposed-stride-0"),
    pytest.param(transposed(dilation=(2, -1)), ShapeError, ["`dilation`", "(2, -1)"],
                 id="transposed-dilation-negative"),
    pytest.param(forward(padding=-1), ShapeError, ["`padding`", "-1"], id="padding-negative"),
    pytest.param(forward(padding=(1, -1)), ShapeError, ["`padding`", "(1, -1)"],
                 id="padding-pair-negative"),
    pytest.param(forward(padding=(0, 0, 0, -2)), ShapeError, ["`padding`", "-2"],
                 id="padding-four-negative"),
    pytest.param(transposed(padding=-1), ShapeError, ["`padding`", "-1"],
                 id="transposed-padding-negative"),
    pytest.param(forward(padding="sme"), ShapeError, ["`padding`", "'sme'"], id="padding-name"),
    pytest.param(forward(padding=1.5), ShapeError, ["`padding`", "1.5"], id="padding-float"),
    pytest.param(forward(padding=(1, 1, 1)), ShapeError, ["`padding`", "(1, 1, 1)"],
                 id="padding-three-values"),
    pytest.param(forward(padding="1,1,1"), ShapeError, ["`padding`", "1,1,1"],
                 id="padding-three-values-text"),
    pytest.param(transposed(padding="full"), ShapeError, ["padding", "full"],
                 id="transposed-padding-full"),
    pytest.param(transposed(stride=2, output_padding=2), ShapeError,
                 ["`output_padding`", "2"], id="output-padding-equals-stride"),
    pytest.param(transposed(stride=2, dilation=3, output_padding=(0, 3)), ShapeError,
                 ["`output_padding`", "3"], id="output-padding-equals-dilation"),
    pytest.param(transposed(stride=2, output_padding=-1), ShapeError,
                 ["`output_padding`", "-1"], id="output-padding-negative"),
    pytest.param(transposed(image=np.ones((1, 1)), bank=np.ones((1, 1)), padding=1), ShapeError,
                 ["transposed output size", "-1"], id="transposed-output-empty"),
    # bank
    pytest.param(forward(bank=[1.0, 2.0, 3.0]), KernelError, ["bank", "(3,)"], id="bank-rank-1"),
    pytest.param(forward(bank=np.ones((1, 1, 3, 3, 1))), KernelError, ["bank", "(1, 1, 3, 3, 1)"],
                 id="bank-rank-5"),
    pytest.param(forward(bank=np.ones((0, 3, 3))), KernelError, ["bank", "empty", "(0, 3, 3)"],
                 id="bank-empty"),
    pytest.param(forward(bank=np.ones((2, 3, 0))), KernelError, ["bank", "empty", "(2, 3, 0)"],
                 id="bank-empty-columns"),
    pytest.param(forward(bank=[[1.0, np.nan]]), KernelError, ["bank", "finite", "nan"],
                 id="bank-nan"),
    pytest.param(forward(bank=[[1.0, np.inf]]), KernelError, ["bank", "finite", "inf"],
                 id="bank-inf"),
    pytest.param(transposed(bank=[[-np.inf]]), KernelError, ["bank", "finite", "-inf"],
                 id="transposed-bank-inf"),
    pytest.param(forward(bank=[["a", "b"]]), KernelError, ["bank", "'a'"], id="bank-text"),
    pytest.param(forward(bank=np.array([[1 + 1j]])), KernelError, ["bank", "complex128"],
                 id="bank-complex"),
    pytest.param(forward(bank=np.ones((2, 3, 3, 2)), channels="sum"), ShapeError,
                 ["C=2", "C=3", "sum"], id="bank-channels-mismatch-sum"),
    pytest.param(forward(bank=np.ones((2, 3, 3, 2)), channels="depthwise"), ShapeError,
                 ["C=2", "C=3", "depthwise"], id="bank-channels-mismatch-depthwise"),
    pytest.param(transposed(bank=np.ones((2, 3, 3, 4)), channels="sum"), ShapeError,
                 ["C=4", "C=3"], id="transposed-bank-channels-mismatch"),
    # options
    pytest.param(forward(border="mirror"), OptionError, ["`border`", "'mirror'"],
                 id="border-unknown"),
    pytest.param(forward(border="constant:abc"), OptionError, ["`border`", "constant:abc"],
                 id="border-constant-text"),
    pytest.param(forward(border="constant:nan"), OptionError, ["`border`", "constant:nan"],
                 id="border-constant-nan"),
    pytest.param(forward(border="reflect:2"), OptionError, ["`border`", "reflect:2"],
                 id="border-value-not-allowed"),
    pytest.param(forward(border=3), OptionError, ["`border`", "3"], id="border-not-text"),
    pytest.param(forward(channels="rgb"), OptionError, ["`channels`", "'rgb'"],
                 id="channels-unknown"),
    pytest.param(transposed(channels="mean"), OptionError, ["`channels`", "'mean'"],
                 id="transposed-channels-unknown"),
    pytest.param(forward(method="fastest"), OptionError, ["`method`", "'fastest'", "auto"],
                 id="method-unknown"),
    pytest.param(transposed(method="fastest"), OptionError, ["`method`", "'fastest'", "auto"],
                 id="transposed-method-unknown"),
    pytest.param(forward(dtype="int32"), OptionError, ["`dtype`", "int32"], id="dtype-int"),
    pytest.param(forward(bias=[1.0, 2.0]), ShapeError, ["`bias`", "2"], id="bias-wrong-size"),
    pytest.param(forward(bias=np.nan), ShapeError, ["`bias`", "nan"], id="bias-nan"),
    # image
    pytest.param(forward(image=np.ones((5, 5, 5)), channels="gray"), ShapeError,
                 ["gray", "5"], id="gray-five-channels"),
    pytest.param(forward(image=np.array([["a", "b"], ["c", "d"]])), ShapeError,
                 ["image", "<U1"], id="image-text"),
    pytest.param(forward(image=np.array([[None, None]])), ShapeError, ["image", "object"],
                 id="image-object"),
    pytest.param(forward(image=np.ones((4, 4)) * 1j), ShapeError, ["image", "complex"],
                 id="image-complex"),
    pytest.param(forward(image=np.ones((0, 5))), ShapeError, ["image", "empty", "(0, 5"],
                 id="image-empty-rows"),
    pytest.param(forward(image=np.ones((5, 5, 0))), ShapeError, ["image", "empty", "(5, 5, 0)"],
                 id="image-no-channels"),
    pytest.param(forward(image=np.ones(5)), ShapeError, ["image", "(5,)"], id="image-rank-1"),
    pytest.param(forward(image=np.ones((1, 5, 5, 1))), ShapeError, ["image", "(1, 5, 5, 1)"],
                 id="image-rank-4"),
    pytest.param(transposed(image=np.ones((0, 3))), ShapeError, ["image", "empty"],
                 id="transposed-image-empty"),
    pytest.param(lambda: upsample_nearest_conv2d(IMAGE, KERNEL, scale=0), ShapeError,
                 ["`scale`", "0"], id="upsample-scale-0"),
    pytest.param(forward(image=[[1, 2], [3]]), ShapeError, ["image", "array of numbers"],
                 id="image-ragged-list"),
    pytest.param(forward(image=np.where(np.eye(5, 6) > 0, np.nan, 1.0)), ShapeError,
                 ["image", "finite", "nan", "(0, 0, 0)", "5 non-finite values"], id="image-nan"),
    pytest.param(transposed(image=np.full((4, 4, 2), -np.inf)), ShapeError, ["image", "finite", "-inf"],
                 id="transposed-image-inf"),
    pytest.param(forward(image=np.full((4, 4), 1e300), dtype=np.float32), ShapeError,
                 ["float32 range", "1e+300", "float64"], id="image-beyond-float32"),
    pytest.param(forward(image=np.where(np.arange(16).reshape(4, 4) == 6, np.nan, 1e300), dtype=np.float32),
                 ShapeError, ["finite", "nan", "(1, 2, 0)", "(1 non-finite value)"],
                 id="image-nan-among-values-beyond-float32"),
    pytest.param(forward(bias="a"), ShapeError, ["`bias`", "'a'"], id="bias-not-a-number"),
    pytest.param(forward(bias=[1, "x"]), ShapeError, ["`bias`"], id="bias-list-with-a-word"),
]


def test_huge_finite_image_values_are_not_mistaken_for_inf() -> None:
    image = np.full((3, 3), 3e38, dtype=np.float32)  # their float32 sum overflows; each is finite
    assert conv2d(image, [[1.0]], dtype=np.float64)[0, 0, 0] == pytest.approx(3e38, rel=1e-6)


@pytest.mark.parametrize(("call", "error", "fragments"), INVALID)
def test_invalid_input_raises_named_error(call, error, fragments) -> None:
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, ConvcliError)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ------------------------------------------------------------------ geometry functions
GEOMETRY_INVALID = [
    pytest.param(lambda: output_size(5, 3, output_padding=1), ["`output_padding`", "transposed"],
                 id="output-padding-to-forward"),
    pytest.param(lambda: output_size(3, 3, stride=2, padding=1, transposed=True, output_padding=2),
                 ["`output_padding`", "max(stride, dilation) = 2", "got 2"],
                 id="output-padding-too-large"),
    pytest.param(lambda: output_size(4, 5), ["kernel", "5", "4"], id="kernel-larger"),
    pytest.param(lambda: output_size(5, 3, stride=0), ["`stride`", "0"], id="stride-0"),
    pytest.param(lambda: output_size(5, 3, stride=1.5), ["`stride`", "1.5"], id="stride-float"),
    pytest.param(lambda: output_size(5, 3, dilation=0), ["`dilation`", "0"], id="dilation-0"),
    pytest.param(lambda: output_size(5, 3, padding=-1), ["`padding`", "-1"], id="padding-negative"),
    pytest.param(lambda: output_size(5, 3, padding="big"), ["`padding`", "'big'"],
                 id="padding-name"),
    pytest.param(lambda: output_size(5, 3, padding=(1, 2, 3)), ["`padding`", "(1, 2, 3)"],
                 id="padding-three-values"),
    pytest.param(lambda: output_size(0, 3), ["input size", "0"], id="input-size-0"),
    pytest.param(lambda: output_size(5, 0), ["kernel size", "0"], id="kernel-size-0"),
    pytest.param(lambda: resolve_padding(5, 3, padding="full", transposed=True),
                 ["padding", "full", "transposed"], id="full-transposed"),
]


@pytest.mark.parametrize(("call", "fragments"), GEOMETRY_INVALID)
def test_geometry_errors_name_the_parameter(call, fragments) -> None:
    with pytest.raises(ShapeError) as caught:
        call()
    for fragment in fragments:
        assert fragment in str(caught.value), f"{fragment!r} not in {caught.value}"


@pytest.mark.parametrize("text", ["", "Zero", " reflect ", "CONSTANT:-3", "constant"])
def test_border_names_are_forgiving_about_case_and_spaces(text: str) -> None:
    """Valid spellings parse; the empty string is an error that says `border`."""
    if text == "":
        with pytest.raises(OptionError, match=re.escape("`border`")):
            parse_border(text)
        return
    assert parse_border(text).name in {"zero", "reflect", "constant"}


def test_errors_are_also_builtin_value_errors() -> None:
    """Library users may catch ValueError: every core error above is one."""
    for error in (ShapeError, KernelError, OptionError):
        assert issubclass(error, ValueError) and issubclass(error, ConvcliError)


@pytest.mark.parametrize("geometry", [{"padding": 10**12}, {"dilation": 2**62, "padding": "full"},
                                      {"stride": 2**40, "transposed": True},
                                      {"dilation": 2**62, "transposed": True}])
def test_a_geometry_too_large_to_allocate_is_a_shape_error(geometry):
    from convcli import conv2d, conv_transpose2d

    geometry = dict(geometry)
    function = conv_transpose2d if geometry.pop("transposed", False) else conv2d
    with pytest.raises(ShapeError, match="too large to allocate"):
        function(np.ones((5, 5)), np.ones((3, 3)), **geometry)


def test_a_method_of_the_other_kind_or_not_built_says_so(monkeypatch) -> None:
    from convcli import engines

    with pytest.raises(OptionError, match="transposed convolution: --transpose"):
        conv2d(np.ones((5, 5)), np.ones((3, 3)), method="polyphase")
    with pytest.raises(OptionError, match="forward convolution"):
        conv_transpose2d(np.ones((5, 5)), np.ones((3, 3)), method="direct")
    # without the extension the compiled names are not registered
    forward = {k: v for k, v in engines.FORWARD_ENGINES.items() if not k.startswith("native")}
    backward = {k: v for k, v in engines.TRANSPOSE_ENGINES.items() if not k.startswith("native")}
    monkeypatch.setattr(engines, "FORWARD_ENGINES", forward)
    monkeypatch.setattr(engines, "TRANSPOSE_ENGINES", backward)
    calls = ((conv2d, "native"), (conv2d, "native-separable"), (conv_transpose2d, "native-polyphase"))
    for call, method in calls:
        with pytest.raises(OptionError, match=f"got '{method}' .{method} is compiled.*not built here"):
            call(np.ones((5, 5)), np.ones((3, 3)), method=method)
