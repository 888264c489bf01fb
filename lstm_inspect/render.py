"""Renderers: result objects as rich tables (for people) and JSON (for scripts)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .results import LayerSummary, SplitResult, Summary, VariableLine

if TYPE_CHECKING:  # verify pulls in the converters; summary and split need none of it
    from .verify import VerifyResult


def to_json(result: Summary | SplitResult | VerifyResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


_FRAMEWORK = {"tensorflow": "TF", "keras": "Keras", "lstm-inspect": "lstm-inspect"}


_ACTIVATION_SOURCE = {
    "config": "from the model config",
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


def summary_renderable(summary: Summary) -> Group:
    parts: list[object] = [Text(f"{summary.path} ({summary.format})", style="bold")]
    if not summary.layers:
        parts.append(Text("No LSTM layers found."))
    else:
        columns = (
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
                layer.name,
                f"{layer.cell} ({_FRAMEWORK[layer.framework]})",
                "".join(layer.gate_order),
                str(layer.input_size),
                str(layer.units),
                _extras(layer),
                f"{layer.forget_bias:g}",
                _num(layer.params),
            )
            for layer in summary.layers
        ]
        if len(rows) > MAX_TABLE_ROWS:
            parts.append(_plain("LSTM layers", columns, rows))
        else:
            parts.append(_LayerTable(columns, rows))
        # One Text for all explanations: rich lays out each renderable apart, and a file with
        # thousands of layers would spend seconds on that.
        lines = []
        for layer in summary.layers[:MAX_EXPLAINED_LAYERS]:
            order = ", ".join(f"{letter}={gate}" for letter, gate in zip(layer.gate_order, layer.gates))
            lines.append(f"{layer.name}: {layer.input_size} inputs, {layer.units} units; gates {order}")
            lines += [f"  {t.name}  {t.explanation}" for t in layer.tensors]
            lines.append(
                f"  activations: {layer.recurrent_activation} (gates), {layer.activation} (cell)"
                f" — {_ACTIVATION_SOURCE[layer.activation_source]}"
            )
            if layer.forget_bias and layer.layout.startswith("tf1"):
                lines.append(f"  forget_bias {layer.forget_bias:g} is added at run time and is not stored")
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
            table.add_row(v.name, _shape(v.shape), v.dtype, _num(v.params))
        parts.append(table)
    totals = [
        f"LSTM parameters: {_num(summary.lstm_params)} in {len(summary.layers)} layer(s)",
        f"Total model parameters: {_num(summary.total_params)}",
    ]
    if summary.optimizer_tensors:
        totals.append(
            f"Optimizer state (not counted): {_num(summary.optimizer_params)} in {summary.optimizer_tensors} tensor(s)"
        )
    if summary.bookkeeping:
        totals.append("Bookkeeping (not counted): " + ", ".join(v.name for v in summary.bookkeeping))
    parts.append(Text("\n".join(totals)))
    return Group(*parts)


# Rich lays out a table cell by cell, about 1 ms a row: past these sizes the summary stays fast
# by printing plain columns, explaining the first layers only and grouping other variables by
# top-level scope. --json always lists everything.
MAX_TABLE_ROWS = 200
MAX_EXPLAINED_LAYERS = 50
MAX_VARIABLE_ROWS = 100


class _LayerTable:
    """The LSTM layers as a table where one fits the screen, else one block per layer. A table
    narrower than its rows (an 80-column terminal and TF1 scope names) folds each layer name
    into pieces, and layer names are what users pass to --layer."""

    def __init__(self, columns: tuple[tuple[str, str], ...], rows: list[tuple[str, ...]]) -> None:
        self.columns, self.rows = columns, rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table | Text | Padding]:
        widths = [
            max(cell_len(header), *(cell_len(row[i]) for row in self.rows))
            for i, (header, _) in enumerate(self.columns)
        ]
        # A heavy-box table: a border before each column and after the last, a space each side of a cell.
        if sum(widths) + 3 * len(widths) + 1 <= options.max_width:
            table = Table(title="LSTM layers", title_justify="left")
            for column, justify in self.columns:
                table.add_column(column, justify=justify, no_wrap=True)
            for row in self.rows:
                table.add_row(*row)
            yield table
            return
        yield Text("LSTM layers")
        for name, cell, *fields in self.rows:
            # "gates ijfo", "units 64", ...; extras ("projection 8, peepholes") say what they are.
            named = [
                value if header == "extras" else f"{header} {value}"
                for (header, _), value in zip(self.columns[2:], fields)
            ]
            yield Text(name, overflow="fold")
            yield Padding(Text(", ".join(part for part in [cell, *named] if part != "-")), (0, 0, 0, 2), expand=False)


def _plain(title: str, columns: tuple[tuple[str, str], ...], rows: list[tuple[str, ...]]) -> _Lines:
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
        table.add_row(scope, _num(len(members)), _num(sum(v.params for v in members)))
    return table


def _stat(x: float) -> str:
    return f"{x:.4g}"


def split_renderable(result: SplitResult) -> Group:
    parts: list[object] = []
    for layer in result.layers:
        order = ", ".join(layer.gate_order)
        table = Table(
            title=f"{layer.name}: {layer.cell}, gate order {order}, forget_bias {layer.forget_bias:g}",
            title_justify="left",
        )
        for column, justify in (
            ("gate", "left"),
            ("part", "left"),
            ("shape", "left"),
            ("cut from", "left"),
            ("mean", "right"),
            ("std", "right"),
            ("min", "right"),
            ("max", "right"),
            ("L2", "right"),
        ):
            table.add_column(column, justify=justify)
        for b in layer.blocks:
            table.add_row(
                b.gate or "-",
                b.part,
                _shape(b.shape),
                b.source,
                _stat(b.mean),
                _stat(b.std),
                _stat(b.min),
                _stat(b.max),
                _stat(b.l2),
            )
        parts.append(table)
        for b in layer.blocks:
            if b.values is not None:
                title = f"{layer.name} {b.gate or ''} {b.part} {_shape(b.shape)}".replace("  ", " ")
                import numpy as np

                body = np.array2string(np.asarray(b.values), precision=6, threshold=1_000_000, max_line_width=100)
                parts.append(Text(f"{title}\n{body}"))
    return Group(*parts)


def verify_renderable(result: VerifyResult) -> Group:
    """Per layer and target, the largest |difference| from the numpy LSTM on the split blocks, the
    tolerance and the verdict (or why the target did not run); then the overall verdict."""
    table = Table(
        title=f"{result.path}: max |difference| from the numpy LSTM on the split blocks "
        f"(seed {result.seed}, {result.steps} steps, batch {result.batch})",
        title_justify="left",
    )
    table.add_column("layer", overflow="fold")
    table.add_column("target", no_wrap=True)
    table.add_column("max |diff|", justify="right", no_wrap=True)
    table.add_column("tolerance", justify="right", no_wrap=True)
    table.add_column("result", overflow="fold")
    for layer in result.layers:
        rows = [(c.target, c.max_abs_diff, c.note, c.error) for c in layer.checks] or [("-", None, layer.note, None)]
        for index, (target, diff, note, error) in enumerate(rows):
            if error is not None:
                verdict = f"FAIL: {error}"
            elif diff is None:
                verdict = note or "-"
            else:
                verdict = "ok" if diff <= layer.tolerance else "FAIL"
            table.add_row(
                layer.name if index == 0 else "",
                target,
                "-" if diff is None else f"{diff:.1e}",
                f"{layer.tolerance:.1e}" if index == 0 else "",
                verdict,
                end_section=index == len(rows) - 1,
            )
    failures = result.failures()
    if failures:
        verdict = f"{len(failures)} check(s) exceed the tolerance."
    else:
        ran = sum(c.max_abs_diff is not None for layer in result.layers for c in layer.checks)
        verdict = f"All {ran} checks within tolerance."
    return Group(table, Text(verdict))


_RENDERERS = {"Summary": summary_renderable, "SplitResult": split_renderable, "VerifyResult": verify_renderable}


def show(result: Summary | SplitResult | VerifyResult, as_json: bool = False, console: Console | None = None) -> None:
    """Print a result: one JSON object (its to_dict()) for scripts, rich tables for people."""
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
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

# Layer names print as stored (markup is off), but a control character in one would move the cursor
# or fake a line. A local stand-in until render.py has a shared safe-name function.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _safe_name(name: str) -> str:
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match[0]):02x}", name)


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _diff_layer(layer: LayerDiff) -> list[RenderableType]:
    names = _safe_name(layer.a) if layer.a == layer.b else f"{_safe_name(layer.a)} ↔ {_safe_name(layer.b)}"
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
            f"A: {_safe_name(result.a)} ({result.format_a})\nB: {_safe_name(result.b)} ({result.format_b})",
            style="bold",
        )
    ]
    for layer in result.layers:
        parts += _diff_layer(layer)
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            parts.append(Text(f"Only in {side}: " + ", ".join(_safe_name(name) for name in names)))
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
