"""`plot`: the gate blocks of LSTM layers as pictures (PNG, SVG or PDF), or the change between two files.

Per layer, one row per gate: a heatmap of its input kernel and of its recurrent kernel (symmetric
colour scale around 0, a colour bar each, axes in the layer's sizes) and a histogram of its
weights; then the bias per gate and the norm of each unit's weights per gate (and the projection,
when the layer has one). The halves of a bidirectional pair sit side by side. With `against`, each
picture shows B − A on the blocks diff.py compares (gate order, fused tensors and where the forget
bias is kept already undone). A ConvLSTM's kernels are drawn as matrices too: each unit's column
holds its weights at every kernel position for every input, [kernel positions × inputs, units].

Large blocks are downsampled for display only: a heatmap shows at most one cell per pixel of its
panel, each the value of largest magnitude in its bin, so that a stripe or an outlier stays visible
(drawn larger, Agg's own resampling would skip cells);
histograms, norms and colour scales use every value, a piece at a time (a block that is a view of
a fused tensor is never copied whole). The figure says when it did so. One layer is read at a time
and released once its pictures are computed; what the figure keeps is the downsampled data.

`draw` builds the figure without saving it (its axes hold the drawn data, as matplotlib's artists);
`plot` draws and saves it.

matplotlib is an optional extra, imported here only, with its Agg canvas: no display is ever opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, field
from typing import TYPE_CHECKING, Any

from .errors import LstmInspectError, OutputError, warn
from .records import record
from .schema import CELL_KINDS, SPATIAL_SIZES

if TYPE_CHECKING:
    import numpy as np

    from .api import Checkpoint, Layer
    from .weights import Weights

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
# Points per line of the bias and norm panels.
MAX_POINTS = 1024
HISTOGRAM_BINS = 60
# More layers than this make a figure too tall to read (and past what Agg draws): --layer chooses.
MAX_LAYERS = 8
_COLOURMAP = "RdBu_r"  # red positive, blue negative, white zero
_INSTALL = "pip install 'lstm-inspect[plot]'"


@record
class Panel:
    """One picture in the figure, with where it was drawn.

    bbox: left, top, right, bottom of its plotting area in pixels of the figure at its dpi, from the
    top-left corner (the PNG's own pixels; an SVG or PDF drawn the same way)."""

    layer: str
    gate: str | None  # None for a panel of every gate (bias, norms) or of the layer (projection)
    part: str  # "kernel", "recurrent", "histogram", "bias", "norms", "projection"
    title: str
    shape: list[int]  # of the block it shows (as stored, before any downsampling)
    shown: list[int]  # what was drawn: smaller than shape when downsampled (a histogram: its bins)
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)


@record
class PlotResult:
    path: str
    format: str
    source: str
    against: str | None  # B of `plot A --diff B`
    layers: list[str]
    width: int  # pixels at the figure's dpi
    height: int
    downsampled: bool
    panels: list[Panel] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def output_format(path: str) -> str:
    """ "png", "svg" or "pdf" from the output's name (any case); any other name is refused."""
    if not path:
        raise OutputError("the output file name is empty; give -o FILE.png, FILE.svg or FILE.pdf")
    stem, suffix = os.path.splitext(path)
    kind = FORMATS.get(suffix.lower())
    if kind is None:
        raise OutputError(f"{path}: plot writes .png, .svg or .pdf, so the name must end so: e.g. -o {stem}.png")
    return kind


