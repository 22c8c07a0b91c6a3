"""``convcli shape`` end to end: SPEC vectors via --json, chains, errors, README examples, speed path.

The numbers checked come from SPEC.md / issue 4 (``shape_cases``), torch (for
parameter counts) or Pillow/numpy (for file sizes), not from convcli itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from shape_cases import FORWARD_VECTORS, RF_STACKS, SAME_VECTORS, TRANSPOSED_VECTORS
from typer.testing import CliRunner

from convcli.cli import app

REPO = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()


def run(*args: str):
    """Invoke ``convcli shape ARGS`` in-process with an 80-column terminal."""
    return RUNNER.invoke(app, ["shape", *args], env={"COLUMNS": "80"})


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result, *, code: int = 1, match: str = "") -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("convcli: error: "), lines
    assert match in lines[0]
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


# ------------------------------------------------------------ SPEC via --json
@pytest.mark.parametrize(("n", "k", "s", "p", "d", "expected"), FORWARD_VECTORS)
def test_forward_vectors_json(n, k, s, p, d, expected):
    args = [str(n), "-k", str(k), "-s", str(s), "-p", str(p), "-d", str(d)]
    if expected is None:
        assert_one_line_error(run(*args, "--json"), match="larger than the padded input")
        return
    report = run_json(*args)
    assert report["input"] == [n, n]
    assert report["output"] == [expected, expected]
    assert report["layers"][0]["output"] == [expected, expected]


@pytest.mark.parametrize(("n", "k", "s", "d", "expected", "pads"), SAME_VECTORS)
def test_same_vectors_json(n, k, s, d, expected, pads):
    report = run_json(str(n), "-k", str(k), "-s", str(s), "-d", str(d), "-p", "same")
    assert report["output"] == [expected, expected]
    assert report["pads"] == {"top": pads[0], "bottom": pads[1], "left": pads[0], "right": pads[1]}
    asymmetric = [note for note in report["notes"] if "asymmetrically" in note]
    assert bool(asymmetric) == (pads[0] != pads[1])


@pytest.mark.parametrize(("n", "k", "s", "p", "d", "op", "expected"), TRANSPOSED_VECTORS)
def test_transposed_vectors_json(n, k, s, p, d, op, expected):
    args = [str(n), "-k", str(k), "-s", str(s), "-p", str(p), "-d", str(d), "--transpose"]
    if op:
        args += ["--output-padding", str(op)]
    if expected is None:
        assert_one_line_error(run(*args, "--json"), match="output_padding")
        return
    assert run_json(*args)["output"] == [expected, expected]


@pytest.mark.parametrize(("name", "specs", "layers", "r", "jump", "start"), RF_STACKS,
                         ids=[case[0] for case in RF_STACKS])
def test_receptive_field_stacks_json(name, specs, layers, r, jump, start):
    args = ["224"]
    for spec in specs:
        args += ["--layer", spec]
    report = run_json(*args)
    assert len(report["layers"]) == len(specs)
    last = report["layers"][-1]
    assert last["receptive_field"] == [r, r]
    assert last["jump"] == [jump, jump]
    if start is not None:
        assert last["start"] == [start, start]
    assert report["output"] == last["output"]


def test_json_has_exactly_the_issue_keys():
    report = run_json("224", "-k", "3", "-s", "2")
    assert list(report) == ["input", "output", "padding", "pads", "kernel", "stride", "dilation",
                            "transposed", "layers", "notes"]
    assert report["padding"] == "same" and report["stride"] == [2, 2] and report["dilation"] == [1, 1]
    assert list(report["pads"]) == ["top", "bottom", "left", "right"]
    assert list(report["layers"][0]) == ["output", "receptive_field", "jump", "start"]
    chain = run_json("64", "--layer", "conv:k=3", "--layer", "pool:k=2")
    assert list(chain) == ["input", "output", "pads", "layers", "notes"]


def test_json_fractional_fields_after_a_tconv():
    report = run_json("16", "--layer", "tconv:k=4,s=2,p=1")
    assert report["layers"][0] == {"output": [32, 32], "receptive_field": [2.5, 2.5], "jump": [0.5, 0.5],
                                   "start": [1, 1]}


# ---------------------------------------------------------------- text output
def test_text_shows_pads_formula_and_same_note():
    result = run("224", "-k", "3", "-s", "2", "-p", "same")
    assert result.exit_code == 0
    assert "padding  same: top 0, bottom 1, left 0, right 1" in result.stdout
    assert "layer    kernel 3, stride 2, dilation 1" in result.stdout
    assert "floor((224 + 0 + 1 − 3) / 2) + 1 = 112" in result.stdout
    assert "PyTorch padding=1" in result.stdout


def test_default_padding_is_same_as_apply_and_layers_keep_torch_p0():
    # issue 14: `shape camera.png -k 3 -s 2` said 159×159 while apply wrote 160×160 (same)
    assert run_json("319", "-k", "3", "-s", "2")["output"] == [160, 160]
    assert run_json("319", "-k", "3", "-s", "2", "-p", "valid")["output"] == [159, 159]
    assert run_json("319", "--layer", "conv:k=3,s=2")["output"] == [159, 159]  # nn.Conv2d padding=0


def test_even_kernel_same_note_gives_torch_size():
    # k = 4 at stride 1: torch padding=2 (k//2) gives H + 1.
    report = run_json("10", "-k", "4", "-p", "same")
    assert report["output"] == [10, 10]
    assert any("PyTorch padding=2" in note and "gives 11 rows, not 10" in note for note in report["notes"])


def test_dropped_rows_note_per_axis():
    report = run_json("6", "5", "-k", "3", "-s", "2", "-p", "valid")
    assert report["output"] == [2, 2]
    assert [note.split(":")[0] for note in report["notes"]] == ["rows"]
    assert "1 row of the image" in report["notes"][0]


def test_transposed_range_note():
    report = run_json("3", "-k", "3", "-s", "2", "-p", "1", "--transpose")
    assert report["output"] == [5, 5]
    assert any("output_padding 0…1 reaches 5…6 rows" in note for note in report["notes"])


def test_size_forms_agree():
    assert run_json("7x5", "-k", "3")["input"] == [7, 5]
    assert run_json("7,5", "-k", "3")["input"] == [7, 5]
    assert run_json("7", "5", "-k", "3")["input"] == [7, 5]
    assert run_json("7", "-k", "3,1", "-p", "valid")["output"] == [5, 7]


def test_chain_table_flags_a_layer_below_one_and_exits_nonzero():
    result = run("5", "--layer", "conv:k=3", "--layer", "conv:k=5", "--layer", "conv:k=1")
    assert result.exit_code == 1
    assert "✗ -1×-1" in result.stdout
    assert "conv:k=1" not in result.stdout  # the chain stops at the flagged layer
    assert result.stderr.strip() == "convcli: error: layer 2 (conv:k=5) leaves -1 rows from 3: output < 1"


def test_chain_json_with_a_flagged_layer_still_prints_the_layers():
    result = run("5", "--layer", "conv:k=3", "--layer", "conv:k=5", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [layer["output"] for layer in report["layers"]] == [[3, 3], [-1, -1]]
    assert any("output < 1" in note for note in report["notes"])


# ----------------------------------------------------------------- --target
@pytest.mark.parametrize(("args", "target"), [
    (["224", "-k", "3", "-s", "2"], 112),
    (["224", "-k", "7", "-s", "2"], 112),
    (["13", "-k", "6", "-s", "5"], 3),
    (["10", "-k", "3", "-d", "2"], 10),
    (["5", "-k", "3", "-s", "2"], 9),
])
def test_target_padding_recomputes_to_the_target(args, target):
    report = run_json(*args, "--target", str(target))
    assert report["output"] == [target, target]
    pads = report["pads"]
    again = run_json(*args, "-p", f"{pads['top']},{pads['bottom']},{pads['left']},{pads['right']}")
    assert again["output"] == [target, target]


def test_target_output_padding_for_transpose():
    report = run_json("3", "-k", "3", "-s", "2", "-p", "1", "--transpose", "--target", "6,5")
    assert report["output"] == [6, 5]
    assert run_json("3", "-k", "3", "-s", "2", "-p", "1", "--transpose", "--output-padding", "1,0")[
        "output"] == [6, 5]


@pytest.mark.parametrize(("args", "match"), [
    (["224", "-k", "3", "-s", "2", "--target", "100"], "no padding gives 100"),
    (["3", "-k", "3", "-s", "2", "-p", "1", "--transpose", "--target", "9"], "no output_padding gives 9"),
    (["224", "-k", "3", "-p", "1", "--target", "224"], "drop -p"),
    (["224", "-k", "3", "--target", "0"], "target"),
])
def test_target_none_exists(args, match):
    assert_one_line_error(run(*args), match=match)


# ------------------------------------------------------------------ channels
@pytest.mark.parametrize("transpose", [False, True])
def test_parameter_count_matches_torch(transpose):
    torch = pytest.importorskip("torch")
    layer_type = torch.nn.ConvTranspose2d if transpose else torch.nn.Conv2d
    layer = layer_type(3, 64, (7, 5))
    args = ["32", "-k", "7,5", "-p", "valid", "--channels-in", "3", "--channels-out", "64"]
    args += ["--transpose"] if transpose else []
    report = run_json(*args)
    assert report["parameters"]["total"] == sum(p.numel() for p in layer.parameters())
    assert report["parameters"]["weights"] == layer.weight.numel()
    assert report["parameters"]["bias"] == layer.bias.numel()
    x = torch.zeros((1, 3, 32, 32))
    assert report["tensor"] == [*layer(x).shape[2:], 64]


# -------------------------------------------------------------------- images
def test_size_from_npy_and_png(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "array.npy"
    np.save(path, np.zeros((30, 40, 3), dtype=np.float32))
    assert run_json(str(path), "-k", "3")["input"] == [30, 40]
    image = pytest.importorskip("PIL.Image")
    png = REPO / "sample_images" / "camera.png"
    if not png.exists():
        pytest.skip("sample_images/camera.png missing")
    with image.open(png) as opened:
        width, height = opened.size
    assert run_json(str(png), "-k", "3")["input"] == [height, width]


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(("args", "match"), [
    (["4", "-k", "5", "-p", "valid"], "larger than the padded input"),
    (["no-such-file.png", "-k", "3"], "neither a size"),
    (["5", "-k", "0"], "kernel"),
    (["5", "-k", "3", "-s", "0"], "stride"),
    (["5", "-k", "3", "-d", "0"], "dilation"),
    (["5", "-k", "3", "-p", "bogus"], "padding"),
    (["5", "-k", "3", "-p", "1,2,3"], "padding"),
    (["5", "-k", "3", "-p", "-1"], "padding"),
    (["5", "-k", "3", "--output-padding", "1"], "--transpose"),
    (["3", "-k", "3", "--transpose", "-p", "full"], "full"),
    (["5"], "-k/--kernel"),
    (["5", "-k", "3", "--layer", "conv:k=3"], "cannot be combined"),
    (["5", "--layer", "dense:k=3"], "kind must be one of"),
    (["5", "--layer", "conv:k=3,zz=1"], "unknown key"),
    (["5", "-k", "3", "--channels-in", "3"], "go together"),
    (["5", "-k", "3", "--channels-in", "0", "--channels-out", "2"], "positive"),
    (["0", "-k", "1"], "positive"),
    (["5x6x7", "-k", "1"], "size"),
])
def test_errors_are_one_line(args, match):
    assert_one_line_error(run(*args), match=match)


def test_usage_errors_exit_2_without_traceback():
    result = run("5", "-k", "3", "--channels-in", "x")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "not a valid integer" in result.output


def test_help_teaches_the_layer_syntax():
    result = run("--help")
    assert result.exit_code == 0
    for text in ("Examples", "--layer", "conv:k=7,s=2,p=3", "tconv", "op=", "--target", "--json"):
        assert text in result.stdout


# ------------------------------------------------------------ speed: imports
def _modules_after(argv: list[str]) -> set[str]:
    """Top-level modules imported by running ``convcli ARGV`` in a fresh interpreter."""
    script = (
        "import sys\n"
        f"sys.argv = {['convcli', *argv]!r}\n"
        "from convcli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stderr.split())


def test_shape_imports_no_numpy_scipy_pillow_rich_or_pydantic():
    loaded = _modules_after(["shape", "224", "-k", "3"])
    assert "convcli" in loaded
    assert not loaded & {"numpy", "scipy", "PIL", "rich", "pydantic"}, loaded & {"numpy", "scipy", "PIL"}


def test_shape_chain_imports_rich_but_no_numpy():
    loaded = _modules_after(["shape", "224", "--layer", "conv:k=3", "--layer", "pool:k=2"])
    assert "rich" in loaded
    assert not loaded & {"numpy", "scipy", "PIL"}


# ------------------------------------------------------------- README examples
#: The examples of the README's ``shape`` section: (arguments after ``convcli``, output lines).
#: Long lines are split only to fit the source; the output has them whole.
README_EXAMPLES = [
    ('shape 224 -k 3 -s 2 -p same', [
        'input    224 × 224',
        'output   112 × 112   (forward)',
        'padding  same: top 0, bottom 1, left 0, right 1',
        'layer    kernel 3, stride 2, dilation 1',
        'rows     floor((224 + 0 + 1 − 3) / 2) + 1 = 112',
        'columns  floor((224 + 0 + 1 − 3) / 2) + 1 = 112',
        'note: rows and columns alike: `same` pads asymmetrically: 0 top, 1 bottom (TensorFlow SAME'
        '); PyTorch padding=1 (k_eff//2) pads 1 on both sides and gives 112 rows too, but every win'
        'dow starts 1 row higher',
    ]),
    ('shape 6 5 -k 3 -s 2 -p valid', [
        'input    6 × 5',
        'output   2 × 2   (forward)',
        'padding  valid: top 0, bottom 0, left 0, right 0',
        'layer    kernel 3, stride 2, dilation 1',
        'rows     floor((6 + 0 + 0 − 3) / 2) + 1 = 2',
        'columns  floor((5 + 0 + 0 − 3) / 2) + 1 = 2',
        'note: rows: 6 + 0 + 0 − 3 = 3 is not a multiple of the stride 2: the last 1 row of the pad'
        'ded input is never read (1 row of the image, 0 rows of padding)',
    ]),
    ('shape 3 -k 3 -s 2 -p 1 --transpose --output-padding 1', [
        'input    3 × 3',
        'output   6 × 6   (transposed)',
        'padding  1: top 1, bottom 1, left 1, right 1 (cropped from the scatter result)',
        'layer    kernel 3, stride 2, dilation 1, output_padding 1',
        'rows     (3 − 1)·2 − 1 − 1 + 3 + 1 = 6',
        'columns  (3 − 1)·2 − 1 − 1 + 3 + 1 = 6',
        'note: rows and columns alike: output_padding 0…1 reaches 5…6 rows (added at the bottom); t'
        'he forward conv with this k, s, d and pads maps each of those sizes back to 3',
    ]),
    ('shape 224 -k 3 -s 2 --target 112', [
        'input    224 × 224',
        'output   112 × 112   (forward)',
        'padding  for target 112: top 0, bottom 1, left 0, right 1',
        'layer    kernel 3, stride 2, dilation 1',
        'rows     floor((224 + 0 + 1 − 3) / 2) + 1 = 112',
        'columns  floor((224 + 0 + 1 − 3) / 2) + 1 = 112',
        'note: rows and columns alike: target 112: any total padding 1…2 works; used 0 top, 1 botto'
        'm (the smallest, split like `same`); symmetric padding 1 (PyTorch padding=1) works too',
    ]),
    ('shape 224 -k 7 -s 2 -p 3 --channels-in 3 --channels-out 64', [
        'input    224 × 224',
        'output   112 × 112   (forward)',
        'padding  3: top 3, bottom 3, left 3, right 3',
        'layer    kernel 7, stride 2, dilation 1',
        'rows     floor((224 + 3 + 3 − 7) / 2) + 1 = 112',
        'columns  floor((224 + 3 + 3 − 7) / 2) + 1 = 112',
        'tensor   (112, 112, 64) channels-last; PyTorch NCHW (1, 64, 112, 112)',
        'params   9,472 with bias (9,408 weights = 64·3·7·7, + 64 biases); 9,408 without',
        'note: rows and columns alike: 224 + 3 + 3 − 7 = 223 is not a multiple of the stride 2: the'
        ' last 1 row of the padded input is never read (0 rows of the image, 1 row of padding)',
    ]),
    ('shape 224 --layer conv:k=7,s=2,p=3 --layer pool:k=3,s=2,p=1 --layer conv:k=3,p=same,d=2', [
        ' #   layer                  output   pads t,b,l,r   field r   jump S   start P',
        '───────────────────────────────────────────────────────────────────────────────',
        '     input                 224×224                        1        1         0',
        ' 1   conv:k=7,s=2,p=3      112×112        3,3,3,3         7        2         3',
        ' 2   pool:k=3,s=2,p=1        56×56        1,1,1,1        11        4         5',
        ' 3   conv:k=3,p=same,d=2     56×56        2,2,2,2        27        4        13',
        'output j sees input rows j·S − P … j·S − P + r − 1',
        'note: layer 1 (conv:k=7,s=2,p=3): rows and columns alike: 224 + 3 + 3 − 7 = 223 is not a m'
        'ultiple of the stride 2: the last 1 row of the padded input is never read (0 rows of the i'
        'mage, 1 row of padding)',
        'note: layer 2 (pool:k=3,s=2,p=1): rows and columns alike: 112 + 1 + 1 − 3 = 111 is not a m'
        'ultiple of the stride 2: the last 1 row of the padded input is never read (0 rows of the i'
        'mage, 1 row of padding)',
    ]),
    ('shape 16 --layer tconv:k=4,s=2,p=1 --layer conv:k=3,p=1', [
        ' #   layer               output   pads t,b,l,r   field r   jump S   start P',
        '────────────────────────────────────────────────────────────────────────────',
        '     input                16×16                        1        1         0',
        ' 1   tconv:k=4,s=2,p=1    32×32        1,1,1,1       5/2      1/2         1',
        ' 2   conv:k=3,p=1         32×32        1,1,1,1       7/2      1/2       3/2',
        'output j sees input rows j·S − P … j·S − P + r − 1',
        'note: layer 1 (tconv:k=4,s=2,p=1): rows and columns alike: output_padding 0…1 reaches 32…3'
        '3 rows (added at the bottom); the forward conv with this k, s, d and pads maps each of tho'
        'se sizes back to 16',
        'note: after a tconv the jump is a fraction (stride 1/s): output j sees the input rows insi'
        'de the real interval [j·S − P, j·S − P + r − 1]',
    ]),
    ('shape 224 -k 3 -s 2 -p same --json', [
        '{"input":[224,224],"output":[112,112],"padding":"same","pads":{"top":0,"bottom":1,"left":0'
        ',"right":1},"kernel":[3,3],"stride":[2,2],"dilation":[1,1],"transposed":false,"layers":[{"'
        'output":[112,112],"receptive_field":[3,3],"jump":[2,2],"start":[0,0]}],"notes":["rows and '
        'columns alike: `same` pads asymmetrically: 0 top, 1 bottom (TensorFlow SAME); PyTorch padd'
        'ing=1 (k_eff//2) pads 1 on both sides and gives 112 rows too, but every window starts 1 ro'
        'w higher"]}',
    ]),
]


def readme_examples(markdown: str) -> list[tuple[str, str]]:
    """``$ convcli shape …`` commands and their shown output from the ```console blocks of a README."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", markdown, flags=re.S):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output) + "\n"))
                command, output = line[2:].strip(), []
            elif command is not None:
                output.append(line)
        if command is not None:
            examples.append((command, "\n".join(output) + "\n"))
    return [(c.removeprefix("convcli "), o) for c, o in examples if c.startswith("convcli shape ")]


def _normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _check_example(command: str, expected: str) -> None:
    import shlex

    result = RUNNER.invoke(app, shlex.split(command), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert _normalised(result.stdout) == _normalised(expected), result.stdout


@pytest.mark.parametrize(("command", "lines"), README_EXAMPLES, ids=[c for c, _ in README_EXAMPLES])
def test_readme_examples(command, lines):
    _check_example(command, "\n".join(lines) + "\n")


def test_readme_md_shape_examples():
    readme = REPO / "README.md"
    examples = readme_examples(readme.read_text(encoding="utf-8")) if readme.exists() else []
    if not examples:
        pytest.skip("README.md has no `convcli shape` console examples yet")
    for command, expected in examples:
        _check_example(command, expected)


def test_readme_parser_reads_console_blocks():
    markdown = "text\n```console\n$ convcli shape 5 -k 3\na\nb\n$ convcli other\nc\n```\n"
    assert readme_examples(markdown) == [("shape 5 -k 3", "a\nb\n")]
