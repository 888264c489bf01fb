"""Renderers: result objects as rich tables (for people) and JSON (for scripts)."""

from __future__ import annotations

import json

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .results import SplitResult, Summary


def to_json(result: Summary | SplitResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _num(n: int) -> str:
    return f"{n:,}"


def summary_renderable(summary: Summary) -> Group:
    parts: list[object] = [Text(f"{summary.path} ({summary.format})", style="bold")]
    if not summary.layers:
        parts.append(Text("No LSTM layers found."))
    else:
        table = Table(title="LSTM layers", title_justify="left")
        for column, justify in (
            ("layer", "left"),
            ("cell", "left"),
            ("gate order", "left"),
            ("input", "right"),
            ("units", "right"),
            ("recurrent", "right"),
            ("projection", "right"),
            ("peepholes", "left"),
            ("forget_bias", "right"),
            ("activations", "left"),
            ("params", "right"),
        ):
            table.add_column(column, justify=justify)
        for layer in summary.layers:
            table.add_row(
                layer.name,
                f"{layer.cell} ({layer.framework})",
                ", ".join(layer.gate_order),
                str(layer.input_size),
                str(layer.units),
                str(layer.recurrent_size),
                str(layer.projection) if layer.projection else "-",
                "yes" if layer.peepholes else "no",
                f"{layer.forget_bias:g}",
                f"{layer.recurrent_activation}/{layer.activation}",
                _num(layer.params),
            )
        parts.append(table)
        for layer in summary.layers:
            order = ", ".join(f"{letter}={gate}" for letter, gate in zip(layer.gate_order, layer.gates))
            lines = [f"{layer.name}: gates {order}"]
            lines += [f"  {t.name}  {t.explanation}" for t in layer.tensors]
            if layer.forget_bias and layer.layout.startswith("tf1"):
                lines.append(f"  forget_bias {layer.forget_bias:g} is added at run time and is not stored")
            parts.append(Text("\n".join(lines)))
    if summary.variables:
        table = Table(title="Other model variables", title_justify="left")
        table.add_column("name")
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
                body = np.array2string(np.asarray(b.values), precision=6, threshold=1_000_000, max_line_width=100)
                parts.append(Text(f"{title}\n{body}"))
    return Group(*parts)


def print_renderable(renderable: object, console: Console | None = None) -> None:
    (console or Console()).print(renderable)
