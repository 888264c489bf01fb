"""`plot`: every fixture drawn to PNG and SVG, never blank, with the panels it should have; a
weight pattern set through Keras lands where it should in the pixels; the bias, norm and histogram
panels draw the file's own numbers; ConvLSTM kernels draw as [kernel positions × inputs, units];
large layers are downsampled in bounded memory without losing a single large weight; without
matplotlib, one line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect.cli import main
from lstm_inspect.errors import LstmInspectError, OutputError
from lstm_inspect.plot import HISTOGRAM_BINS, MAX_POINTS, _Grid, draw, plot, shrink
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, manifest
from .test_diff import TF1_AFTER, TF1_BEFORE, tf1_raw_gates

pytest.importorskip("matplotlib")
from matplotlib import colormaps  # noqa: E402
from matplotlib.image import imread  # noqa: E402

WITH_LAYERS = [e for e in manifest() if e["layers"]]
RED, WHITE, BLUE = (np.array(colormaps["RdBu_r"](x)[:3]) for x in (1.0, 0.5, 0.0))


def run(*args: object):
    return CliRunner().invoke(main, ["plot", *map(str, args)], catch_exceptions=False)


def expected_panels(layers, gates: int) -> tuple[int, int]:
    """(panels, heatmaps): per layer and gate two heatmaps and a histogram; per layer the bias and
    norm panels, and the projection's heatmap."""
    heatmaps = sum(2 * gates + (layer.spec.projection_size is not None) for layer in layers)
    return heatmaps + len(layers) * (gates + 2), heatmaps


def assert_not_blank(png: Path, result) -> np.ndarray:
    pixels = imread(png)
    assert pixels.shape[:2] == (result.height, result.width)
    coloured = np.abs(pixels[..., :3] - 1.0).max(axis=-1) > 0.1
    assert coloured.mean() > 0.05, coloured.mean()
    return pixels


@pytest.mark.parametrize("entry", WITH_LAYERS, ids=[e["name"] for e in WITH_LAYERS])
def test_every_fixture_draws_to_png_and_svg_with_its_panels(entry, tmp_path):
    # The first layer (or bidirectional pair) and one gate keep this quick; full figures are drawn below.
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        first = ckpt.layers[0].spec.pair or ckpt.layers[0].name
        png = plot(ckpt, str(tmp_path / "gates.png"), layers=[first], gates=["forget"])
        svg = plot(ckpt, str(tmp_path / "gates.svg"), layers=[first], gates=["forget"])
        drawn = ckpt.select([first])
        panels, heatmaps = expected_panels(drawn, 1)
    assert len(png.panels) == len(svg.panels) == panels
    assert png.layers == svg.layers == [layer.name for layer in drawn]
    assert set(png.layers) <= {layer["name"] for layer in entry["layers"]}
    assert_not_blank(tmp_path / "gates.png", png)
    text = (tmp_path / "gates.svg").read_text()
    assert len(re.findall(r'<g id="axes_\d+"', text)) == panels + heatmaps  # each heatmap has its colour bar
    for name in png.layers:
        assert name in text
    assert "forget · input kernel" in text and entry["path"].rsplit("/", 1)[-1] in text


OTHER_FIXTURES = [
    e for key in ("gru_fixtures", "forms_fixtures") for e in json.loads((FIXTURES / "manifest.json").read_text())[key]
]


@pytest.mark.parametrize("entry", OTHER_FIXTURES, ids=[e["name"] for e in OTHER_FIXTURES])
def test_every_gru_and_keras_form_fixture_draws(entry, tmp_path):
    # GRUs, the Keras forms and ConvLSTMs (their kernels as [kernel positions × inputs, units]) draw like LSTMs.
    out = tmp_path / "gates.png"
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        if not ckpt.layers:  # only layers lstm-inspect does not model
            return
        first = ckpt.layers[0]
        name = first.spec.pair or first.name
        gate = first.layout.cell.gates[0]
        result = plot(ckpt, str(out), layers=[name], gates=[gate])
        panels, _ = expected_panels(ckpt.select([name]), 1)
    assert len(result.panels) == panels
    assert_not_blank(out, result)


