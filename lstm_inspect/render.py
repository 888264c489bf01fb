"""Renderers: result objects as rich tables (for people) and JSON (for scripts)."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, is_dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .results import LayerSummary, SplitResult, SplitStream, Summary, VariableLine, block_title
from .schema import CELL_KINDS, variant_words
from .terminal import safe

if TYPE_CHECKING:  # verify pulls in the converters; summary and split need none of it
    import numpy as np

    from .verify import VerifyResult

# Every string from the file (names, sources, configs' class and activation names, messages)
# goes through terminal.safe before it reaches a person; --json prints them exact, escaped by JSON.


def to_json(result: Summary | SplitResult | VerifyResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


_FRAMEWORK = {"tensorflow": "TF", "keras": "Keras", "lstm-inspect": "lstm-inspect"}
# (header, justify) per column of a table.
Columns = tuple[tuple[str, JustifyMethod], ...]


_ACTIVATION_SOURCE = {
    "config": "from the model config",
    "graph": "read from the graph",
    "default": "the cell's fixed defaults; a custom activation would be code, not stored",
    "unknown": "the file has no model config to say",
}


def _extras(layer: LayerSummary) -> str:
    extras = [f"projection {layer.projection}"] if layer.projection else []
    if layer.peepholes:
        extras.append("peepholes")
    return ", ".join(extras) or "-"


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _num(n: int) -> str:
    return f"{n:,}"


def _kinds(layers: Sequence[LayerSummary]) -> str:
    """The cell kinds of these layers, "LSTM", "LSTM and GRU"; of none, every kind this tool finds."""
    kinds = list(dict.fromkeys(layer.kind for layer in layers))
    return " and ".join(kinds) if kinds else " or ".join(CELL_KINDS)


def _variant_text(name: str, value: bool) -> str:
    """ "applies the reset gate after the recurrent matmul (reset_after=True)"."""
    return f"the cell {variant_words(name, value)} ({name}={value})"


def summary_renderable(summary: Summary) -> Group:
    parts: list[RenderableType] = [Text(f"{safe(summary.path)} ({safe(summary.format)})", style="bold")]
    kinds = _kinds(summary.layers)
    if not summary.layers:
        parts.append(Text(f"No {kinds} layers found."))
    else:
        columns: Columns = (
            ("layer", "left"),
            ("cell", "left"),
            ("gates", "left"),
            ("input", "right"),
            ("units", "right"),
            ("extras", "left"),
            ("forget bias", "right"),
            ("params", "right"),
        )
        rows = [
            (
                safe(layer.name),
                f"{safe(layer.cell)} ({_FRAMEWORK[layer.framework]})",
                safe(layer.gate_order),
                str(layer.input_size),
                str(layer.units),
                _extras(layer),
                "-" if layer.forget_bias is None else f"{layer.forget_bias:g}",
                _num(layer.params),
            )
            for layer in summary.layers
        ]
        if len(rows) > MAX_TABLE_ROWS:
            parts.append(_plain(f"{kinds} layers", columns, rows))
        else:
            parts.append(_LayerTable(columns, rows, f"{kinds} layers"))
        # One Text for all explanations: rich lays out each renderable apart, and a file with
        # thousands of layers would spend seconds on that.
        lines = []
        for layer in summary.layers[:MAX_EXPLAINED_LAYERS]:
            order = ", ".join(f"{letter}={gate}" for letter, gate in zip(layer.gate_order, layer.gates))
            lines.append(f"{safe(layer.name)}: {layer.input_size} inputs, {layer.units} units; gates {order}")
            lines += [f"  {safe(t.name)}  {safe(t.explanation)}" for t in layer.tensors]
            lines.append(
                f"  activations: {safe(layer.recurrent_activation)} (gates), {safe(layer.activation)} (cell)"
                f" — {_ACTIVATION_SOURCE[layer.activation_source]}"
            )
            if layer.forget_bias:
                lines.append(f"  forget_bias {layer.forget_bias:g} is added at run time and is not stored")
            for name, setting in layer.variants.items():
                assumed = "assumed: " if setting.assumed else ""
                lines.append(f"  {_variant_text(name, bool(setting.value))} — {assumed}{safe(setting.source)}")
        if len(summary.layers) > MAX_EXPLAINED_LAYERS:
            lines.append(f"(the first {MAX_EXPLAINED_LAYERS} layers explained; --json decomposes every tensor)")
        parts.append(Text("\n".join(lines)))
    if len(summary.variables) > MAX_VARIABLE_ROWS:
        parts.append(_variables_by_scope(summary.variables))
    elif summary.variables:
        table = Table(title="Other model variables", title_justify="left")
        table.add_column("name", overflow="fold")
        table.add_column("shape")
        table.add_column("dtype")
        table.add_column("params", justify="right")
        for v in summary.variables:
            table.add_row(safe(v.name), _shape(v.shape), safe(v.dtype), _num(v.params))
        parts.append(table)
    totals = [
        f"{kinds} parameters: {_num(summary.lstm_params)} in {len(summary.layers)} layer(s)",
        f"Total model parameters: {_num(summary.total_params)}",
    ]
    if summary.optimizer_tensors:
        totals.append(
            f"Optimizer state (not counted): {_num(summary.optimizer_params)} in {summary.optimizer_tensors} tensor(s)"
        )
    if summary.bookkeeping:
        totals.append("Bookkeeping (not counted): " + ", ".join(safe(v.name) for v in summary.bookkeeping))
    parts.append(Text("\n".join(totals)))
    return Group(*parts)


# Rich lays out a table cell by cell, about 1 ms a row: past these sizes the summary stays fast
# by printing plain columns, explaining the first layers only and grouping other variables by
# top-level scope. --json always lists everything.
MAX_TABLE_ROWS = 200
MAX_EXPLAINED_LAYERS = 50
MAX_VARIABLE_ROWS = 100


class _LayerTable:
    """The layers as a table where one fits the screen, else one block per layer. A table
    narrower than its rows (an 80-column terminal and TF1 scope names) folds each layer name
    into pieces, and layer names are what users pass to --layer."""

    def __init__(self, columns: Columns, rows: Sequence[tuple[str, ...]], title: str = "LSTM layers") -> None:
        self.columns, self.rows, self.title = columns, rows, title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table | Text | Padding]:
        widths = [
            max(cell_len(header), *(cell_len(row[i]) for row in self.rows))
            for i, (header, _) in enumerate(self.columns)
        ]
        # A heavy-box table: a border before each column and after the last, a space each side of a cell.
        if sum(widths) + 3 * len(widths) + 1 <= options.max_width:
            table = Table(title=self.title, title_justify="left")
            for column, justify in self.columns:
                table.add_column(column, justify=justify, no_wrap=True)
            for row in self.rows:
                table.add_row(*row)
            yield table
            return
        yield Text(self.title)
        for name, cell, *values in self.rows:
            # "gates ijfo", "units 64", ...; extras ("projection 8, peepholes") say what they are.
            named = [
                value if header == "extras" else f"{header} {value}"
                for (header, _), value in zip(self.columns[2:], values)
            ]
            yield Text(name, overflow="fold")
            yield Padding(Text(", ".join(part for part in [cell, *named] if part != "-")), (0, 0, 0, 2), expand=False)


def _plain(title: str, columns: Columns, rows: Sequence[tuple[str, ...]]) -> _Lines:
    """A title, then the header and rows as plain aligned columns; columns: (header, justify)."""
    widths = [max(len(cell) for cell in column) for column in zip((header for header, _ in columns), *rows)]
    lines = [title]
    for row in [tuple(header for header, _ in columns), *rows]:
        cells = [
            cell.rjust(width) if justify == "right" else cell.ljust(width)
            for cell, width, (_, justify) in zip(row, widths, columns)
        ]
        lines.append("  ".join(cells).rstrip())
    return _Lines(lines)


class _Lines:
    """Lines printed as they are, never wrapped or cut: a Text of a thousand lines would be
    measured and wrapped word by word, which costs more than making them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        for line in self.lines:
            yield Segment(line)
            yield Segment.line()


