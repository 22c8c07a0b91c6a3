"""Conv layers from model files (safetensors, npz, pt, onnx), groups, normalisation, activation.

References: ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` with the
same weights, bias and geometry (PyTorch NCHW, weights as read from the file)
and ``onnx.reference.ReferenceEvaluator`` on models built here with
``onnx.helper``. Torch and onnx tests skip when the package is missing.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from convcli import KernelError, ShapeError, conv2d, conv_transpose2d
from convcli.errors import OptionError
from convcli.layers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    activate,
    expand_groups,
    normalize,
    parse_normalize,
    plan_layer,
    relu,
    to_bank_layout,
)
from convcli.modelfiles import list_layers, read_layer, split_model_spec
from convcli.presets import load_bank, resolve_kernel

RNG = np.random.default_rng(1515)


# --- helpers ----------------------------------------------------------------------------------


def torch_forward(image, weights, bias, *, stride=1, padding=0, dilation=1, groups=1):
    """``(H, W, C)`` image, PyTorch ``(F, C/G, kh, kw)`` weights → ``(H', W', F)``, float64."""
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(np.asarray(image, np.float64)).permute(2, 0, 1)[None]
    w = torch.from_numpy(np.asarray(weights, np.float64))
    b = None if bias is None else torch.from_numpy(np.asarray(bias, np.float64))
    out = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                                     groups=groups)
    return out[0].permute(1, 2, 0).numpy()


def apply_layer(image, spec, **given):
    """What the CLI does with ``-k FILE:NAME`` and the options typed (``given``): plan_layer."""
    plan = plan_layer(load_bank(spec), image.shape, given)
    run = conv_transpose2d if plan.transposed else conv2d
    return run(image, plan.weights, dtype=np.float64, **plan.options)


def random_layer(f, c_per_group, kh, kw, dtype=np.float32):
    return RNG.standard_normal((f, c_per_group, kh, kw)).astype(dtype), RNG.standard_normal(f).astype(dtype)


LAYERS = [  # (C, F, G, kh, kw, stride, padding, dilation)
    (3, 8, 1, 3, 3, 1, 1, 1),
    (3, 5, 1, 7, 7, 2, 3, 1),       # a first layer like ResNet's (smaller)
    (4, 4, 4, 3, 3, 1, 1, 1),       # depthwise: G = C, F = C
    (6, 6, 3, 3, 2, 2, (1, 0), 2),  # grouped, stride 2, dilation 2, non-square
    (2, 6, 2, 1, 1, 1, 0, 1),
]


# --- layout and the core's groups ----------------------------------------------------------


@pytest.mark.parametrize("c,f,g", [(3, 6, 3), (6, 6, 3), (4, 8, 1), (5, 5, 5), (6, 4, 2)])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, (1, 2), 1), (2, 1, 2)])
def test_grouped_conv2d_equals_torch_groups(c, f, g, stride, padding, dilation):
    image = RNG.standard_normal((9, 11, c))
    weights, bias = random_layer(f, c // g, 3, 3, np.float64)
    expected = torch_forward(image, weights, bias, stride=stride, padding=padding,
                             dilation=dilation, groups=g)
    actual = conv2d(image, to_bank_layout(weights), groups=g, bias=bias, stride=stride,
                    padding=padding, dilation=dilation)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("c,f,g", [(3, 6, 3), (4, 4, 1), (4, 8, 4), (6, 4, 2)])
def test_grouped_conv_transpose2d_equals_torch(c, f, g):
    torch = pytest.importorskip("torch")
    image = RNG.standard_normal((5, 6, c))
    weights = RNG.standard_normal((c, f // g, 3, 2))
    bias = RNG.standard_normal(f)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    expected = torch.nn.functional.conv_transpose2d(
        x, torch.from_numpy(weights), torch.from_numpy(bias), stride=2, padding=(1, 0),
        output_padding=1, dilation=(1, 2), groups=g,
    )[0].permute(1, 2, 0).numpy()
    actual = conv_transpose2d(image, to_bank_layout(weights, transposed=True, groups=g), groups=g,
                              bias=bias, stride=2, padding=(1, 0), output_padding=1, dilation=(1, 2))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


def test_groups_one_is_channel_sum_and_groups_c_is_per_channel_depthwise():
    image = RNG.standard_normal((8, 7, 3))
    bank = RNG.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(conv2d(image, bank, groups=1, padding=1),
                               conv2d(image, bank, channels="sum", padding=1), rtol=1e-12)
    one_per_channel = RNG.standard_normal((3, 3, 3, 1))
    # depthwise mode runs every kernel on every channel (output f·C + c): keep f == c
    full = conv2d(image, np.repeat(one_per_channel, 3, axis=3), channels="depthwise", padding=1)
    np.testing.assert_allclose(conv2d(image, one_per_channel, groups=3, padding=1),
                               full[:, :, [0 * 3 + 0, 1 * 3 + 1, 2 * 3 + 2]], rtol=1e-12)


@pytest.mark.parametrize("transposed", [False, True])
def test_expanded_groups_in_sum_mode_equal_grouped(transposed):
    image = RNG.standard_normal((7, 8, 6))
    bank = RNG.standard_normal((9, 3, 2, 2))  # G = 3: F = 9, C/G = 2
    run = conv_transpose2d if transposed else conv2d
    dense = expand_groups(bank, 3)
    assert dense.shape == (9, 3, 2, 6) and not dense[0, :, :, 2:].any()
    np.testing.assert_allclose(run(image, dense, channels="sum", stride=2),
                               run(image, bank, groups=3, stride=2), rtol=1e-12, atol=1e-12)


def test_groups_errors():
    image = np.zeros((5, 5, 6))
    with pytest.raises(ShapeError, match="must divide"):
        conv2d(image, np.zeros((6, 3, 3, 2)), groups=4)
    with pytest.raises(ShapeError, match="channels per filter"):
        conv2d(image, np.zeros((6, 3, 3, 3)), groups=3)
    with pytest.raises(OptionError, match="groups"):
        conv2d(image, np.zeros((6, 3, 3, 1)), groups=0)
    with pytest.raises(OptionError, match="gray"):
        conv2d(image, np.zeros((6, 3, 3, 1)), groups=6, channels="gray")


def test_transposed_layout_formula():
    weights = RNG.standard_normal((6, 2, 3, 4))  # (C, F/G, kh, kw) with G = 3: F = 6
    bank = to_bank_layout(weights, transposed=True, groups=3)
    assert bank.shape == (6, 3, 4, 2)
    for g in range(3):
        for f in range(2):
            for c in range(2):
                np.testing.assert_array_equal(bank[g * 2 + f, :, :, c], weights[g * 2 + c, f])


# --- tensor files vs torch ---------------------------------------------------------------------


def save(kind, path, tensors):
    if kind == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    elif kind == "npz":
        np.savez(path, **tensors)
    else:
        torch = pytest.importorskip("torch")
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, path)


@pytest.mark.parametrize("kind", ["safetensors", "npz", "pt"])
@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_tensor_file_layer_equals_torch(tmp_path, kind, layer):
    c, f, g, kh, kw, stride, padding, dilation = layer
    weights, bias = random_layer(f, c // g, kh, kw)
    path = tmp_path / f"net.{kind}"
    save(kind, path, {"features.conv1.weight": weights, "features.conv1.bias": bias,
                      "fc.weight": RNG.standard_normal((10, 4)).astype(np.float32)})
    image = RNG.standard_normal((13, 12, c))
    expected = torch_forward(image, weights, bias, stride=stride, padding=padding,
                             dilation=dilation, groups=g)
    actual = apply_layer(image, f"{path}:features.conv1.weight", stride=stride,
                         padding=padding, dilation=dilation)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_bank_carries_the_layer(tmp_path):
    weights, bias = random_layer(4, 3, 5, 3)
    path = tmp_path / "m.safetensors"
    save("safetensors", path, {"conv1.weight": weights, "conv1.bias": bias})
    bank = load_bank(f"{path}:conv1.weight")
    assert bank.layout == "pytorch" and not bank.transposed and bank.groups is None
    assert bank.labels == ["conv1-0", "conv1-1", "conv1-2", "conv1-3"]
    assert bank.stack().shape == (4, 5, 3, 3)
    np.testing.assert_array_equal(bank.stack()[2, :, :, 1], weights[2, 1])
    np.testing.assert_array_equal(bank.bias, bias)
    assert bank.geometry == {} and bank.layer.conv_options((9, 9, 3)) == {}
    assert load_bank("sobel").layout == "convcli" and load_bank("sobel").bias is None


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_half_precision_tensors_read_as_float32(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    weights = torch.randn(3, 2, 3, 3).to(getattr(torch, dtype))
    save_file({"w": weights}, str(tmp_path / "h.safetensors"))
    layer = read_layer(tmp_path / "h.safetensors", "w")
    assert layer.weights.dtype == (np.float64 if dtype == "float64" else np.float32)
    np.testing.assert_array_equal(layer.weights, weights.to(torch.float64).numpy())


def test_module_prefix_and_checkpoint_wrappers(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(3, 4, 3, bias=True))
    wrapped = {f"module.{k}": v for k, v in net.state_dict().items()}
    weights = net.conv1.weight.detach().numpy()
    for index, payload in enumerate([wrapped, {"state_dict": wrapped, "epoch": 3},
                                     {"model": net.state_dict()}]):
        path = tmp_path / f"ck{index}.pth"
        torch.save(payload, path)
        layer = read_layer(path, "conv1.weight")
        np.testing.assert_array_equal(layer.weights, weights)
        np.testing.assert_array_equal(layer.bias, net.conv1.bias.detach().numpy())
    both = {**wrapped, "conv1.weight": net.conv1.weight.detach() * 2,
            "other.module.conv1.weight": net.conv1.weight.detach()}
    torch.save(both, tmp_path / "both.pt")
    np.testing.assert_array_equal(read_layer(tmp_path / "both.pt", "conv1.weight").weights, 2 * weights)
    torch.save({"module.a.weight": net.conv1.weight, "module.module.a.weight": net.conv1.weight},
               tmp_path / "amb.pt")
    with pytest.raises(KernelError, match="ambiguous"):
        read_layer(tmp_path / "amb.pt", "a.weight")


def test_pt_without_torch_says_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    path.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(KernelError, match="install torch or convert the file to safetensors"):
        resolve_kernel(f"{path}:conv1.weight")


def test_name_errors(tmp_path):
    path = tmp_path / "m.safetensors"
    save("safetensors", path, {"conv1.weight": np.ones((2, 3, 3, 3), np.float32),
                               "conv1.bias": np.ones(2, np.float32)})
    with pytest.raises(KernelError, match=r"no tensor 'conv.weight'; did you mean 'conv1.weight'\?"):
        resolve_kernel(f"{path}:conv.weight")
    with pytest.raises(KernelError, match=r"shape \(2,\) is not a 4-D conv weight"):
        resolve_kernel(f"{path}:conv1.bias")
    with pytest.raises(KernelError, match=r"m\.safetensors:NAME \(4-D tensors: conv1\.weight\)"):
        resolve_kernel(str(path))
    with pytest.raises(KernelError, match="model file not found"):
        resolve_kernel(str(tmp_path / "none.safetensors") + ":conv1.weight")
    with pytest.raises(KernelError, match="only -k"):
        load_bank([f"{path}:conv1.weight", "sobel"])


def test_listing_and_spec_split(tmp_path):
    path = tmp_path / "a:b.npz"  # a colon in the file name, and one in the tensor name
    np.savez(path, **{"x:0": np.zeros((4, 3, 3, 3)), "conv.weight": np.zeros((2, 1, 5, 5)),
                      "conv.bias": np.zeros(2), "fc": np.zeros((3, 3))})
    assert split_model_spec(f"{path}:x:0") == (path, "x:0")
    assert split_model_spec("gaussian:sigma=2") is None
    assert [(i.name, i.shape, i.note) for i in list_layers(path)] == [
        ("x:0", (4, 3, 3, 3), ""), ("conv.weight", (2, 1, 5, 5), "bias")]
    assert resolve_kernel(f"{path}:x:0").labels[0] == "x-0-0"  # label "x-0", filter 0
    assert len(resolve_kernel("gaussian:sigma=2")) == 1  # presets with '=' are untouched


def test_channel_mismatch_is_a_shape_error(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, w=np.ones((4, 2, 3, 3)))
    layer = read_layer(path, "w")
    assert layer.resolve_groups(4) == 2 and layer.resolve_groups(2) == 1
    with pytest.raises(ShapeError, match="not a multiple"):
        layer.resolve_groups(3)
    with pytest.raises(ShapeError, match="groups=3"):
        layer.resolve_groups(4, groups=3)


def test_transposed_reinterpretation_equals_torch(tmp_path):
    torch = pytest.importorskip("torch")
    weights = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)  # (C, F/G, kh, kw)
    bias = RNG.standard_normal(2).astype(np.float32)
    save("safetensors", tmp_path / "up.safetensors", {"up.weight": weights, "up.bias": bias})
    image = RNG.standard_normal((5, 4, 3))
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(weights.astype(np.float64)),
        torch.from_numpy(bias.astype(np.float64)), stride=2, padding=1,
    )[0].permute(1, 2, 0).numpy()
    actual = apply_layer(image, f"{tmp_path / 'up.safetensors'}:up.weight", transpose=True,
                         stride=2, padding=1)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# --- ONNX vs the reference evaluator -------------------------------------------------------


def onnx_model(op, weights, bias, **attributes):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    node = helper.make_node(op, inputs, ["y"], name=f"/layer1/{op}", **attributes)
    initializers = [numpy_helper.from_array(weights, "w")]
    if bias is not None:
        initializers.append(numpy_helper.from_array(bias, "b"))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C", "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "F", "Ho", "Wo"])], initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def run_reference(model, image):
    from onnx.reference import ReferenceEvaluator

    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    return ReferenceEvaluator(model).run(None, {"x": x})[0][0].transpose(1, 2, 0)


def run_conv_transpose_reference(weights, bias, attributes, image):
    """The ONNX reference evaluator's ConvTranspose of ``image`` (H, W, C), one group at a time.

    onnx 1.23's reference ConvTranspose mishandles group > 1 (it slices W by
    output channels and gives every group the first bias values; onnx/onnx#8446
    fixed only part of it): the reference is then one group=1 node per group,
    on the group's channels, weights (C, F/group, kh, kw) and bias (F,).
    """
    group = attributes.get("group", 1)
    c_g, f_g = weights.shape[0] // group, bias.shape[0] // group
    ungrouped = {k: v for k, v in attributes.items() if k != "group"}
    return np.concatenate([
        run_reference(onnx_model("ConvTranspose", weights[g * c_g:(g + 1) * c_g],
                                 bias[g * f_g:(g + 1) * f_g], **ungrouped),
                      image[:, :, g * c_g:(g + 1) * c_g])
        for g in range(group)
    ], axis=2)


CONV_NODES = [  # (C, F, attributes)
    (3, 4, {"strides": [2, 2], "pads": [1, 0, 2, 1], "dilations": [2, 2], "group": 1}),
    (3, 6, {"strides": [2, 1], "pads": [0, 2, 1, 0], "dilations": [2, 1], "group": 3}),
    (3, 3, {"auto_pad": "SAME_UPPER", "strides": [2, 2], "group": 3}),
    (2, 4, {"auto_pad": "SAME_LOWER", "strides": [2, 2], "dilations": [1, 2]}),
    (2, 4, {"auto_pad": "VALID", "strides": [1, 2]}),
]


@pytest.mark.parametrize("c,f,attributes", CONV_NODES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_onnx_conv_node_equals_reference_evaluator(tmp_path, c, f, attributes, with_bias):
    group = attributes.get("group", 1)
    weights, bias = random_layer(f, c // group, 3, 4)
    model = onnx_model("Conv", weights, bias if with_bias else None, kernel_shape=[3, 4], **attributes)
    path = tmp_path / "net.onnx"
    path.write_bytes(model.SerializeToString())
    image = RNG.standard_normal((10, 11, c)).astype(np.float32)
    actual = apply_layer(image, f"{path}:/layer1/Conv")
    np.testing.assert_allclose(actual, run_reference(model, image), rtol=1e-4, atol=1e-4)
    bank = load_bank(f"{path}:w")  # the weight initializer's name finds the node too
    assert bank.groups == group and bank.layer.name == "/layer1/Conv"
    assert bank.labels[0] == "layer1-Conv-0"


CONV_TRANSPOSE_NODES = [  # (C, F, attributes)
    (3, 4, {"strides": [2, 2], "pads": [1, 0, 0, 1], "output_padding": [1, 0]}),
    (3, 6, {"strides": [2, 3], "pads": [0, 1, 1, 0], "dilations": [2, 1], "group": 3}),
    (2, 2, {"strides": [2, 2], "auto_pad": "SAME_UPPER", "group": 2}),
]


def conv_transpose_case(tmp_path, c, f, attributes):
    """A random 3×3 ConvTranspose node (C → F) saved as ``up.onnx``, a 5×6 image and the reference.

    Returns ``(spec, image, expected)``: the ``-k`` spec of the node, the
    (5, 6, C) float32 image and :func:`run_conv_transpose_reference` of it.
    """
    group = attributes.get("group", 1)
    weights = RNG.standard_normal((c, f // group, 3, 3)).astype(np.float32)
    bias = RNG.standard_normal(f).astype(np.float32)
    model = onnx_model("ConvTranspose", weights, bias, **attributes)
    path = tmp_path / "up.onnx"
    path.write_bytes(model.SerializeToString())
    image = RNG.standard_normal((5, 6, c)).astype(np.float32)
    expected = run_conv_transpose_reference(weights, bias, attributes, image)
    return f"{path}:/layer1/ConvTranspose", image, expected


@pytest.mark.parametrize("c,f,attributes", CONV_TRANSPOSE_NODES, ids=str)
def test_onnx_conv_transpose_node_equals_reference_evaluator(tmp_path, c, f, attributes):
    spec, image, expected = conv_transpose_case(tmp_path, c, f, attributes)
    bank = load_bank(spec)
    assert bank.transposed and bank.groups == attributes.get("group", 1) and len(bank) == f
    np.testing.assert_allclose(apply_layer(image, spec), expected, rtol=1e-4, atol=1e-4)


def test_onnx_listing_and_errors(tmp_path):
    weights, bias = random_layer(4, 3, 3, 3)
    model = onnx_model("Conv", weights, bias, strides=[2, 2], pads=[1, 1, 1, 1])
    path = tmp_path / "net.onnx"
    path.write_bytes(model.SerializeToString())
    (info,) = list_layers(path)
    assert (info.name, info.shape, info.kind) == ("/layer1/Conv", (4, 3, 3, 3), "Conv")
    assert info.note == "stride 2,2, pads 1,1,1,1, group 1, bias"
    with pytest.raises(KernelError, match=r"no Conv/ConvTranspose node '/layer1/Con'; did you mean"):
        resolve_kernel(f"{path}:/layer1/Con")
    with pytest.raises(KernelError, match=r"net\.onnx:NAME \(Conv nodes: /layer1/Conv\)"):
        resolve_kernel(str(path))


# --- normalisation and activation ----------------------------------------------------------


def test_normalize_imagenet_8_and_16_bit_by_hand():
    mean, std = parse_normalize("imagenet")
    assert (mean, std) == (IMAGENET_MEAN, IMAGENET_STD)
    pixels8 = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    expected8 = np.empty((4, 5, 3))
    for c in range(3):
        expected8[:, :, c] = (pixels8[:, :, c] / 255 - mean[c]) / std[c]
    np.testing.assert_allclose(normalize(pixels8, mean, std), expected8, rtol=1e-6)
    assert normalize(pixels8, mean, std).dtype == np.float32
    pixels16 = RNG.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    expected16 = (pixels16 / 65535 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(normalize(pixels16, mean, std), expected16, rtol=1e-6)
    floats = RNG.random((3, 3, 3))
    np.testing.assert_allclose(normalize(floats, mean, std), (floats - mean) / std, rtol=1e-12)
    # a float image holding 8-bit values (how convcli reads them) is scaled when told its depth
    np.testing.assert_allclose(normalize(pixels8.astype(np.float32), mean, std, bit_depth=8),
                               expected8, rtol=1e-6)


def test_parse_normalize_forms_and_errors():
    assert parse_normalize("0.5;0.25") == ((0.5,), (0.25,))
    assert parse_normalize(" 0.485,0.456,0.406 ; 0.229,0.224,0.225 ") == (IMAGENET_MEAN, IMAGENET_STD)
    for bad in ("0.5", "a;1", "0.5;0", "1,2;1,2,3", "1;2;3"):
        with pytest.raises(OptionError, match="--normalize"):
            parse_normalize(bad)
    with pytest.raises(ShapeError, match="C=4"):
        normalize(np.zeros((2, 2, 4)), IMAGENET_MEAN, IMAGENET_STD)


def test_relu_and_activation():
    values = RNG.standard_normal((4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(relu(values), np.maximum(values, 0))
    np.testing.assert_array_equal(activate(values, "relu"), np.maximum(values, 0))
    np.testing.assert_array_equal(activate(values, "none"), values)
    with pytest.raises(OptionError, match="activation"):
        activate(values, "gelu")


# --- convcli kernels show FILE / FILE:NAME --montage -------------------------------------------


def test_cli_lists_layers_and_draws_filters(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from convcli.cli import app

    weights, bias = random_layer(4, 3, 5, 5)
    path = tmp_path / "net.safetensors"
    save("safetensors", path, {"conv1.weight": weights, "conv1.bias": bias,
                               "dw.weight": RNG.standard_normal((2, 2, 3, 3)).astype(np.float32)})
    runner = CliRunner()
    listing = runner.invoke(app, ["kernels", "show", str(path)])
    assert listing.exit_code == 0, listing.output
    assert "conv1.weight" in listing.output and "(4, 3, 5, 5)" in listing.output
    as_json = json.loads(runner.invoke(app, ["kernels", "show", str(path), "--json"]).output)
    assert as_json["layers"][1] == {"name": "dw.weight", "shape": [2, 2, 3, 3], "dtype": "float32",
                                    "kind": "tensor", "note": ""}
    sheet = tmp_path / "filters.png"
    shown = runner.invoke(app, ["kernels", "show", f"{path}:conv1.weight", "--montage", str(sheet)])
    assert shown.exit_code == 0, shown.output
    with Image.open(sheet) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    # tile 0 (C = 3: RGB) sits at (GAP, GAP), each weight enlarged 64 // 5 = 12 times
    from convcli.montage import GAP

    tile = pixels[GAP:GAP + 60:12, GAP:GAP + 60:12]
    expected = np.clip(np.rint(127.5 + 127.5 * weights[0].transpose(1, 2, 0)
                               / np.abs(weights[0]).max()), 0, 255)
    np.testing.assert_array_equal(tile, expected)
    grey = tmp_path / "dw.png"
    assert runner.invoke(app, ["kernels", "show", f"{path}:dw.weight", "--montage", str(grey)]).exit_code == 0
    with Image.open(grey) as picture:
        # 2 filters × 2 channels: grey tiles, one filter per row (C columns)
        from convcli.montage import montage_layout

        layout = montage_layout(4, (3, 3), columns=2, tile_max=64)
        assert picture.size == (layout.width, layout.height) and layout.rows == 2
    missing = runner.invoke(app, ["kernels", "show", f"{path}:conv.weight"])
    assert missing.exit_code == 1 and "did you mean 'conv1.weight'" in missing.output


def test_plan_layer_defaults_and_explicit_options(tmp_path):
    weights, bias = random_layer(6, 1, 3, 3)
    model = onnx_model("Conv", weights, bias, strides=[2, 2], pads=[1, 1, 1, 1], group=3)
    path = tmp_path / "dw.onnx"
    path.write_bytes(model.SerializeToString())
    bank = load_bank(f"{path}:/layer1/Conv")
    plan = plan_layer(bank, (8, 8, 3), {})
    assert plan.note is None and plan.groups == 3 and not plan.transposed
    assert plan.options == {"stride": (2, 2), "dilation": (1, 1), "padding": (1, 1, 1, 1),
                            "bias": bank.bias, "border": "zero", "groups": 3}
    plan = plan_layer(bank, (8, 8, 3), {"stride": (1, 1), "dilation": (1, 1), "bias": 0.5})
    assert plan.options["stride"] == (1, 1) and plan.options["bias"] == 0.5
    assert plan.note == (f"{path}:/layer1/Conv: explicit options win over the layer's own: "
                         f"stride 1,1 (layer: 2,2); bias 0.5 (layer: "
                         f"{','.join(f'{v:g}' for v in bank.bias)})")
    with pytest.raises(ShapeError, match="C=4"):
        plan_layer(bank, (8, 8, 4), {})
    tensor = tmp_path / "t.npz"
    np.savez(tensor, w=weights)  # (6, 1, 3, 3): G = C for a 3-channel image, 6 for 6 channels
    assert plan_layer(load_bank(f"{tensor}:w"), (5, 5, 3), {}).groups == 3
    assert plan_layer(load_bank(f"{tensor}:w"), (5, 5, 6), {"transpose": True}).transposed
    with pytest.raises(KernelError, match="not a model layer"):
        plan_layer(load_bank("sobel"), (5, 5, 1), {})


def test_pickled_module_and_bare_tensor_are_refused_with_advice(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Conv2d(3, 4, 3), tmp_path / "module.pt")
    with pytest.raises(KernelError, match=r"refuses it .*save model\.state_dict\(\)"):
        resolve_kernel(f"{tmp_path / 'module.pt'}:weight")
    torch.save(torch.zeros(4, 3, 3, 3), tmp_path / "bare.pt")
    with pytest.raises(KernelError, match="holds a Tensor, not a state dict"):
        resolve_kernel(f"{tmp_path / 'bare.pt'}:w")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(KernelError, match=r"cannot read .*junk\.pt"):
        resolve_kernel(f"{tmp_path / 'junk.pt'}:w")


# --- convcli apply -k FILE:NAME through the CLI (-f npy) ---------------------------------------


def cli(*args):
    from typer.testing import CliRunner

    from convcli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def cli_maps(tmp_path, image, *args, name="maps.npy"):
    """``convcli apply image.npy ARGS -f npy``: the float maps (input saved as float64 .npy)."""
    source = tmp_path / "image.npy"
    np.save(source, image)
    out = tmp_path / name
    result = cli("apply", source, *args, "-f", "npy", "-o", out, "--force", "-q")
    assert result.exit_code == 0, result.output
    return np.load(out)


@pytest.mark.parametrize("kind", ["safetensors", "npz", "pt"])
@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_cli_tensor_file_layer_equals_torch(tmp_path, kind, layer):
    c, f, g, kh, kw, stride, padding, dilation = layer
    weights, bias = random_layer(f, c // g, kh, kw)
    path = tmp_path / f"net.{kind}"
    save(kind, path, {"module.conv1.weight": weights, "module.conv1.bias": bias})
    image = RNG.standard_normal((13, 12, c))
    expected = torch_forward(image, weights, bias, stride=stride, padding=padding,
                             dilation=dilation, groups=g)
    pads = padding if isinstance(padding, int) else ",".join(map(str, padding))
    actual = cli_maps(tmp_path, image, "-k", f"{path}:conv1.weight", "-s", stride, "-p", pads,
                      "-d", dilation, "--dtype", "float64")
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_cli_model_layer_defaults_are_pytorch_layer_defaults(tmp_path):
    weights, bias = random_layer(4, 3, 3, 3)
    save("npz", tmp_path / "m.npz", {"c.weight": weights, "c.bias": bias})
    image = RNG.standard_normal((9, 10, 3))
    # padding 0, stride 1, zero border, the file's bias (not the CLI's same/reflect defaults)
    actual = cli_maps(tmp_path, image, "-k", f"{tmp_path / 'm.npz'}:c.weight", "--dtype", "float64")
    np.testing.assert_allclose(actual, torch_forward(image, weights, bias), rtol=1e-6, atol=1e-6)
    with_bias = cli_maps(tmp_path, image, "-k", f"{tmp_path / 'm.npz'}:c.weight", "--bias", "2",
                         "--dtype", "float64")
    np.testing.assert_allclose(with_bias, torch_forward(image, weights, None) + 2, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("c,f,attributes", CONV_NODES, ids=str)
def test_cli_onnx_conv_node_equals_reference_evaluator(tmp_path, c, f, attributes):
    group = attributes.get("group", 1)
    weights, bias = random_layer(f, c // group, 3, 4)
    model = onnx_model("Conv", weights, bias, kernel_shape=[3, 4], **attributes)
    path = tmp_path / "net.onnx"
    path.write_bytes(model.SerializeToString())
    image = RNG.standard_normal((10, 11, c)).astype(np.float32)
    actual = cli_maps(tmp_path, image, "-k", f"{path}:/layer1/Conv")
    np.testing.assert_allclose(actual, run_reference(model, image), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c,f,attributes", CONV_TRANSPOSE_NODES, ids=str)
def test_cli_onnx_conv_transpose_node_equals_reference_evaluator(tmp_path, c, f, attributes):
    spec, image, expected = conv_transpose_case(tmp_path, c, f, attributes)
    actual = cli_maps(tmp_path, image, "-k", spec)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_cli_explicit_options_win_over_onnx_with_a_note(tmp_path):
    weights, bias = random_layer(4, 3, 3, 3)
    model = onnx_model("Conv", weights, bias, strides=[2, 2], pads=[1, 1, 1, 1])
    path = tmp_path / "net.onnx"
    path.write_bytes(model.SerializeToString())
    image = RNG.standard_normal((8, 9, 3))
    np.save(tmp_path / "image.npy", image)
    result = cli("apply", tmp_path / "image.npy", "-k", f"{path}:/layer1/Conv", "-s", "1",
                 "-f", "npy", "-o", tmp_path / "maps.npy")
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and "stride 1,1 (layer: 2,2)" in result.output
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"),
                               torch_forward(image, weights, bias, stride=1, padding=1),
                               rtol=1e-4, atol=1e-4)


def test_cli_grouped_bank_equals_torch_groups_3(tmp_path):
    bank = RNG.standard_normal((6, 3, 3, 1))  # convcli layout (F, kh, kw, C/G), G = 3, F = 6
    np.save(tmp_path / "bank.npy", bank)
    image = RNG.standard_normal((9, 8, 3))
    actual = cli_maps(tmp_path, image, "-k", tmp_path / "bank.npy", "--groups", "3", "-p", "1",
                      "--border", "zero", "--dtype", "float64")
    expected = torch_forward(image, bank.transpose(0, 3, 1, 2), None, padding=1, groups=3)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("depth", [8, 16])
def test_cli_normalize_imagenet_by_hand(tmp_path, depth):
    from convcli.imageio import encode_png

    dtype = np.uint8 if depth == 8 else np.uint16
    pixels = RNG.integers(0, 2 ** depth, (6, 7, 3)).astype(dtype)
    (tmp_path / "photo.png").write_bytes(encode_png(pixels))
    identity = np.eye(3, dtype=np.float32)[:, :, None, None]  # 1×1 layer: output c = input c
    save("npz", tmp_path / "id.npz", {"w": identity})
    out = tmp_path / "maps.npy"
    result = cli("apply", tmp_path / "photo.png", "-k", f"{tmp_path / 'id.npz'}:w",
                 "--normalize", "imagenet", "-f", "npy", "-o", out, "--dtype", "float64")
    assert result.exit_code == 0, result.output
    scale = 255.0 if depth == 8 else 65535.0
    expected = (pixels / scale - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6, atol=1e-6)


def test_cli_activation_relu_and_json_record(tmp_path):
    weights, bias = random_layer(5, 3, 3, 3)
    save("safetensors", tmp_path / "m.safetensors", {"conv1.weight": weights, "conv1.bias": bias})
    image = RNG.standard_normal((8, 8, 3))
    spec = f"{tmp_path / 'm.safetensors'}:conv1.weight"
    plain = cli_maps(tmp_path, image, "-k", spec, "-p", "1")
    relu_maps = cli_maps(tmp_path, image, "-k", spec, "-p", "1", "--activation", "relu", name="r.npy")
    np.testing.assert_array_equal(relu_maps, np.maximum(plain, 0))
    result = cli("apply", tmp_path / "image.npy", "-k", spec, "--normalize", "0.5;0.25",
                 "--activation", "relu", "-f", "npy", "-o", tmp_path / "j.npy", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["normalize"] == {"mean": [0.5], "std": [0.25]} and record["activation"] == "relu"
    assert record["layer"]["groups"] == 1 and record["layer"]["bias_from_file"]
    assert [k["name"] for k in record["kernels"]] == [f"conv1-{i}" for i in range(5)]


def test_cli_layer_errors_are_one_line(tmp_path):
    save("npz", tmp_path / "m.npz", {"w": np.ones((4, 2, 3, 3), np.float32)})
    image = np.zeros((6, 6, 3))
    np.save(tmp_path / "image.npy", image)
    for args, fragment in [
        (["-k", f"{tmp_path / 'm.npz'}:w"], "not a multiple"),
        (["-k", f"{tmp_path / 'm.npz'}:ww"], "no tensor 'ww'; did you mean 'w'?"),
        (["-k", str(tmp_path / "m.npz")], "m.npz:NAME (4-D tensors: w)"),
        (["-k", f"{tmp_path / 'm.npz'}:w", "--channels", "gray"], "--channels gray does not apply"),
        (["-k", "sobel", "--activation", "relu", "--reduce", "magnitude"], "--activation"),
        (["-k", "sobel", "--normalize", "1;0"], "--normalize"),
    ]:
        result = cli("apply", tmp_path / "image.npy", *args, "-f", "npy", "-o", tmp_path / "x.npy")
        assert result.exit_code == 1, (args, result.output)
        assert fragment in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_the_three_learner_commands(tmp_path, monkeypatch):
    """List a file's conv layers, draw a layer's filters, apply it to a photo with a montage
    (the README's commands, on the gallery's stand-in first layer)."""
    import shutil
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "docs" / "gallery" / "first-layer.safetensors", tmp_path)
    shutil.copy(root / "sample_images" / "chelsea.png", tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    listing = cli("kernels", "show", "first-layer.safetensors")
    assert listing.exit_code == 0 and "conv1.weight" in listing.output and "(16, 3, 7, 7)" in listing.output
    drawn = cli("kernels", "show", "first-layer.safetensors:conv1.weight", "--montage", "filters.png")
    assert drawn.exit_code == 0, drawn.output
    (tmp_path / "layer-maps").mkdir()
    applied = cli("apply", "photo.png", "-k", "first-layer.safetensors:conv1.weight", "--normalize",
                  "imagenet", "--activation", "relu", "-p", "3", "-o", "layer-maps/", "--montage",
                  "layer-maps.png")
    assert applied.exit_code == 0, applied.output
    assert len(list((tmp_path / "layer-maps").iterdir())) == 16
    with Image.open("photo.png") as photo, Image.open("layer-maps/photo.conv1-00.png") as first:
        assert first.size == photo.size  # 7×7, padding 3, stride 1
    assert (tmp_path / "filters.png").is_file() and (tmp_path / "layer-maps.png").is_file()