def require_matplotlib() -> Any:
    """matplotlib's Figure class, or one clean error naming the extra to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401 - no display backend
        from matplotlib.figure import Figure
    except ImportError:
        raise LstmInspectError(f"plot needs matplotlib, an optional extra: {_INSTALL}") from None
    return Figure


# ---- what each layer's pictures are made of --------------------------------------------------------


def shrink(values: np.ndarray, limit: int | Sequence[int]) -> np.ndarray:
    """`values` with at most `limit` entries along each axis (or limit[axis]): each the value of largest
    magnitude in its bin of `factor` consecutive entries (the last bin may hold fewer), so that a
    single large weight shows."""
    import numpy as np

    out = np.asarray(values)
    limits = [limit] * out.ndim if isinstance(limit, int) else list(limit)
    for axis, (length, limit) in enumerate(zip(values.shape, limits)):
        if length <= limit:
            continue
        factor = -(-length // limit)
        whole = length - length % factor
        moved = np.moveaxis(out, axis, -1)
        # Whole bins through a reshape (a view of the data), the partial last one on its own.
        binned = moved[..., :whole].reshape(*moved.shape[:-1], whole // factor, factor)
        high, low = binned.max(axis=-1), binned.min(axis=-1)
        if whole < length:
            high = np.concatenate([high, moved[..., whole:].max(axis=-1, keepdims=True)], axis=-1)
            low = np.concatenate([low, moved[..., whole:].min(axis=-1, keepdims=True)], axis=-1)
        out = np.moveaxis(np.where(-low > high, low, high), -1, axis)
    return out


@record
class _Heatmap:
    values: np.ndarray  # downsampled
    shape: tuple[int, ...]  # as stored
    grid: tuple[int, int]  # as a matrix (a ConvLSTM's kernel positions and inputs as its rows), before downsampling
    scale: float  # max |x| over every value: the colour scale is [-scale, scale]


@record
class _GatePictures:
    kernel: _Heatmap
    recurrent: _Heatmap
    counts: np.ndarray
    edges: np.ndarray


@record
class _LayerPictures:
    name: str
    title: str
    sizes: dict[str, int]
    gates: dict[str, _GatePictures]
    bias: dict[str, np.ndarray]  # per gate, downsampled
    bias_label: str
    # The forget gate's bias as the cell uses it (stored + the runtime forget bias), when it adds one.
    effective_bias: tuple[str, float, np.ndarray] | None
    norms: dict[str, np.ndarray]  # per gate, downsampled
    projection: _Heatmap | None
    downsampled: bool


def _matrix(block: np.ndarray) -> np.ndarray:
    """A kernel as [rows, units]: a ConvLSTM's [*kernel, inputs, units] with its kernel positions and
    inputs as rows (C order: the input changes fastest), a view where numpy can make one."""
    return block if block.ndim <= 2 else block.reshape(-1, block.shape[-1])


def _heatmap(block: np.ndarray, pixels: tuple[int, int]) -> _Heatmap:
    import numpy as np

    matrix = _matrix(block)
    # The largest |x| from the extremes: np.abs would copy the block whole. fmax and fmin skip NaN.
    scale = (
        max(float(np.fmax.reduce(matrix, axis=None)), -float(np.fmin.reduce(matrix, axis=None))) if matrix.size else 0.0
    )
    shown = shrink(matrix, pixels if matrix.ndim == 2 else min(pixels))
    grid = (int(matrix.shape[0]), int(matrix.shape[1]))
    return _Heatmap(shown, tuple(block.shape), grid, scale if scale > 0 and np.isfinite(scale) else 1.0)


def _finite_pieces(blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """The blocks' finite values a piece at a time: np.histogram flattens what it is given, which
    copies a block that is a view of a fused tensor whole."""
    import numpy as np

    from .results import _pieces

    for block in blocks:
        for piece in _pieces(block):
            finite = np.isfinite(piece)
            yield piece if finite.all() else piece[finite]


def _histogram(blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    low, high = np.inf, -np.inf
    for piece in _finite_pieces(blocks):
        if piece.size:
            low, high = min(low, float(piece.min())), max(high, float(piece.max()))
    if low > high:  # no finite value at all
        low = high = 0.0
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    counts = np.zeros(HISTOGRAM_BINS, np.int64)
    for piece in _finite_pieces(blocks):
        counts += np.histogram(piece, bins=edges)[0]
    return counts, edges


def _pictures(
    weights: Weights, gates: Sequence[str], title: str, runtime_forget_bias: float, pixels: tuple[int, int]
) -> _LayerPictures:
    """What the layer's panels show; `pixels`: (rows, columns) of a heatmap panel."""
    import numpy as np

    from .sparkline import unit_norms
    from .weights import merge_biases

    two_biases = weights.has("recurrent_bias")
    weights = merge_biases(weights)
    pictures: dict[str, _GatePictures] = {}
    bias, norms = {}, {}
    for gate in gates:
        kernel, recurrent = weights.blocks[(gate, "kernel")], weights.blocks[(gate, "recurrent")]
        counts, edges = _histogram([kernel, recurrent])
        pictures[gate] = _GatePictures(_heatmap(kernel, pixels), _heatmap(recurrent, pixels), counts, edges)
        norms[gate] = shrink(unit_norms(kernel, recurrent), MAX_POINTS)
        if (gate, "bias") in weights.blocks:
            bias[gate] = shrink(weights.blocks[(gate, "bias")], MAX_POINTS)
    label = "bias (input-side + recurrent-side) per gate" if two_biases else "bias per gate"
    effective = None
    forget = weights.cell.forget_gate
    if runtime_forget_bias and forget in bias:
        label += f" (forget +{runtime_forget_bias:g} at run time)"
        stored = weights.blocks[(forget, "bias")]
        effective = (
            forget,
            runtime_forget_bias,
            shrink(np.add(stored, runtime_forget_bias, dtype=np.float64), MAX_POINTS),
        )
    projection = weights.projection
    sizes = weights.sizes
    heatmaps = [h for p in pictures.values() for h in (p.kernel, p.recurrent)]
    projected = None if projection is None else _heatmap(projection, pixels)
    heatmaps += [projected] if projected is not None else []
    downsampled = sizes["units"] > MAX_POINTS or any(h.values.shape != h.grid for h in heatmaps)
    return _LayerPictures(
        weights.name,
        title,
        sizes,
        pictures,
        bias,
        label,
        effective,
        norms,
        projected,
        downsampled,
    )