def _variables_by_scope(variables: list[VariableLine]) -> Table:
    groups: dict[str, list[VariableLine]] = {}
    for v in variables:
        groups.setdefault(v.name.split("/", 1)[0], []).append(v)
    table = Table(
        title=f"Other model variables: {len(variables)}, by top-level scope (--json lists each)", title_justify="left"
    )
    table.add_column("scope", overflow="fold")
    table.add_column("tensors", justify="right")
    table.add_column("params", justify="right")
    for scope, members in groups.items():
        table.add_row(safe(scope), _num(len(members)), _num(sum(v.params for v in members)))
    return table


def _stat(x: float) -> str:
    return f"{x:.4g}"


def _table(title: str, columns: Columns, rows: Sequence[tuple[str, ...]], plain: bool) -> RenderableType:
    """A rich table, or with `plain` the same rows as plain columns (for outputs of many rows)."""
    if plain:
        return _plain(title, columns, rows)
    table = Table(title=title, title_justify="left")
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(*row)
    return table


_SPLIT_COLUMNS: Columns = (
    ("gate", "left"),
    ("part", "left"),
    ("shape", "left"),
    ("cut from", "left"),
    ("mean", "right"),
    ("std", "right"),
    ("min", "right"),
    ("max", "right"),
    ("L2", "right"),
)