def keras3_conv_gates(path: Path, auto_name: str) -> dict[str, dict[str, np.ndarray]]:
    """A Keras 3 ConvLSTM2D's vars as its .keras file stores them: [kh, kw, in, 4 × filters] kernels,
    the gates i, f, c, o along the last axis (keras/src/layers/rnn/conv_lstm.py)."""
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
        kernel, recurrent, bias = (np.asarray(f[f"layers/{auto_name}/cell/vars/{i}"]) for i in range(3))
    filters = bias.shape[0] // 4
    return {
        gate: {
            "kernel": kernel[..., index * filters : (index + 1) * filters],
            "recurrent": recurrent[..., index * filters : (index + 1) * filters],
            "bias": bias[index * filters : (index + 1) * filters],
        }
        for index, gate in enumerate(("input", "forget", "cell", "output"))
    }


def test_a_convlstm_draws_its_kernels_as_kernel_positions_times_inputs_by_units(tmp_path):
    path = FIXTURES / "keras3_conv" / "model.keras"
    stored = keras3_conv_gates(path, "conv_lstm2d")
    with lstm_inspect.load(path) as ckpt:
        drawing = draw(ckpt, layers=["conv"])
        result = plot(ckpt, str(tmp_path / "conv.png"), layers=["conv"])
    assert len(result.panels) == 4 * 3 + 2  # per gate 2 heatmaps and a histogram; the bias and norms
    assert_not_blank(tmp_path / "conv.png", result)
    for ax, panel in drawing.panels:
        if panel.part not in ("kernel", "recurrent"):
            continue
        block = stored[panel.gate][panel.part]
        kh, kw, rows, units = block.shape
        (image,) = ax.images
        # Row (y, x, c) of the matrix is kernel position (y, x), input c: C order, the input fastest.
        np.testing.assert_array_equal(np.asarray(image.get_array()), block.reshape(kh * kw * rows, units))
        assert image.get_extent() == [-0.5, units - 0.5, kh * kw * rows - 0.5, -0.5]
        assert panel.shape == [kh, kw, rows, units] and panel.shown == [kh * kw * rows, units]
        assert "shown" not in panel.title  # reshaped, not downsampled
        word = "input" if panel.part == "kernel" else "recurrent"
        assert ax.get_ylabel() == f"3×3 kernel × {word} (3×3×{rows})"
    ((norms_ax, _),) = [(ax, p) for ax, p in drawing.panels if p.part == "norms"]
    for line in norms_ax.lines:
        gate = stored[line.get_label()]
        expected = np.sqrt((gate["kernel"].astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
        expected = np.hypot(expected, np.sqrt((gate["recurrent"].astype(np.float64) ** 2).sum(axis=(0, 1, 2))))
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)


def test_the_full_figure_of_a_bidirectional_model_puts_each_pair_side_by_side(tmp_path):
    with lstm_inspect.load(FIXTURES / "keras2_h5" / "model.h5") as ckpt:
        result = plot(ckpt, str(tmp_path / "all.png"))
        panels, _ = expected_panels(ckpt.layers, 4)
    assert len(result.panels) == panels == 3 * 14
    assert_not_blank(tmp_path / "all.png", result)

    def box(layer: str) -> tuple[int, int, int, int]:
        return next(p.bbox for p in result.panels if p.layer == layer and p.part == "kernel" and p.gate == "input")

    forward, backward, enc = box("bi/forward"), box("bi/backward"), box("enc")
    assert forward[1] == backward[1] and backward[0] > forward[2]  # same row, backward to the right
    assert enc[3] < forward[1]  # enc's row above the pair's
    histogram = next(p for p in result.panels if p.layer == "enc" and p.part == "histogram")
    assert (histogram.shape, histogram.shown) == ([12 * 16 + 16 * 16], [HISTOGRAM_BINS])
    titles = [p.title for p in result.panels if p.layer == "enc"]
    assert titles[:3] == ["input · input kernel [12×16]", "input · recurrent kernel [16×16]", "input · weights (448)"]


def sample(pixels: np.ndarray, bbox, rows: int, columns: int, row: int, column: int) -> np.ndarray:
    """The colour at the centre of cell (row, column) of a heatmap drawn in bbox."""
    left, top, right, bottom = bbox
    x = left + (column + 0.5) / columns * (right - left)
    y = top + (row + 0.5) / rows * (bottom - top)
    return pixels[round(y) - 1 : round(y) + 2, round(x) - 1 : round(x) + 2, :3].reshape(-1, 3).mean(axis=0)


def test_the_forget_gate_pattern_lands_where_keras_put_it(tmp_path):
    # fixtures/make_fixtures.py forget_pattern: +2 in rows 0-5 x units 0-7, -2 in rows 6-11 x units
    # 8-15, 0 elsewhere, set with kernel.assign on the forget columns of enc's kernel.
    with lstm_inspect.load(FIXTURES / "keras3_pattern" / "model.keras") as ckpt:
        result = plot(ckpt, str(tmp_path / "pattern.png"))
    pixels = imread(tmp_path / "pattern.png")
    (panel,) = [p for p in result.panels if (p.gate, p.part) == ("forget", "kernel")]
    assert panel.shape == panel.shown == [12, 16]
    for row in range(12):
        for unit in range(16):
            expected = RED if row < 6 and unit < 8 else BLUE if row >= 6 and unit >= 8 else WHITE
            colour = sample(pixels, panel.bbox, 12, 16, row, unit)
            assert np.abs(colour - expected).max() < 0.03, (row, unit, colour)
    # No other gate's kernel looks like that.
    (cell,) = [p for p in result.panels if (p.gate, p.part) == ("cell", "kernel")]
    corners = [sample(pixels, cell.bbox, 12, 16, r, u) for r, u in ((0, 0), (11, 15))]
    assert not (np.abs(corners[0] - RED).max() < 0.03 and np.abs(corners[1] - BLUE).max() < 0.03)


def test_a_diff_plot_shows_the_change_where_training_made_it(tmp_path):
    with lstm_inspect.load(TF1_BEFORE) as before, lstm_inspect.load(TF1_AFTER) as after:
        result = plot(before, str(tmp_path / "change.png"), gates=["cell"], against=after)
    assert result.against == str(TF1_AFTER)
    pixels = imread(tmp_path / "change.png")
    delta = tf1_raw_gates(TF1_AFTER, "rnn/lstm_cell", 12)["cell"]["kernel"].astype(np.float64)
    delta -= tf1_raw_gates(TF1_BEFORE, "rnn/lstm_cell", 12)["cell"]["kernel"]
    (panel,) = [p for p in result.panels if p.part == "kernel"]
    assert panel.title == "Δ cell · input kernel [12×16]"
    row, unit = np.unravel_index(np.argmax(np.abs(delta)), delta.shape)
    extreme = RED if delta[row, unit] > 0 else BLUE
    assert np.abs(sample(pixels, panel.bbox, 12, 16, row, unit) - extreme).max() < 0.03
    # The bias was not trained: its change is 0 for every unit, drawn as a flat line at 0.
    (bias,) = [p for p in result.panels if p.part == "bias"]
    assert bias.title == "Δ bias per gate"


def big_layer(path: Path, units: int, input_size: int, spike: tuple[int, int]) -> int:
    rng = np.random.default_rng(5)
    arrays = []
    for gate in ("input", "forget", "cell", "output"):
        kernel = rng.uniform(-0.01, 0.01, (input_size, units)).astype(np.float32)
        if gate == "forget":
            kernel[spike] = 10.0
        arrays += [
            (f"big/{gate}/kernel", kernel),
            (f"big/{gate}/recurrent", rng.uniform(-0.01, 0.01, (units, units)).astype(np.float32)),
            (f"big/{gate}/bias", np.zeros(units, np.float32)),
        ]
    arrays.append(("big/forget_bias", np.array(1.0, np.float32)))
    write_npz(str(path), arrays)
    return sum(value.nbytes for _, value in arrays)


def test_a_large_layer_is_downsampled_in_bounded_memory_and_keeps_its_spike(tmp_path):
    units, input_size, spike = 1100, 40, (37, 1033)
    layer_bytes = big_layer(tmp_path / "big.npz", units, input_size, spike)
    with lstm_inspect.load(tmp_path / "big.npz") as ckpt:
        tracemalloc.start()
        try:
            result = plot(ckpt, str(tmp_path / "big.png"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.downsampled
    assert peak < 2 * layer_bytes, (peak, layer_bytes)  # the layer, and one block's work at a time
    rows, columns = _Grid.heatmap_pixels(100)  # the heatmap's plotting area at the default dpi
    for panel in result.panels:
        assert all(n <= MAX_POINTS for n in panel.shown), panel
        if panel.part in ("kernel", "recurrent"):
            assert panel.shown[0] <= rows and panel.shown[1] <= columns, panel
            left, top, right, bottom = panel.bbox
            assert panel.shown[1] <= right - left and panel.shown[0] <= bottom - top  # a pixel or more per cell
    (kernel,) = [p for p in result.panels if (p.gate, p.part) == ("forget", "kernel")]
    factor = -(-units // columns)
    bins = -(-units // factor)
    assert kernel.shape == [input_size, units] and kernel.shown == [input_size, bins]
    assert kernel.title == f"forget · input kernel [{input_size}×{units}]\n{input_size}×{bins} shown"
    pixels = imread(tmp_path / "big.png")
    # The spike's bin is a pixel or two wide: one of the pixels it spans is the colour scale's top.
    left, top, right, bottom = kernel.bbox
    y = round(top + (spike[0] + 0.5) / input_size * (bottom - top))
    first, last = (left + (spike[1] // factor + edge) / bins * (right - left) for edge in (0, 1))
    span = pixels[y, int(first) : int(np.ceil(last)) + 1, :3]
    assert np.abs(span - RED).max(axis=1).min() < 0.03, span
    assert np.abs(sample(pixels, kernel.bbox, input_size, bins, 5, 100) - WHITE).max() < 0.03
    run(tmp_path / "big.npz", "-o", tmp_path / "big.svg", "--gate", "f", "-q")
    assert "Downsampled for display" in (tmp_path / "big.svg").read_text()


def test_shrink_keeps_the_value_of_largest_magnitude_in_each_bin():
    values = np.array([0.1, -3.0, 0.2, 0.5, 0.4, -0.3, 2.0])
    np.testing.assert_array_equal(shrink(values, 3), [-3.0, 0.5, 2.0])
    grid = np.zeros((7, 9))
    grid[3, 8], grid[6, 0] = -5.0, 2.0
    np.testing.assert_array_equal(shrink(grid, 3), [[0, 0, 0], [0, 0, -5.0], [2.0, 0, 0]])
    assert shrink(grid, 100) is not None and shrink(grid, 100).shape == (7, 9)


# ---- the command line and its errors -------------------------------------------------------------------


def assert_one_line(result, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_the_command_writes_a_pdf_and_says_what_it_drew(tmp_path):
    result = run(FIXTURES / "tf1_bidi" / "model.ckpt", "-o", tmp_path / "bidi.PDF", "--gate", "o", "--dpi", "50")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "bidi.PDF").read_bytes().startswith(b"%PDF")
    assert result.stdout.startswith("Wrote 10 panels for bidirectional_rnn/fw/basic_lstm_cell, ")
    assert "(1020×" in result.stdout  # two layers side by side, 3 panels of 3.4 in each, at 50 dpi


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("gates.txt", "plot writes .png, .svg or .pdf"),
        ("gates", "gates: plot writes .png, .svg or .pdf, so the name must end so: e.g. -o "),
        ("missing/x.png", "does not exist"),
    ],
)
def test_bad_output_names_are_refused_in_one_line(name, fragment, tmp_path):
    assert_one_line(run(FIXTURES / "tf1_basic" / "model.ckpt", "-o", tmp_path / name), fragment)


def test_an_output_that_is_a_directory_or_the_input_is_refused(tmp_path):
    (tmp_path / "d.png").mkdir()
    assert_one_line(run(FIXTURES / "tf1_basic" / "model.ckpt", "-o", tmp_path / "d.png"), "is a directory")
    # An .npz sniffed by its contents, whatever its name: plotting it onto itself would destroy it.
    weights = tmp_path / "weights.png"
    big_layer(weights, 8, 3, (0, 0))
    before = weights.read_bytes()
    assert_one_line(run(weights, "-o", weights), "is the input file")
    assert weights.read_bytes() == before


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def failing(self, f, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", failing)
    assert_one_line(run(FIXTURES / "tf1_basic" / "model.ckpt", "-o", tmp_path / "x.png"), "No space left on device")
    assert os.listdir(tmp_path) == []


def test_diff_errors_and_selection_limits(tmp_path):
    basic, adam = FIXTURES / "tf1_basic" / "model.ckpt", FIXTURES / "tf1_adam" / "model.ckpt"
    assert_one_line(run(basic, "--diff", adam, "-o", tmp_path / "x.png"), "rnn/basic_lstm_cell", "nothing to draw")
    keras3 = FIXTURES / "keras3" / "model.keras"
    partly = run(keras3, "--diff", FIXTURES / "keras3_finetune" / "after.keras", "-o", tmp_path / "x.png", "-q")
    assert partly.exit_code == 0 and (tmp_path / "x.png").exists()
    assert partly.stderr.splitlines() == [
        f"Warning: {FIXTURES / 'keras3_finetune' / 'after.keras'}: no layer matches 'bi/forward' of {keras3}; "
        "it is not drawn",
        f"Warning: {FIXTURES / 'keras3_finetune' / 'after.keras'}: no layer matches 'bi/backward' of {keras3}; "
        "it is not drawn",
    ]
    usage = run(basic, "--map", "a=b", "-o", tmp_path / "x.png")
    assert usage.exit_code == 2 and "--map applies to --diff only" in usage.stderr
    arrays = []
    for index in range(9):
        for gate in ("input", "forget", "cell", "output"):
            arrays += [(f"l{index}/{gate}/{part}", np.ones((2, 2), np.float32)) for part in ("kernel", "recurrent")]
    write_npz(str(tmp_path / "many.npz"), arrays)
    assert_one_line(run(tmp_path / "many.npz", "-o", tmp_path / "x.png"), "9 layers", "--layer")
    assert run(tmp_path / "many.npz", "-o", tmp_path / "x.png", "--layer", "l3", "-q").exit_code == 0
    with lstm_inspect.load(tmp_path / "many.npz") as ckpt, pytest.raises(LstmInspectError, match="unknown gate"):
        plot(ckpt, str(tmp_path / "y.png"), gates=["z"])
    with lstm_inspect.load(tmp_path / "many.npz") as ckpt, pytest.raises(OutputError):
        plot(ckpt, str(tmp_path / "y.jpg"))


def test_without_matplotlib_plot_says_which_extra_to_install(tmp_path):
    out = tmp_path / "x.png"
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from lstm_inspect.cli import main\n"
        f"main(['plot', {str(FIXTURES / 'tf1_basic' / 'model.ckpt')!r}, '-o', {str(out)!r}])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == "Error: plot needs matplotlib, an optional extra: pip install 'lstm-inspect[plot]'"
    assert not out.exists()


def test_only_plot_imports_matplotlib_and_never_pyplot(tmp_path):
    code = (
        "import sys\nfrom lstm_inspect.cli import main\n"
        "for args in (['summary', {basic!r}], ['diff', {basic!r}, {basic!r}]):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "print('BEFORE', 'matplotlib' in sys.modules)\n"
        "try:\n    main(['plot', {basic!r}, '-o', {out!r}, '-q'])\nexcept SystemExit:\n    pass\n"
        "print('AFTER', 'matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    ).format(basic=str(FIXTURES / "tf1_basic" / "model.ckpt"), out=str(tmp_path / "x.png"))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert "BEFORE False" in output and "AFTER True False" in output, output


# ---- what the panels draw, read back from matplotlib's artists ------------------------------------------


def test_the_bias_norm_and_histogram_panels_draw_the_files_numbers():
    path = FIXTURES / "tf1_basic" / "model.ckpt"
    stored = tf1_raw_gates(path, "rnn/basic_lstm_cell", 12)
    with lstm_inspect.load(path) as ckpt:
        assert ckpt.layers[0].spec.forget_bias == 1.0  # its graph's forget_bias
        drawing = draw(ckpt)
    axes = {(p.gate, p.part): (ax, p) for ax, p in drawing.panels}
    bias, panel = axes[None, "bias"]
    assert panel.title == "bias per gate (forget +1 at run time)"
    lines = {line.get_label(): line for line in bias.lines}
    assert set(lines) == {"input", "forget", "cell", "output", "forget + 1 (effective)"}
    for gate, blocks in stored.items():
        np.testing.assert_array_equal(lines[gate].get_xdata(), np.arange(64))
        np.testing.assert_array_equal(lines[gate].get_ydata(), blocks["bias"])
    # The forget gate's bias as the cell uses it (rnn_cell_impl.py: sigmoid(f + forget_bias)), dashed.
    effective = lines["forget + 1 (effective)"]
    np.testing.assert_allclose(effective.get_ydata(), stored["forget"]["bias"].astype(np.float64) + 1.0, rtol=1e-15)
    assert effective.get_linestyle() == "--" and effective.get_color() == lines["forget"].get_color()
    norms, _ = axes[None, "norms"]
    for line in norms.lines:
        blocks = stored[line.get_label()]
        whole = np.vstack([blocks["kernel"], blocks["recurrent"]]).astype(np.float64)
        np.testing.assert_allclose(line.get_ydata(), np.linalg.norm(whole, axis=0), rtol=1e-12)
    assert {line.get_label() for line in norms.lines} == set(stored)
    for gate, blocks in stored.items():
        histogram, panel = axes[gate, "histogram"]
        (patch,) = histogram.patches
        counts, edges, _ = patch.get_data()
        assert counts.sum() == 76 * 64 == panel.shape[0] and len(counts) == HISTOGRAM_BINS
        weights = np.concatenate([blocks["kernel"].ravel(), blocks["recurrent"].ravel()])
        assert (edges[0], edges[-1]) == (weights.min(), weights.max())
        np.testing.assert_array_equal(counts, np.histogram(weights, bins=edges)[0])


@pytest.mark.filterwarnings("ignore:.*NaN or infinite")
def test_a_histogram_leaves_out_non_finite_weights_and_counts_the_rest(tmp_path):
    arrays = []
    for gate in ("input", "forget", "cell", "output"):
        kernel = np.linspace(-1, 1, 3 * 4, dtype=np.float32).reshape(3, 4)
        if gate == "cell":
            kernel[0, 0], kernel[1, 1] = np.nan, np.inf
        arrays += [(f"l/{gate}/kernel", kernel), (f"l/{gate}/recurrent", np.full((4, 4), 0.5, np.float32))]
    write_npz(str(tmp_path / "w.npz"), arrays)
    with lstm_inspect.load(tmp_path / "w.npz") as ckpt:
        drawing = draw(ckpt, gates=["cell", "output"])
    counts = {p.gate: ax.patches[0].get_data()[0] for ax, p in drawing.panels if p.part == "histogram"}
    assert counts["output"].sum() == 12 + 16 and counts["cell"].sum() == 12 + 16 - 2


def test_a_4096_unit_layer_is_drawn_from_arrays_of_bounded_size(tmp_path):
    # A projection keeps the file small (recurrent [8, 4096]) while its heatmap, [4096, 8], is
    # 4096 rows high: both axes of a heatmap are bounded, and so is every line.
    units, projected, inputs = 4096, 8, 8
    rng = np.random.default_rng(7)
    arrays = [
        (f"wide/{gate}/{part}", rng.standard_normal(shape).astype(np.float32))
        for gate in ("input", "forget", "cell", "output")
        for part, shape in (("kernel", (inputs, units)), ("recurrent", (projected, units)), ("bias", (units,)))
    ]
    arrays.append(("wide/projection", rng.standard_normal((units, projected)).astype(np.float32)))
    write_npz(str(tmp_path / "wide.npz"), arrays)
    with lstm_inspect.load(tmp_path / "wide.npz") as ckpt:
        assert ckpt.layers[0].spec.units == units and ckpt.layers[0].spec.projection_size == projected
        drawing = draw(ckpt)
    rows, columns = _Grid.heatmap_pixels(100)
    images = [(image, panel) for ax, panel in drawing.panels for image in ax.images]
    assert len(images) == 4 * 2 + 1
    for image, panel in images:
        height, width = np.shape(image.get_array())
        assert height <= rows and width <= columns, panel
        assert [height, width] == panel.shown
    (projection,) = [np.shape(image.get_array()) for image, panel in images if panel.part == "projection"]
    assert projection == (-(-units // -(-units // rows)), projected)
    lines = [line for ax, _ in drawing.panels for line in ax.lines]
    assert len(lines) == 4 + 4  # a bias and a norm per gate (the npz adds no forget bias at run time)
    assert all(len(line.get_ydata()) == MAX_POINTS for line in lines)
    assert drawing.downsampled and any("Downsampled for display" in t.get_text() for t in drawing.figure.texts)