def _describe(layer: Layer) -> str:
    spec = layer.spec
    extras = f", projection {spec.projection_size}" if spec.projection_size else ""
    return f"{spec.cell}, {spec.input_size} inputs, {spec.units} units{extras}"


# ---- the figure -----------------------------------------------------------------------------------------

_SIZE_WORDS = {"input": "input", "recurrent": "recurrent", "units": "units", "projection": "projected"}


def _axis_label(size: str, sizes: Mapping[str, int], spatial: bool = False) -> str:
    word = _SIZE_WORDS[size]
    if size == "recurrent" and "projection" in sizes:
        word = "projected recurrent"
    kernel = [sizes[s] for s in SPATIAL_SIZES if s in sizes]
    if spatial and kernel:  # a ConvLSTM's rows: every kernel position's inputs (_matrix)
        return f"{'×'.join(map(str, kernel))} kernel × {word} ({'×'.join(map(str, [*kernel, sizes[size]]))})"
    return f"{word} ({sizes[size]})"


class _Grid:
    """Where each panel goes, in inches from the figure's top-left corner. Fixed margins, not
    matplotlib's constrained layout: that measures every tick label of every panel, which took
    most of the time of a plot."""

    PANEL = (3.4, 2.3)  # width, height of one cell of the grid
    MARGINS = (0.62, 0.5, 0.46)  # left (y label, ticks), bottom (x label, ticks), top (a title of two lines)
    RIGHT = {True: 0.75, False: 0.2}  # with a colour bar, without
    ROW_TITLE, LAYER_TITLE, NOTE = 0.45, 0.3, 0.5

    @classmethod
    def heatmap_pixels(cls, dpi: int) -> tuple[int, int]:
        """(rows, columns): the pixels of a heatmap's plotting area at `dpi`."""
        (cell_width, cell_height), (margin_left, margin_bottom, margin_top) = cls.PANEL, cls.MARGINS
        width = cell_width - margin_left - cls.RIGHT[True]
        return int((cell_height - margin_bottom - margin_top) * dpi), int(width * dpi)

    def __init__(self, fig: Any, height: float) -> None:
        self.fig, self.height = fig, height
        self.width = fig.get_figwidth()

    def axes(self, left: float, top: float, colour_bar: bool) -> tuple[Any, Any | None]:
        """The axes of the cell whose top-left corner is at (left, top), and its colour bar's."""
        (cell_width, cell_height), (margin_left, margin_bottom, margin_top) = self.PANEL, self.MARGINS
        width = cell_width - margin_left - self.RIGHT[colour_bar]
        bottom = top + cell_height - margin_bottom
        height = cell_height - margin_bottom - margin_top
        ax = self.fig.add_axes(self._rect(left + margin_left, bottom, width, height))
        bar = None
        if colour_bar:
            bar = self.fig.add_axes(self._rect(left + margin_left + width + 0.08, bottom, 0.12, height))
        for axes in (ax, bar):
            if axes is not None:
                # Ticks cost more to draw than anything else in a panel: a few per axis are enough.
                axes.locator_params(nbins=4)
        return ax, bar

    def text(self, centre: float, top: float, text: str, size: str) -> None:
        self.fig.text(centre / self.width, 1 - top / self.height, text, ha="center", va="top", fontsize=size)

    def _rect(self, left: float, bottom: float, width: float, height: float) -> list[float]:
        return [left / self.width, 1 - bottom / self.height, width / self.width, height / self.height]