def show_split(
    result: SplitResult | SplitStream,
    as_json: bool = False,
    console: Console | None = None,
    stats: Callable[[], dict[str, Any] | None] | None = None,
) -> None:
    """Print split's result as its layers come (a SplitStream reads one layer at a time): per
    layer its table, then each block's numbers where asked for; or one JSON object, written as
    it goes, with the same text json.dumps(result.to_dict(), indent=2) gives."""
    if as_json:
        out = sys.stdout if console is None else console.file
        # The first layer is read before anything is written: a file that cannot be read at all
        # leaves stdout empty, not an unfinished JSON object.
        layers = iter(result.layers)
        first = next(layers, None)
        members: dict[str, object] = {"path": result.path, "layers": [] if first is None else chain([first], layers)}
        if stats is not None:
            members["stats"] = _Deferred(stats)
        for chunk in _json_chunks(members, ""):
            out.write(chunk)
        out.write("\n")
        return
    console = console or _console()
    plain = result.block_count > MAX_TABLE_ROWS
    for layer in result.layers:
        order = ", ".join(layer.gate_order)
        title = f"{safe(layer.name)}: {safe(layer.cell)}, gate order {order}"
        if layer.forget_bias is not None:
            title += f", forget_bias {layer.forget_bias:g}"
        title += "".join(f", {_variant_text(name, value)}" for name, value in layer.variants.items())
        rows = [
            (
                b.gate or "-",
                b.part,
                _shape(b.shape),
                safe(b.source),
                _stat(b.mean),
                _stat(b.std),
                _stat(b.min),
                _stat(b.max),
                _stat(b.l2),
            )
            for b in layer.blocks
        ]
        console.print(_table(title, _SPLIT_COLUMNS, rows, plain), crop=False)
        out = console.file
        for b in layer.blocks:
            if b.values is not None:
                import numpy as np

                out.write(safe(block_title(layer.name, b.gate, b.part, b.shape)) + "\n")
                for line in _value_lines(np.asarray(b.values)):
                    out.write(line + "\n")


# --values: 6 significant digits, right-aligned in the width of the widest such number
# ("-1.23457e-05"), _VALUES_PER_LINE to a line, each line formatted by one % operation.
_VALUE_FORMAT = "%12.6g"
_VALUES_PER_LINE = 8
_LINE_FORMAT = " ".join([_VALUE_FORMAT] * _VALUES_PER_LINE)


def _value_lines(array: np.ndarray) -> Iterator[str]:
    """Every number of a block (split --values), row by row in numpy's brackets, with no elision:
    a row of a matrix starts a line, VALUES_PER_LINE numbers to a line."""
    import numpy as np

    if not array.size:
        yield "[]"
        return
    matrix = array.ndim > 1
    rows = array.reshape(-1, array.shape[-1]) if matrix else array.reshape(1, -1)
    last = len(rows) - 1
    for index, row in enumerate(rows):
        numbers = row.astype(np.float64).tolist()
        opening = ("[[" if index == 0 else " [") if matrix else "["
        closing = ("]]" if index == last else "]") if matrix else "]"
        for start in range(0, len(numbers), _VALUES_PER_LINE):
            line = tuple(numbers[start : start + _VALUES_PER_LINE])
            form = _LINE_FORMAT if len(line) == _VALUES_PER_LINE else " ".join([_VALUE_FORMAT] * len(line))
            lead = opening if start == 0 else " " * len(opening)
            yield lead + form % line + (closing if start + _VALUES_PER_LINE >= len(numbers) else "")


def _json_float(value: float) -> str:
    # json.dumps' own spelling (json/encoder.py floatstr): repr, or NaN and ±Infinity.
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


