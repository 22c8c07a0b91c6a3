"""convcli.presets: the shipped presets (SPEC.md weights), user files, spec resolution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import windows

from convcli import presets
from convcli.errors import ConvcliError, KernelError
from convcli.presets import kernels_dir, list_presets, load_bank, load_kernel_file, resolve_kernel

# SPEC.md "Named kernels", correlation weights, rows top to bottom.
SPEC_WEIGHTS = {
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],  # scharr-x transposed
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],  # prewitt-x transposed
    "laplacian-4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian-8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "roberts-pos": [[1, 0], [0, -1]],
    "roberts-neg": [[0, 1], [-1, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "blur": (np.outer([1, 2, 1], [1, 2, 1]) / 16).tolist(),
    "box:size=5": np.full((5, 5), 1 / 25).tolist(),
    "box": np.full((3, 3), 1 / 9).tolist(),
}
BANKS = {
    "sobel": ["sobel-x", "sobel-y"],
    "scharr": ["scharr-x", "scharr-y"],
    "prewitt": ["prewitt-x", "prewitt-y"],
    "roberts": ["roberts-pos", "roberts-neg"],
    "kirsch": [f"kirsch-{d}" for d in ("n", "ne", "e", "se", "s", "sw", "w", "nw")],
}
REQUIRED = [
    "sobel", "sobel-x", "sobel-y", "scharr", "scharr-x", "scharr-y", "prewitt", "prewitt-x",
    "prewitt-y", "roberts", "laplacian", "laplacian-4", "laplacian-8", "kirsch", "sharpen",
    "emboss", "identity", "box", "gaussian", "log", "dog", "gabor",
]


@pytest.mark.parametrize(("spec", "expected"), SPEC_WEIGHTS.items())
def test_named_kernel_weights_follow_spec(spec, expected):
    bank = resolve_kernel(spec)
    assert len(bank.kernels) == 1
    np.testing.assert_allclose(bank.kernels[0].weights, np.array(expected, dtype=float),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize(("name", "members"), BANKS.items())
def test_banks_list_their_members(name, members):
    bank = resolve_kernel(name)
    assert bank.name == name
    assert bank.labels == members
    for member, kernel in zip(members, bank.kernels):
        np.testing.assert_array_equal(kernel.weights, resolve_kernel(member).kernels[0].weights)
        if member in SPEC_WEIGHTS:
            np.testing.assert_array_equal(kernel.weights, SPEC_WEIGHTS[member])


def test_kirsch_is_eight_clockwise_rotations_of_the_spec_kernel():
    ring = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]  # clockwise
    base = np.array([[5, 5, 5], [-3, 0, -3], [-3, -3, -3]], dtype=float)
    values = [base[p] for p in ring]
    bank = resolve_kernel("kirsch").stack()
    assert bank.shape == (8, 3, 3)
    for step in range(8):
        expected = np.zeros((3, 3))
        for position, value in zip(ring, np.roll(values, step)):
            expected[position] = value
        np.testing.assert_array_equal(bank[step], expected)
        assert bank[step].sum() == 0
    # every second member is the previous quarter-turn clockwise (n → e → s → w)
    for step in range(0, 8, 2):
        np.testing.assert_array_equal(bank[(step + 2) % 8], np.rot90(bank[step], k=-1))


def test_gaussian_spec_default_size_and_sum():
    for sigma in (0.5, 1.0, 2.0):
        weights = resolve_kernel(f"gaussian:sigma={sigma}").kernels[0].weights
        size = 2 * math.ceil(3 * sigma) + 1
        window = windows.gaussian(size, std=sigma)
        np.testing.assert_allclose(weights, np.outer(window, window) / np.outer(window, window).sum())
    bank = resolve_kernel("gaussian:sigma=2,size=9")
    assert bank.kernels[0].weights.shape == (9, 9)
    assert bank.name == "gaussian-s2-n9"


def test_parametric_specs_from_the_issue():
    for spec in ("log:sigma=1.4", "dog:sigma1=1,sigma2=1.6", "gabor:theta=45,lambda=8",
                 "gabor:theta=45,lambda=8,sigma=3,gamma=0.7,psi=90,size=15",
                 "motion:length=9,angle=30"):
        weights = resolve_kernel(spec).kernels[0].weights
        assert np.isfinite(weights).all()
    assert resolve_kernel("log:sigma=1.4").kernels[0].weights.sum() == pytest.approx(0, abs=1e-12)


def test_display_hints():
    assert resolve_kernel("emboss").display == "offset:128"
    assert resolve_kernel("sobel").display is None


@pytest.mark.parametrize("spec", ["sobel-x", "sobel-y", "scharr-x", "prewitt-y", "box:size=4",
                                  "gaussian:sigma=1.5", "blur", "identity"])
def test_separable_presets(spec):
    from convcli.kernels import separable_factors

    weights = resolve_kernel(spec).kernels[0].weights
    column, row = separable_factors(weights)
    np.testing.assert_allclose(np.outer(column, row), weights, atol=1e-12)


@pytest.mark.parametrize("spec", ["laplacian", "laplacian-8", "kirsch-n", "kirsch-ne",
                                  "roberts-pos", "sharpen", "emboss", "log"])
def test_not_separable_presets(spec):
    from convcli.kernels import separable_factors

    assert separable_factors(resolve_kernel(spec).kernels[0].weights) is None


def test_registry_lists_every_required_name_and_each_loads():
    infos = {info.name: info for info in list_presets()}
    assert set(REQUIRED) <= set(infos)
    for name, info in infos.items():
        bank = resolve_kernel(name)
        stack = bank.stack()
        assert np.isfinite(stack).all()
        assert info.count == len(bank.kernels)
        assert info.description
        assert info.size == bank.kernels[0].size_text or "," in info.size
    assert "sigma=1" in infos["gaussian"].params and infos["sobel"].params == ""


def test_names_are_case_insensitive_and_trimmed():
    assert resolve_kernel("  Sobel ").labels == ["sobel-x", "sobel-y"]


def test_kernels_dir_layouts(tmp_path, monkeypatch):
    assert kernels_dir() == Path(presets.__file__).resolve().parent.parent / "kernels"
    assert (kernels_dir() / "sobel.toml").is_file()
    package = tmp_path / "site" / "convcli"
    (package / "_kernels").mkdir(parents=True)
    monkeypatch.setattr(presets, "__file__", str(package / "presets.py"))
    assert kernels_dir() == package / "_kernels"


def test_presets_load_from_a_wheel_like_layout(tmp_path):
    """Copy the package as a wheel would install it (kernels/ → convcli/_kernels) and load."""
    import shutil
    import subprocess
    import sys

    source = Path(presets.__file__).resolve().parent
    site = tmp_path / "site"
    shutil.copytree(source, site / "convcli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(kernels_dir(), site / "convcli" / "_kernels")
    code = ("from convcli.presets import kernels_dir, resolve_kernel; "
            "print(kernels_dir()); print(resolve_kernel('kirsch').labels[2])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(site)}, check=True)
    directory, label = out.stdout.split()
    assert Path(directory) == site / "convcli" / "_kernels" and label == "kirsch-e"


# --- broken preset data -------------------------------------------------------------


def _preset_dir(tmp_path, monkeypatch, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(presets, "kernels_dir", lambda: tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('name = "r"\nweights = [[1, 2, 3], [4, 5], [6, 7, 8]]\n', "row 2 has 2 values"),
        ('name = "r"\nweights = [[1, "a"]]\n', "row 1: 'a' is not a number"),
        ('name = "r"\nweights = []\n', "non-empty list of rows"),
        ('name = "r"\nweight = [[1]]\n', "unknown key(s) weight"),
        ('name = "r"\nweights = [[1]]\nscale = 0\n', "`scale`"),
        ('name = "r"\nweights = [[1]]\ndisplay = "loud"\n', "display"),
        ('name = "r:x"\nweights = [[1]]\n', "`name`"),
        ('name = "r"\n', "give `weights`, [[kernels]] or `members`"),
        ('name = "r"\nweights = [[nan]]\n', "finite"),
        ('name = "r"\nweights = [[1]\n', "not valid TOML"),
        ('name = "r"\nmembers = ["nothing"]\n', "member 'nothing' is not a known kernel"),
        ('name = "r"\nmembers = ["r"]\n', "cycle"),
        ('name = "gaussian"\nweights = [[1]]\n', "parametric"),
    ],
)
def test_broken_data_file_is_rejected_naming_file(tmp_path, monkeypatch, text, fragment):
    _preset_dir(tmp_path, monkeypatch, {"broken.toml": text})
    with pytest.raises(KernelError) as info:
        resolve_kernel("r")
    assert fragment in str(info.value)
    assert "broken.toml" in str(info.value)


def test_duplicate_preset_names_name_both_files(tmp_path, monkeypatch):
    _preset_dir(tmp_path, monkeypatch, {"a.toml": 'name = "x"\nweights = [[1]]\n',
                                        "b.toml": 'name = "x"\nweights = [[2]]\n'})
    with pytest.raises(KernelError, match=r"b\.toml.*already defined in .*a\.toml"):
        list_presets()


def test_members_across_files_and_parametric(tmp_path, monkeypatch):
    _preset_dir(tmp_path, monkeypatch, {
        "a.toml": 'name = "pair"\nmembers = ["one", "gaussian:sigma=1,size=3", "two"]\n',
        "b.toml": 'name = "one"\nweights = [[0, 0, 0], [0, 1, 0], [0, 0, 0]]\n',
        "c.toml": 'name = "two"\nmembers = ["one"]\n',
    })
    bank = resolve_kernel("pair")
    assert bank.labels == ["one", "gaussian-s1-n3", "one"]


# --- user files ---------------------------------------------------------------------


def test_npy_2d_3d_4d_and_1d(tmp_path):
    rng = np.random.default_rng(0)
    single = rng.normal(size=(3, 5))
    np.save(tmp_path / "one.npy", single)
    bank = resolve_kernel(str(tmp_path / "one.npy"))
    assert bank.name == "one" and bank.labels == ["one"]
    np.testing.assert_array_equal(bank.kernels[0].weights, single)

    stack = rng.normal(size=(4, 3, 3))
    np.save(tmp_path / "bank.npy", stack)
    bank = resolve_kernel(str(tmp_path / "bank.npy"))
    assert bank.labels == ["bank-0", "bank-1", "bank-2", "bank-3"]
    np.testing.assert_array_equal(bank.stack(), stack)

    full = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    np.save(tmp_path / "cnn.npy", full)
    np.testing.assert_array_equal(resolve_kernel(str(tmp_path / "cnn.npy")).stack(), full)

    np.save(tmp_path / "row.npy", np.array([1, 2, 1], dtype=np.int16))
    np.testing.assert_array_equal(resolve_kernel(str(tmp_path / "row.npy")).stack(), [[[1, 2, 1]]])


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((1, 1, 1, 1, 1)), "is not (kh, kw)"),
        (np.array([[1.0, np.nan]]), "finite"),
        (np.array([["a"]]), "real numbers"),
        (np.zeros((0, 3, 3)), "no kernels"),
    ],
)
def test_npy_errors(tmp_path, array, fragment):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(KernelError) as info:
        resolve_kernel(str(path))
    assert fragment in str(info.value)


def test_npy_pickled_or_corrupt(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(KernelError, match=r"obj\.npy"):
        resolve_kernel(str(path))
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(KernelError, match=r"corrupt\.npy"):
        resolve_kernel(str(corrupt))


def test_text_matrix_single_and_bank(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# a comment\n1 0 -1\n2, 0, -2  # trailing\n1 0 -1\n\n\n1 2 1\n0 0 0\n-1 -2 -1\n")
    bank = resolve_kernel(str(path))
    assert bank.labels == ["edges-0", "edges-1"]
    np.testing.assert_array_equal(bank.kernels[0].weights, -np.array(SPEC_WEIGHTS["sobel-x"]))
    np.testing.assert_array_equal(bank.kernels[1].weights, -np.array(SPEC_WEIGHTS["sobel-y"]))
    np.savetxt(tmp_path / "plain.csv", np.arange(6.0).reshape(2, 3), delimiter=",")
    np.testing.assert_array_equal(
        resolve_kernel(str(tmp_path / "plain.csv")).kernels[0].weights, np.arange(6.0).reshape(2, 3))
    # no suffix at all, like numpy.loadtxt accepts
    (tmp_path / "weights").write_text("1 1\n1 1\n")
    assert resolve_kernel(str(tmp_path / "weights")).kernels[0].weights.shape == (2, 2)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1 2 3\n4 5\n", "line 2: ragged rows: 2 values, but line 1 has 3"),
        ("1 2\n3 x\n", "line 2: 'x' is not a number"),
        ("# only a comment\n\n", "holds no numbers"),
        ("1 nan\n", "finite"),
    ],
)
def test_text_matrix_errors(tmp_path, text, fragment):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(KernelError) as info:
        resolve_kernel(str(path))
    assert fragment in str(info.value) and "bad.txt" in str(info.value)


def test_binary_non_npy_file(tmp_path):
    path = tmp_path / "image.dat"
    path.write_bytes(b"\xff\xd8\xff\xe0binary")
    with pytest.raises(KernelError, match="not a text matrix"):
        resolve_kernel(str(path))


def test_toml_user_files(tmp_path):
    single = tmp_path / "mine.toml"
    single.write_text('description = "mine"\nscale = "1/4"\nweights = [[1, 1], [1, 1]]\n')
    bank = resolve_kernel(str(single))
    assert bank.name == "mine" and bank.labels == ["mine"]
    np.testing.assert_array_equal(bank.kernels[0].weights, np.full((2, 2), 0.25))

    multi = tmp_path / "multi.toml"
    multi.write_text(
        'name = "edges"\nmembers = ["mine-x", "sobel-y", "gaussian:sigma=1,size=3"]\n'
        'display = "abs"\n'
        '[[kernels]]\nname = "mine-x"\nweights = [[-1, 0, 1]]\n'
        '[[kernels]]\nname = "rgb"\nweights = [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]]\n'
    )
    bank = resolve_kernel(str(multi))
    assert bank.name == "edges"
    assert bank.labels == ["mine-x", "sobel-y", "gaussian-s1-n3"]
    assert bank.kernels[0].display == "abs"

    colour = tmp_path / "colour.toml"
    colour.write_text('[[kernels]]\nname = "a"\nweights = [[[1, 2, 3]]]\n'
                      '[[kernels]]\nname = "b"\nweights = [[[4, 5, 6]]]\n')
    stack = resolve_kernel(str(colour)).stack()
    np.testing.assert_array_equal(stack, [[[[1, 2, 3]]], [[[4, 5, 6]]]])
    assert stack.shape == (2, 1, 1, 3)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("weights = [[1, 2], [3]]\n", "row 2 has 1 values, row 1 has 2"),
        ("weights = [[[1, 2], 3]]\n", "same number of channels"),
        ('name = "x"\nweights = [[1]]\nmembers = ["sobel"]\n', "excludes [[kernels]] and `members`"),
        ('[[kernels]]\nname = "a"\nweights = [[1]]\n[[kernels]]\nname = "a"\nweights = [[1]]\n',
         "used twice"),
    ],
)
def test_toml_user_file_errors(tmp_path, text, fragment):
    path = tmp_path / "user.toml"
    path.write_text(text)
    with pytest.raises(KernelError) as info:
        load_kernel_file(path)
    assert fragment in str(info.value) and "user.toml" in str(info.value)


def test_npz_without_a_name_lists_its_layers(tmp_path):
    # an .npz is a model file (FILE:NAME, tests/test_modelfiles.py): alone it is an error naming them
    path = tmp_path / "k.npz"
    np.savez(path, a=np.ones((3, 3)), conv=np.ones((2, 1, 3, 3)))
    with pytest.raises(KernelError, match=r"k\.npz:NAME \(4-D tensors: conv\)"):
        resolve_kernel(str(path))


# --- resolution order and errors ----------------------------------------------------


def test_resolution_forms():
    assert resolve_kernel("1,0,-1;2,0,-2;1,0,-1").name == "inline"
    assert resolve_kernel("3x3: 0,1,0,1,-4,1,0,1,0").kernels[0].weights[1, 1] == -4
    assert resolve_kernel("1,2,1").kernels[0].weights.shape == (1, 3)
    assert resolve_kernel("1 2 1 2 1").kernels[0].weights.shape == (1, 5)
    assert resolve_kernel("-1 0 1").kernels[0].weights.tolist() == [[-1, 0, 1]]
    assert resolve_kernel("sobel:").labels == ["sobel-x", "sobel-y"]


def test_preset_name_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sobel").write_text("1 1\n1 1\n")
    assert resolve_kernel("sobel").labels == ["sobel-x", "sobel-y"]
    assert resolve_kernel("./sobel").labels == ["sobel"]
    Path("mykernel").write_text("1 1\n1 1\n")
    assert resolve_kernel("mykernel").labels == ["mykernel"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("sobl", "no kernel 'sobl'; did you mean 'sobel'? (convcli kernels list)"),
        ("gausian:sigma=2", "no kernel 'gausian'; did you mean 'gaussian'?"),
        ("zzzzqqq", "no kernel 'zzzzqqq' (convcli kernels list"),
        ("missing/k.npy", "kernel file not found: missing/k.npy"),
        ("nothere.toml", "kernel file not found: nothere.toml"),
        ("", "empty kernel spec"),
        ("   ", "empty kernel spec"),
        ("gaussian:sigma=-1", "kernel 'gaussian:sigma=-1': `sigma` must be a positive number"),
        ("gaussian:sigma=abc", "kernel 'gaussian:sigma=abc': parameter sigma='abc' is not a number"),
        ("box:size=0", "kernel 'box:size=0': `size` must be a positive integer, got 0"),
        ("box:size=2.5", "positive integer"),
        ("gaussian:sigm=2", "gaussian has no parameter 'sigm'; it takes sigma, size"),
        ("gaussian:2", "must be written name=value"),
        ("sobel:x=1", "kernel 'sobel:x=1': preset 'sobel' takes no parameters, got 'x=1'"),
        ("1,0,-1;2,0;1,0,-1", "kernel '1,0,-1;2,0;1,0,-1': ragged rows: row 2 has 2 values"),
        ("1,2,abc", "kernel '1,2,abc': row 1: 'abc' is not a number"),
        ("1,nan,1", "finite"),
        ("3x3: 1,2", "needs 9 values"),
        ("dog:sigma1=1,sigma2=1", "must differ"),
        ("gaussian:sigma=1e308", "too large"),
        ("gabor:lambda=1e308", "exceeds"),
        ("gabor:lambda=1e-308", "non-finite"),
        ("log:sigma=1e-300", "too small"),
    ],
)
def test_resolve_errors_name_the_spec(spec, fragment):
    with pytest.raises(KernelError) as info:
        resolve_kernel(spec)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_directory_is_not_a_kernel_file(tmp_path):
    with pytest.raises(KernelError, match="is a directory"):
        resolve_kernel(str(tmp_path))


def test_resolve_rejects_non_text():
    with pytest.raises(KernelError, match="must be text"):
        resolve_kernel(3)  # type: ignore[arg-type]


def test_load_bank_concatenates_and_names():
    bank = load_bank(["sobel", "gaussian:sigma=1", "laplacian"])
    assert bank.name == "sobel+gaussian-s1+laplacian"
    assert bank.labels == ["sobel-x", "sobel-y", "gaussian-s1", "laplacian-4"]
    with pytest.raises(KernelError, match="odd"):
        load_bank(["sobel", "roberts"]).stack()
    assert load_bank(["sobel"]).name == "sobel"
    assert load_bank("kirsch").name == "kirsch"


def test_load_bank_numbers_inline_kernels_and_renames_repeats():
    bank = load_bank(["1,2,1", "sobel-x", "3x3: 1,1,1,1,1,1,1,1,1", "sobel-x", "sobel"])
    assert bank.labels == ["k0", "sobel-x", "k1", "sobel-x-2", "sobel-x-3", "sobel-y"]
    np.testing.assert_array_equal(bank.kernels[3].weights, SPEC_WEIGHTS["sobel-x"])


def test_load_bank_empty():
    with pytest.raises(KernelError, match="no kernel given"):
        load_bank([])


PARAM_NAMES = ["sigma", "size", "sigma1", "sigma2", "theta", "lambda", "gamma", "psi", "length",
               "angle"]
PARAMETRIC_SPECS = st.sampled_from(["gaussian", "box", "log", "dog", "gabor", "motion"]).flatmap(
    lambda name: st.lists(
        st.tuples(st.sampled_from(PARAM_NAMES),
                  st.one_of(st.floats(-1e308, 1e308), st.integers(-5, 40))),
        max_size=4,
    ).map(lambda pairs: name + ":" + ",".join(f"{key}={value}" for key, value in pairs))
)
SPEC_CHARS = "0123456789,;: x.-+=/\\~\n\tabcdefgiklmnoprstuwxyzSN#\x00é"


@given(st.one_of(st.text(), st.text(alphabet=SPEC_CHARS, max_size=40),
                 st.sampled_from(REQUIRED).flatmap(
                     lambda name: st.text(alphabet=SPEC_CHARS, max_size=20).map(
                         lambda tail: f"{name}:{tail}")), PARAMETRIC_SPECS))
def test_resolve_fuzz_raises_only_convcli_errors(text):
    try:
        bank = resolve_kernel(text)
    except ConvcliError as exc:
        assert str(exc)
    else:
        stack = bank.stack() if len({k.weights.ndim for k in bank.kernels}) else None
        assert stack is None or np.isfinite(stack).all()


@pytest.mark.parametrize("text", ["nan,1", "inf", "nan", "Infinity;1"])
def test_inline_weights_starting_with_nan_or_inf_say_so(text):
    """`nan`/`inf` first looked like a preset name ('no kernel …'); they are non-finite weights."""
    from convcli.presets import load_bank

    with pytest.raises(KernelError, match="weights must be finite"):
        load_bank([text])