def _draw_heatmap(
    grid: _Grid, ax: Any, bar: Any, heatmap: _Heatmap, rows: str, columns: str, sizes: Mapping[str, int]
) -> None:
    height, width = heatmap.grid
    image = ax.imshow(
        heatmap.values,
        cmap=_COLOURMAP,
        vmin=-heatmap.scale,
        vmax=heatmap.scale,
        aspect="auto",
        interpolation="nearest",
        # Cell centres at the stored indices, downsampled or not.
        extent=(-0.5, width - 0.5, height - 0.5, -0.5),
    )
    ax.set_xlabel(_axis_label(columns, sizes))
    ax.set_ylabel(_axis_label(rows, sizes, spatial=len(heatmap.shape) > 2))
    grid.fig.colorbar(image, cax=bar)


def _gate_colour(gate: str) -> str:
    # By the gate's place in its cell kind: the same gate has the same colour in every figure.
    return f"C{next(kind.gates.index(gate) for kind in CELL_KINDS.values() if gate in kind.gates)}"


def _draw_layer(grid: _Grid, left: float, top: float, pictures: _LayerPictures, diff: bool) -> list[tuple[Any, Panel]]:
    """The panels of one layer, in the grid cells below (left, top): a row per gate, then the summary row."""
    import numpy as np

    cell_width, cell_height = grid.PANEL
    sizes = pictures.sizes
    gates = list(pictures.gates)
    grid.text(left + 1.5 * cell_width, top, _wrapped(pictures.title, 100), "medium")
    top += grid.LAYER_TITLE
    prefix = "Δ " if diff else ""
    drawn: list[tuple[Any, Panel]] = []

    def cell(row: int, column: int, colour_bar: bool) -> tuple[Any, Any | None]:
        return grid.axes(left + column * cell_width, top + row * cell_height, colour_bar)

    def panel(
        ax: Any,
        gate: str | None,
        part: str,
        title: str,
        shape: Sequence[int],
        shown: Sequence[int],
        whole: Sequence[int],
    ) -> None:
        """whole: what `shown` would be without downsampling."""
        if list(whole) != list(shown):
            title += f"\n{'×'.join(map(str, shown))} shown"
        ax.set_title(title, fontsize="small")
        drawn.append((ax, Panel(pictures.name, gate, part, title, list(shape), list(shown))))

    def heatmap_panel(
        row: int, column: int, gate: str | None, part: str, words: str, heatmap: _Heatmap, rows: str, columns: str
    ) -> None:
        ax, bar = cell(row, column, True)
        _draw_heatmap(grid, ax, bar, heatmap, rows, columns, sizes)
        shape_text = "×".join(map(str, heatmap.shape))
        title = f"{prefix}{words} [{shape_text}]"
        panel(ax, gate, part, title, heatmap.shape, heatmap.values.shape, heatmap.grid)

    for row, gate in enumerate(gates):
        picture = pictures.gates[gate]
        heatmap_panel(row, 0, gate, "kernel", f"{gate} · input kernel", picture.kernel, "input", "units")
        heatmap_panel(row, 1, gate, "recurrent", f"{gate} · recurrent kernel", picture.recurrent, "recurrent", "units")
        ax, _ = cell(row, 2, False)
        ax.stairs(picture.counts, picture.edges, fill=True, color=_gate_colour(gate))
        ax.set_xlabel("Δ weight" if diff else "weight")
        ax.set_ylabel("count")
        total = int(picture.counts.sum())
        title = f"{prefix}{gate} · weights ({total:,})"
        panel(ax, gate, "histogram", title, [total], [HISTOGRAM_BINS], [HISTOGRAM_BINS])

    units = sizes["units"]
    for column, (part, values, ylabel, title) in enumerate(
        (
            ("bias", pictures.bias, "Δ bias" if diff else "bias", f"{prefix}{pictures.bias_label}"),
            ("norms", pictures.norms, "‖Δ‖" if diff else "‖w‖", f"{prefix}per-unit norm (kernel + recurrent)"),
        )
    ):
        ax, _ = cell(len(gates), column, False)
        lines = [(gate, line, gate, "-") for gate, line in values.items()]
        if part == "bias" and pictures.effective_bias is not None:
            gate, added, line = pictures.effective_bias
            lines.append((gate, line, f"{gate} + {added:g} (effective)", "--"))
        shown = 0
        for gate, line, label, style in lines:
            shown = len(line)
            # Each point at the centre of the units it stands for.
            positions = (0.5 + np.arange(shown)) * units / shown - 0.5
            ax.plot(positions, line, color=_gate_colour(gate), label=label, linewidth=1, linestyle=style)
        if values:
            ax.legend(fontsize="x-small", ncols=2)
        else:
            ax.text(0.5, 0.5, "no bias", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(-0.5, units - 0.5)
        ax.set_xlabel(f"unit ({units})")
        ax.set_ylabel(ylabel)
        panel(ax, None, part, title, [units], [shown or units], [units])
    if pictures.projection is not None:
        heatmap_panel(len(gates), 2, None, "projection", "projection", pictures.projection, "units", "projection")
    return drawn


# ---- the command ------------------------------------------------------------------------------------------


def _units(layers: Sequence[Layer]) -> list[list[Layer]]:
    """The layers in order, the halves of a bidirectional pair (both selected) side by side."""
    names = {layer.spec.name for layer in layers}
    units: list[list[Layer]] = []
    placed: set[str] = set()
    for layer in layers:
        if layer.spec.name in placed:
            continue
        pair = layer.spec.pair
        halves = [
            other
            for other in layers
            if pair is not None
            and other.spec.pair == pair
            and other.spec.name in names
            and other.spec.name not in placed
        ]
        group = sorted(halves, key=lambda h: h.spec.direction != "forward") if len(halves) == 2 else [layer]
        placed.update(member.spec.name for member in group)
        units.append(group)
    return units


def _partners(
    ckpt: Checkpoint, against: Checkpoint, mapping: Mapping[str, str] | None, selected: list[Layer]
) -> tuple[list[Layer], dict[str, tuple[Layer, str]]]:
    """The selected layers that have a partner of the same sizes in `against`, and those partners;
    the others are warned about (refused when none is left)."""
    from .diff import match_layers

    matched, _, _ = match_layers(ckpt, against, mapping)
    partners = {a.spec.name: (b, how) for a, b, how in matched if a.spec.sizes == b.spec.sizes}
    skipped = []
    for layer in selected:
        if layer.spec.name not in partners:
            partner = next((b.spec.name for a, b, _ in matched if a.spec.name == layer.spec.name), None)
            skipped.append(
                f"no layer matches {layer.spec.name!r} of {ckpt.path}"
                if partner is None
                else f"{layer.spec.name!r} of {ckpt.path} and {partner!r} differ in shape"
            )
    kept = [layer for layer in selected if layer.spec.name in partners]
    if not kept:
        raise LstmInspectError(f"{against.path}: {'; '.join(skipped)}: nothing to draw")
    for reason in skipped:
        warn(f"{against.path}: {reason}; it is not drawn")
    return kept, partners


@record
class Drawing:
    """The figure `plot` saves, before it is saved: matplotlib's Figure and, per panel, its axes
    (whose artists hold the drawn data: images, lines, bars) beside what the panel shows."""

    figure: Any  # matplotlib.figure.Figure, on an Agg canvas
    layers: list[str]
    downsampled: bool
    panels: list[tuple[Any, Panel]]


def draw(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    against: Checkpoint | None = None,
    mapping: Mapping[str, str] | None = None,
    dpi: int = 100,
) -> Drawing:
    """The figure of the selected layers (all when none are named) of `ckpt`, or of their change in
    `against` (B − A), built and not saved."""
    from .api import cell_kinds, resolve_gates
    from .diff import aligned, weights_of

    Figure = require_matplotlib()
    gates = list(gates)
    selected = ckpt.select(layers)
    wanted = resolve_gates(gates, cell_kinds(selected))
    partners: dict[str, tuple[Layer, str]] = {}
    if against is not None:
        selected, partners = _partners(ckpt, against, mapping, selected)
    if len(selected) > MAX_LAYERS:
        raise LstmInspectError(
            f"{ckpt.path}: {len(selected)} layers make a figure too large to read; "
            f"choose up to {MAX_LAYERS} with --layer"
        )
    source = _shown_path(ckpt.path)
    pixels = _Grid.heatmap_pixels(dpi)
    all_pictures: list[list[_LayerPictures]] = []
    row_titles = []
    for unit in _units(selected):
        row = []
        for layer in unit:
            title = f"{layer.spec.name} ({_describe(layer)})"
            cell = layer.layout.cell
            gate_names = [gate for gate in cell.gates if gate in wanted] or list(cell.gates)
            if against is None:
                pictures = _pictures(weights_of(layer), gate_names, title, layer.spec.forget_bias, pixels)
            else:
                other = partners[layer.spec.name][0]
                weights_a, weights_b, _ = aligned(weights_of(layer), weights_of(other))
                if other.spec.name != layer.spec.name:
                    title = f"{layer.spec.name} ↔ {other.spec.name} ({_describe(layer)})"
                pictures = _pictures(_delta(weights_a, weights_b), gate_names, title, 0.0, pixels)
                other.release()
            layer.release()
            row.append(pictures)
        all_pictures.append(row)
        pair = f" — bidirectional pair {unit[0].spec.pair}" if len(unit) == 2 else ""
        if against is None:
            row_titles.append(f"{source}{pair}")
        else:
            row_titles.append(f"Δ = B − A{pair}; A: {source}, B: {_shown_path(against.path)}")

    columns = max(len(row) for row in all_pictures)
    downsampled = any(p.downsampled for row in all_pictures for p in row)
    cell_width, cell_height = _Grid.PANEL
    row_heights = [_Grid.ROW_TITLE + _Grid.LAYER_TITLE + (len(row[0].gates) + 1) * cell_height for row in all_pictures]
    height = sum(row_heights) + (_Grid.NOTE if downsampled else 0.1)
    fig = Figure(figsize=(columns * 3 * cell_width, height), dpi=dpi)
    grid = _Grid(fig, height)
    drawn: list[tuple[Any, Panel]] = []
    top = 0.1
    for row, row_title, row_height in zip(all_pictures, row_titles, row_heights):
        grid.text(grid.width / 2, top, _wrapped(row_title, 100 * columns), "large")
        for column, pictures in enumerate(row):
            drawn += _draw_layer(grid, column * 3 * cell_width, top + _Grid.ROW_TITLE, pictures, against is not None)
        top += row_height
    if downsampled:
        grid.text(
            grid.width / 2,
            height - _Grid.NOTE + 0.05,
            _wrapped(
                f"Downsampled for display: heatmaps show at most one cell per pixel ({pixels[1]}×{pixels[0]}), lines "
                f"{MAX_POINTS} points, each the value of largest |x| in its bin; colour scales, histograms and norms "
                "use every value.",
                int(grid.width * 15),
            ),
            "small",
        )
    return Drawing(fig, [layer.spec.name for layer in selected], downsampled, drawn)


def plot(
    ckpt: Checkpoint,
    output: str,
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    against: Checkpoint | None = None,
    mapping: Mapping[str, str] | None = None,
    dpi: int = 100,
) -> PlotResult:
    """Draw the selected layers (all when none are named) of `ckpt`, or their change in `against`
    (B − A), to `output` (.png, .svg or .pdf), written atomically; never over an input file."""
    from .writers.output import atomic_output, check_output

    kind = output_format(output)
    require_matplotlib()
    inputs = ckpt.store.files() + (against.store.files() if against is not None else [])
    check_output(output, inputs)  # before any work: atomic_output checks again when it writes
    drawing = draw(ckpt, layers, gates, against, mapping, dpi)
    fig = drawing.figure
    import matplotlib

    # SVG text stays text (searchable, selectable), and its ids are the same from run to run.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lstm-inspect"}):
        with atomic_output(output, inputs) as f:
            fig.savefig(f, format=kind, dpi=dpi)
    pixel_width, pixel_height = (round(v) for v in fig.bbox.size)
    panels = []
    for ax, panel in drawing.panels:
        box = ax.get_window_extent()
        panel.bbox = (round(box.x0), round(pixel_height - box.y1), round(box.x1), round(pixel_height - box.y0))
        panels.append(panel)
    return PlotResult(
        output,
        kind,
        ckpt.path,
        None if against is None else against.path,
        drawing.layers,
        pixel_width,
        pixel_height,
        drawing.downsampled,
        panels,
    )


def _wrapped(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, width, break_long_words=True, break_on_hyphens=False)


def _shown_path(path: str, limit: int = 60) -> str:
    """A path as the user gave it, its start cut when long: a title must fit above its panels."""
    return path if len(path) <= limit else "…" + path[-(limit - 1) :]


def _delta(a: Weights, b: Weights) -> Weights:
    """B − A block by block, for the blocks both have (aligned: the same keys, biases included)."""
    from dataclasses import replace

    import numpy as np

    blocks = {
        key: np.subtract(b.blocks[key], value, dtype=np.float64) for key, value in a.blocks.items() if key in b.blocks
    }
    return replace(a, blocks=blocks, forget_bias=0.0)