@dataclass
class _Deferred:
    """A JSON member made only when the writer reaches it (after what comes before it was
    written), and left out when it makes None."""

    make: Callable[[], object]


def _json_chunks(value: object, indent: str) -> Iterator[str]:
    """`value` as json.dumps(value, indent=2) writes it at nesting `indent`, in pieces: dataclasses
    as their fields (as asdict), iterators pulled one item at a time, numpy arrays row by row."""
    import numpy as np

    inner = indent + "  "
    if is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, dict):
        first = True
        for key, item in value.items():
            if isinstance(item, _Deferred):
                item = item.make()
                if item is None:
                    continue
            yield ("{\n" if first else ",\n") + inner + json.dumps(key) + ": "
            first = False
            yield from _json_chunks(item, inner)
        yield "{}" if first else "\n" + indent + "}"
        return
    if isinstance(value, np.ndarray):
        yield from _json_array(value, indent)
        return
    if isinstance(value, (list, tuple, Iterator)):
        empty = True
        for item in value:
            yield ("[\n" if empty else ",\n") + inner
            empty = False
            yield from _json_chunks(item, inner)
        yield "[]" if empty else "\n" + indent + "]"
        return
    yield json.dumps(value)


def _json_array(array: np.ndarray, indent: str) -> Iterator[str]:
    import numpy as np

    inner = indent + "  "
    if not len(array):
        yield "[]"
    elif array.ndim == 1:
        numbers = array.astype(np.float64)
        spell = float.__repr__ if np.isfinite(numbers).all() else _json_float
        yield "[\n" + inner + (",\n" + inner).join(map(spell, numbers.tolist())) + "\n" + indent + "]"
    else:
        for index, row in enumerate(array):
            yield ("[\n" if index == 0 else ",\n") + inner
            yield from _json_array(row, inner)
        yield "\n" + indent + "]"


_VERIFY_COLUMNS: Columns = (
    ("layer", "left"),
    ("target", "left"),
    ("max |diff|", "right"),
    ("tolerance", "right"),
    ("result", "left"),
)


def verify_renderable(result: VerifyResult) -> Group:
    """Per layer and target, the largest |difference| from the numpy cell (LSTM, GRU) on the split blocks, the
    tolerance and the verdict (or why the target did not run); then the overall verdict."""
    title = (
        f"{safe(result.path)}: max |difference| from the numpy cell on the split blocks "
        f"(seed {result.seed}, {result.steps} steps, batch {result.batch})"
    )
    rows: list[tuple[str, ...]] = []
    section_ends: set[int] = set()
    for layer in result.layers:
        note = layer.note
        if layer.covered_by is not None:
            note = f"not run: the structure of {layer.covered_by}"
        checks = [(c.target, c.max_abs_diff, c.note, c.error) for c in layer.checks] or [("-", None, note, None)]
        for index, (target, diff, note, error) in enumerate(checks):
            if error is not None:
                verdict = f"FAIL: {error}"
            elif diff is None:
                verdict = note or "-"
            else:
                verdict = "ok" if diff <= layer.tolerance else "FAIL"
            rows.append(
                (
                    safe(layer.name) if index == 0 else "",
                    target,
                    "-" if diff is None else f"{diff:.1e}",
                    f"{layer.tolerance:.1e}" if index == 0 else "",
                    safe(verdict),
                )
            )
        section_ends.add(len(rows) - 1)
    if len(rows) > MAX_TABLE_ROWS:
        table: RenderableType = _plain(title, _VERIFY_COLUMNS, rows)
    else:
        table = Table(title=title, title_justify="left")
        for column, justify in _VERIFY_COLUMNS:
            # Layer names and verdicts fold; the numbers and target names stay whole.
            if column in ("layer", "result"):
                table.add_column(column, justify=justify, overflow="fold")
            else:
                table.add_column(column, justify=justify, no_wrap=True)
        for index, row in enumerate(rows):
            table.add_row(*row, end_section=index in section_ends)
    failures = result.failures()
    if failures:
        verdict = f"{len(failures)} check(s) exceed the tolerance."
    else:
        ran = sum(c.max_abs_diff is not None for layer in result.layers for c in layer.checks)
        verdict = f"All {ran} checks within tolerance."
    covered = sum(layer.covered_by is not None for layer in result.layers)
    if covered:
        verdict += (
            f" {covered:,} layer(s) not run: each has the structure of a layer checked above"
            " (name them with --layer to run them)."
        )
    return Group(table, Text(verdict))


_RENDERERS: dict[str, Callable[..., RenderableType]] = {
    "Summary": summary_renderable,
    "VerifyResult": verify_renderable,
}


def show(
    result: Summary | SplitResult | SplitStream | VerifyResult,
    as_json: bool = False,
    console: Console | None = None,
    stats: Callable[[], dict[str, Any] | None] | None = None,
) -> None:
    """Print a result: one JSON object (its to_dict()) for scripts, rich tables for people.
    stats: asked once the result is made, for a `stats` member of the JSON (what crossed the
    network); none when it gives None."""
    if isinstance(result, (SplitResult, SplitStream)):
        show_split(result, as_json, console, stats)
    elif as_json:
        data = result.to_dict()
        extra = stats() if stats is not None else None
        if extra is not None:
            data["stats"] = extra
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        # crop=False: the plain columns of a large summary are as wide as their rows and must
        # reach the output whole, where rich would cut them at the console's width.
        (console or _console()).print(_RENDERERS[type(result).__name__](result), crop=False)


# Into a pipe or a file rich assumes 80 columns; there is no screen to fit there, so tables get
# room for rows as wide as they are.
_PIPE_WIDTH = 160


def _console() -> Console:
    # Names print as stored: with rich's markup and emoji codes on, a layer named "x[b]y:fire:"
    # would print as a bold "y" and an emoji.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else _PIPE_WIDTH
    return Console(width=width, markup=False, emoji=False)


# ---- diff ------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from rich.console import JustifyMethod, RenderableType

    from .diff import DiffResult, LayerDiff


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _diff_layer(layer: LayerDiff) -> list[RenderableType]:
    names = safe(layer.a) if layer.a == layer.b else f"{safe(layer.a)} ↔ {safe(layer.b)}"
    how = "" if layer.matched_by == "name" else f" (matched by {layer.matched_by})"
    lines = [f"{names}{how}: {layer.verdict}"] + [f"  {note}" for note in layer.notes]
    parts: list[RenderableType] = [Text("\n".join(lines))]
    if layer.status != "changed" or not layer.blocks:
        return parts
    table = Table(title_justify="left", box=None, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("gate", "left"),
        ("part", "left"),
        ("shape", "left"),
        ("max |Δ|", "right"),
        ("‖Δ‖/‖A‖", "right"),
        ("cosine", "right"),
        ("units changed most (‖Δ‖)", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=column != "units changed most (‖Δ‖)")
    for block in layer.blocks:
        table.add_row(
            block.gate or "-",
            block.part,
            _shape(block.shape),
            "0" if block.identical else f"{block.max_abs_diff:.3g}",
            _optional(block.relative_change, ".3g"),
            _optional(block.cosine, ".6f"),
            ", ".join(f"{u.unit} ({u.norm:.3g})" for u in block.top_units) or "-",
        )
    parts.append(Padding(table, (0, 0, 0, 2), expand=False))
    return parts


def diff_renderable(result: DiffResult) -> Group:
    """Per matched pair of layers a one-line verdict (and notes); a table of every block of a
    changed pair; layers only one file has; the overall verdict."""
    parts: list[RenderableType] = [
        Text(
            f"A: {safe(result.a)} ({result.format_a})\nB: {safe(result.b)} ({result.format_b})",
            style="bold",
        )
    ]
    for layer in result.layers:
        parts += _diff_layer(layer)
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            parts.append(Text(f"Only in {side}: " + ", ".join(safe(name) for name in names)))
    count = len(result.layers)
    if result.identical:
        verdict = f"Identical: all {count} layer(s)."
    elif result.equal:
        verdict = f"Equal within {_tolerance(result)}: all {count} layer(s)."
    else:
        changed = sum(not layer.equal for layer in result.layers)
        unmatched = len(result.only_in_a) + len(result.only_in_b)
        reasons = [f"{changed} of {count} matched layer(s) differ"] if changed else []
        reasons += [f"{unmatched} layer(s) in one file only"] if unmatched else []
        verdict = "Different: " + "; ".join(reasons) + "."
    parts.append(Text(verdict))
    return Group(*parts)


def _tolerance(result: DiffResult) -> str:
    from .diff import tolerance_text

    return tolerance_text(result.atol, result.rtol)


_RENDERERS["DiffResult"] = diff_renderable
