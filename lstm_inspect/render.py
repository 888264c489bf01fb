"""Renderers: result objects as rich tables (for people) and JSON (for scripts).

rich is imported where a table or text is drawn, not with this module: --json never loads it
(some 25 ms of every command's start-up).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields, is_dataclass
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from .activations import shown
from .records import record
from .results import LayerSplit, LayerSummary, SplitResult, SplitStream, Summary, TensorLine, VariableLine, block_title
from .schema import KIND_NAMES, LAYOUTS, variant_words
from .terminal import safe

if TYPE_CHECKING:  # verify pulls in the converters; summary and split need none of it
    import numpy as np
    from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType
    from rich.measure import Measurement
    from rich.segment import Segment
    from rich.table import Table

    from .verify import VerifyResult


# Every string from the file (names, sources, configs' class and activation names, messages)
# goes through terminal.safe before it reaches a person; --json prints them exact, escaped by JSON.


def to_json(result: Summary | SplitResult | VerifyResult) -> str:
    return json_text(result.to_dict())


def json_text(data: dict[str, Any]) -> str:
    """`data` as one JSON object: a member per line, and a member that is a list one element per
    line, each member and element as json.dumps writes it in one line. json.dumps' C encoder
    writes no indentation; with indent=2 its Python encoder made the --json of a 100,000-tensor
    summary take 0.9 s, four times the table's rendering."""
    return "".join(_json_object(data.items()))


def _json_object(members: Iterable[tuple[str, object]]) -> Iterator[str]:
    """json_text's pieces. Records among the members are written as their fields as they come:
    a summary's 28,000 rows are never all dicts at once (40 MiB of a 100,000-tensor summary)."""
    dumps = _dumps()
    opening = "{\n"
    for key, value in members:
        yield opening + "  " + dumps(key) + ": "
        opening = ",\n"
        if isinstance(value, list) and value:
            # In pieces of a few hundred elements: a write per element cost as much as its encoding.
            kinds = set(map(type, value))
            spell = (
                _variable_json if kinds == {VariableLine} else _LayerText(value) if kinds == {LayerSummary} else dumps
            )
            for at in range(0, len(value), _JSON_BATCH):
                yield ("[\n    " if at == 0 else ",\n    ") + ",\n    ".join(map(spell, value[at : at + _JSON_BATCH]))
            yield "\n  ]"
        else:
            yield dumps(value)
    yield "{}" if opening == "{\n" else "\n}"


_JSON_BATCH = 512


def _variable_json(v: VariableLine) -> str:
    """A VariableLine as dumps() writes it: its fields' types are fixed (str, list of int, str, int,
    str), so that one format spells it, in a third less time than the encoder and its callback
    for the 100,000 a summary may list (tests/test_names.py checks them alike)."""
    shape = ", ".join(map(str, v.shape))
    return (
        f'{{"name": {_json_string(v.name)}, "shape": [{shape}], "dtype": {_json_string(v.dtype)}, '
        f'"params": {v.params}, "category": {_json_string(v.category)}}}'
    )


class _LayerText:
    """LayerSummary records as dumps() writes them, for the thousands of layers a summary may list
    (5,000 of a 100,000-tensor file: two thirds of its --json). A file has few structures: the text
    of the fields between cell and pair (framework … dtype), and of those after tensors (settings …
    convolution), is made once per set of values and kept.

    Fields declared str, int, bool or None are keyed by value and type, which give their text, as
    are gates' names; settings' and variants' keys (str) by value. forget_bias (a float: -0.0 ==
    0.0), the convolution dict and the records in settings and variants (frozen, and shared by
    summarize between the layers of one structure) are keyed by identity: the layers being written
    hold every such object for as long as the texts are kept, so no identity passes to another
    object meanwhile, and one made anew per layer only misses; an explanation's JSON string is kept
    by identity too. A layer's own fields (name, cell, pair, direction, tensors) are written each
    time. The types this spells by itself are checked once for the whole list; a list where any is
    not as declared goes to the encoder whole. `layers`: LayerSummary records only (_json_object
    sends no other list here)."""

    # LayerSummary's fields as this writes them (tests/test_names.py holds the two alike).
    HEAD = ("name", "cell")
    MIDDLE = (
        "framework",
        "layout",
        "gate_order",
        "gates",
        "input_size",
        "units",
        "recurrent_size",
        "projection",
        "peepholes",
        "forget_bias",
        "activation",
        "recurrent_activation",
        "activation_source",
        "params",
        "dtype",
    )
    OWN = ("pair", "direction", "tensors")
    TAIL = ("settings", "kind", "variants", "convolution")

    def __init__(self, layers: list[LayerSummary]) -> None:
        self.dumps = _dumps()
        self.texts: dict[tuple[object, ...], tuple[str, str]] = {}  # key -> (middle, tail)
        self.spelled: dict[int, str] = {}  # an explanation's identity -> its JSON string
        # The middle's fields declared str, int, bool or None, keyed by value; gates (list[str])
        # and forget_bias (float) apart.
        self.scalars = attrgetter(*(name for name in self.MIDDLE if name not in ("gates", "forget_bias")))
        # The types this writes by itself, checked once for all the layers (in C, not per layer):
        # strings or None for the layer's own fields, str for a tensor's name and explanation,
        # int for its dimensions (which str() then spells as JSON does).
        tensors = list(chain.from_iterable(map(attrgetter("tensors"), layers)))
        containers = attrgetter("gates", "tensors", "settings", "variants")
        self.typed = (
            _record_fields(LayerSummary) == self.HEAD + self.MIDDLE + self.OWN + self.TAIL
            and set(map(tuple, map(map, repeat(type), map(containers, layers)))) <= {(list, list, dict, dict)}
            and set(map(type, chain.from_iterable(map(_OWN_STRINGS, layers)))) <= {str, type(None)}
            and set(map(type, tensors)) <= {TensorLine}
            and set(map(type, chain.from_iterable(map(_TENSOR_STRINGS, tensors)))) <= {str}
            and set(map(type, map(_SHAPE, tensors))) <= {list}
            and set(map(type, chain.from_iterable(map(_SHAPE, tensors)))) <= {int}
        )

    def __call__(self, layer: LayerSummary) -> str:
        if not self.typed:
            return self.dumps(layer)
        scalars, gates, settings, variants = self.scalars(layer), layer.gates, layer.settings, layer.variants
        kind = layer.kind
        key = (
            scalars,
            tuple(map(type, scalars)),
            tuple(gates),
            tuple(map(type, gates)),
            id(layer.forget_bias),
            kind,
            type(kind),
            id(layer.convolution),
            tuple(settings),
            tuple(map(id, settings.values())),
            tuple(variants),
            tuple(map(id, variants.values())),
        )
        texts = self.texts.get(key)
        if texts is None:
            texts = self.texts[key] = (self._members(layer, self.MIDDLE), self._members(layer, self.TAIL))
        js, spelled = _json_string, self.spelled
        tensors = []
        for t in layer.tensors:
            explanation = spelled.get(id(t.explanation))
            if explanation is None:
                explanation = spelled[id(t.explanation)] = js(t.explanation)
            shape = ", ".join(map(str, t.shape))
            tensors.append(f'{{"name": {js(t.name)}, "shape": [{shape}], "explanation": {explanation}}}')
        cell, pair, direction = layer.cell, layer.pair, layer.direction
        return (
            f'{{"name": {js(layer.name)}, "cell": {"null" if cell is None else js(cell)}, {texts[0]}, '
            f'"pair": {"null" if pair is None else js(pair)}, '
            f'"direction": {"null" if direction is None else js(direction)}, '
            f'"tensors": [{", ".join(tensors)}], {texts[1]}}}'
        )

    def _members(self, layer: LayerSummary, names: tuple[str, ...]) -> str:
        """These fields as dumps() writes them in the record, without the braces."""
        return self.dumps({name: getattr(layer, name) for name in names})[1:-1]


_OWN_STRINGS = attrgetter("name", "cell", "pair", "direction")
_TENSOR_STRINGS = attrgetter("name", "explanation")
_SHAPE = attrgetter("shape")


@functools.cache
def _dumps() -> Callable[[object], str]:
    """json.dumps with its defaults, its C encoder made once (json.dumps makes one per call,
    json/encoder.py JSONEncoder.iterencode), and result records written as their fields, as
    dataclasses.asdict gives them: a summary's 28,000 rows are never made dicts in Python first.
    No circular check: results are trees."""
    import json.encoder

    make = getattr(json.encoder, "c_make_encoder", None)  # None in a Python without the C accelerator
    if make is None:
        return functools.partial(json.dumps, default=_record_members)
    # The arguments JSONEncoder.iterencode gives it for json.dumps' defaults, bar the check.
    encode = make(None, _record_members, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


def _record_members(value: object) -> dict[str, object]:
    """A result record's fields, for the JSON encoder (which comes back for the records in them);
    anything else is not JSON, in json's words."""
    names = _record_fields(type(value))
    if names is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return {name: getattr(value, name) for name in names}


_FRAMEWORK = {"tensorflow": "TF", "keras": "Keras", "lstm-inspect": "lstm-inspect"}
# (header, justify) per column of a table.
Columns: TypeAlias = "tuple[tuple[str, JustifyMethod], ...]"


# ---- widths and lines ------------------------------------------------------------------------------
#
# Every table has forms for a wide screen and for 80 and 60 columns, and the widest that fits is
# shown (_Fitted); text wraps with a hanging indent rather than at column 0; no line ends in spaces.


def cell_len(text: str) -> int:
    """The columns `text` takes on a terminal. Printable ASCII, which is what terminal.safe leaves
    of a name, takes one a character: rich's cell_len costs 1.5 µs a call (a cache look-up), and a
    6,000-layer split measures 1.5 million cells, a 100,000-tensor summary 80,000."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len as rich_cell_len

    return rich_cell_len(text)


def output_width() -> int | None:
    """The width to lay output out in: COLUMNS when set, else the width of the terminal that stdout,
    stderr or stdin is (`lstm-inspect split … | less` shows on the terminal that stderr is), None
    when there is none (a file written by cron, a CI log)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            if stream is not None and stream.isatty():
                return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):  # a stream without a file descriptor
            continue
    return None


# With no terminal there is no screen to fit: every table takes its widest form, rows whole.
_UNBOUNDED = 1000


def _console() -> Console:
    # Names print as stored: with rich's markup and emoji codes on, a layer named "x[b]y:fire:"
    # would print as a bold "y" and an emoji.
    from rich.console import Console

    return Console(width=_width(), markup=False, emoji=False)


def _width() -> int:
    """The width output is laid out in, by rich or without it: the screen's, else unbounded."""
    return output_width() or _UNBOUNDED


# Spaces at the end of a line, before the style codes that may close it: tried only where a run of
# spaces starts, and never given back, since neither a style code nor the line's end starts with a
# space; tried at every space of every run, backing off, it cost 50 ms of a 100,000-tensor summary.
_TRAILING_SPACE = re.compile(r"(?<![ \t])[ \t]++((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def _print(console: Console, renderable: RenderableType) -> None:
    """Print as rich lays it out, without the spaces rich pads lines with (a table's title is
    padded to the table's width): a pipe or a file gets only what is written."""
    # crop=False: the plain columns of a large summary are as wide as their rows and must reach
    # the output whole, where rich would cut them at the console's width.
    with console.capture() as captured:
        console.print(renderable, crop=False)
    text = captured.get()
    if "\x1b" in text:  # styled, for a terminal: spaces may sit before the codes that end a line
        console.file.write(_TRAILING_SPACE.sub(r"\1", text))
    else:  # plain (a pipe, a file): a line's own rstrip, where the regex cost 50 ms of a 100,000-tensor summary
        console.file.write("\n".join(line.rstrip(" \t") for line in text.split("\n")))


def _wrap(text: str, width: int, hanging: int = 4) -> list[str]:
    """`text` in lines of at most `width` columns, broken at spaces, the lines after the first
    indented `hanging` columns more than it is. A word wider than a line (a long tensor name) has
    a line of its own and stays whole: the terminal wraps it, and a copy of it is the name."""
    if cell_len(text) <= width:
        return [text]
    import textwrap  # only for a line too long: most are not

    body = text.lstrip(" ")
    lead = len(text) - len(body)
    wrapper = textwrap.TextWrapper(
        width=max(width, lead + hanging + 16),
        initial_indent=" " * lead,
        subsequent_indent=" " * (lead + hanging),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapper.wrap(body) or [text]


# A line of _Wrapped: text, or (head, tail): "head  tail" where it fits, else tail under head.
Line = str | tuple[str, str]


def _wrapped(lines: Sequence[Line], width: int, hanging: int = 4) -> list[str]:
    out: list[str] = []
    for line in lines:
        if isinstance(line, str):
            out += _wrap(line, width, hanging)
            continue
        head, tail = line
        joined = f"{head}  {tail}"
        if cell_len(joined) <= width:
            out.append(joined)
        else:
            lead = len(head) - len(head.lstrip(" "))
            out += _wrap(head, width, hanging) + _wrap(" " * (lead + 2) + tail, width, hanging)
    return out


def _pack(items: Sequence[str], width: int, indent: str) -> list[str]:
    """Items ("mean 0.003197") as many to a line as fit, two spaces apart, none broken."""
    lines: list[str] = []
    line = ""
    for item in items:
        if line and cell_len(line) + 2 + cell_len(item) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {item}" if line else indent + item
    return [*lines, line] if line else lines


def _pad(cell: str, width: int, justify: str) -> str:
    space = " " * (width - cell_len(cell))
    return space + cell if justify == "right" else cell + space


def _columns(rows: Sequence[Sequence[str]], justify: Sequence[str], indent: str = "") -> list[str]:
    """Rows as aligned columns two spaces apart, each line without trailing spaces."""
    text = "".join(chain.from_iterable(rows))
    if rows and text.isascii() and text.isprintable():
        # Printable ASCII (what terminal.safe leaves of nearly every name) is as wide as it is long:
        # each row is one str.format, its cells measured and padded in C (a 5,000-layer table).
        widths = [max(map(len, column)) for column in zip(*rows)]
        aligned = "  ".join(f"{{:{'>' if how == 'right' else '<'}{width}}}" for width, how in zip(widths, justify))
        return [(indent + aligned.format(*row)).rstrip() for row in rows]
    widths = [max((cell_len(row[i]) for row in rows), default=0) for i in range(len(justify))]
    return [
        (indent + "  ".join(_pad(cell, width, how) for cell, width, how in zip(row, widths, justify))).rstrip()
        for row in rows
    ]


class _Whole(str):
    """A line printed whole, even where it is wider than the screen: a tensor and the range cut from
    it, which a break would split (`kernel[0:12,` / `128:192]`); the terminal wraps it instead, and
    a copy of it is the name. A form is chosen by its other lines (_fit)."""


def _fit(forms: Sequence[Callable[[], list[str]]], width: int) -> list[str]:
    """The lines of the first form whose lines all fit `width` (_Whole ones aside), else those of
    the last."""
    for form in forms[:-1]:
        lines = form()
        if max((cell_len(line) for line in lines if not isinstance(line, _Whole)), default=0) <= width:
            return lines
    return forms[-1]()


class _Lines:
    """Lines printed as they are, never wrapped or cut: a Text of a thousand lines would be
    measured and wrapped word by word, which costs more than making them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def text_lines(self, width: int) -> list[str]:
        return self.lines

    def widest(self) -> int:
        """The columns the widest line takes: what rich measures them by (__rich_measure__)."""
        return max((cell_len(line) for line in self.lines), default=0)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment

        for line in self.lines:
            yield Segment(line)
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        width = self.widest()
        return Measurement(width, width)


class _Wrapped:
    """Lines wrapped at the width they are printed in (see _wrapped)."""

    def __init__(self, lines: Sequence[Line], hanging: int = 4) -> None:
        self.lines, self.hanging = lines, hanging

    def text_lines(self, width: int) -> list[str]:
        return _wrapped(self.lines, width, self.hanging)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        yield from _Lines(self.text_lines(options.max_width)).__rich_console__(console, options)


class _Bold(_Wrapped):
    """Wrapped lines in bold where styles show: a heading."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment
        from rich.style import Style

        bold = Style(bold=True)
        for line in self.text_lines(options.max_width):
            yield Segment(line, bold)
            yield Segment.line()


class _Fitted:
    """The first of `forms` whose natural width fits the screen, else the last; each form is a
    function of the width giving what to print."""

    def __init__(self, *forms: Callable[[int], RenderableType]) -> None:
        self.forms = forms

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        width = options.max_width
        for form in self.forms[:-1]:
            renderable = form(width)
            if console.measure(renderable, options=options.update_width(_UNBOUNDED * 10)).maximum <= width:
                yield renderable
                return
        yield self.forms[-1](width)

    def text_lines(self, width: int) -> list[str] | None:
        """The lines rich would print, where every form tried is one of this module's (None otherwise).
        rich measures _Lines by their widest line, and other renderables of this module, which
        have no measure, as wider than any screen (rich/measure.py Measurement.get)."""
        for form in self.forms[:-1]:
            renderable = form(width)
            if isinstance(renderable, _Lines):
                if renderable.widest() <= width:
                    return renderable.lines
            elif not isinstance(renderable, _Wrapped):
                return None
        return _text_lines(self.forms[-1](width), width)


def _text_lines(renderable: RenderableType, width: int) -> list[str] | None:
    """The lines rich prints of `renderable` in `width` columns without styles, where it is made
    of this module's renderables alone; None otherwise (rich must lay it out)."""
    lines = getattr(renderable, "text_lines", None)
    return None if lines is None else cast("list[str] | None", lines(width))


def _unstyled() -> bool:
    """Whether rich would print to stdout without styles: not to a terminal, and no environment
    variable or notebook saying otherwise (rich/console.py Console.is_terminal)."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ or "ipykernel" in sys.modules:
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed, or no isatty: rich's own answer is then "no terminal" too
        return True


def _rich_table(title: str, columns: Columns, rows: Sequence[Sequence[str]]) -> Table:
    """A heavy-box table whose cells never wrap: shown only where it fits (_Fitted)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _plain(title: str, columns: Columns, rows: Sequence[tuple[str, ...]]) -> list[RenderableType]:
    """A title, wrapped where it is wider than the screen, then the header and rows as plain
    aligned columns; columns: (header, justify)."""
    header = tuple(header for header, _ in columns)
    return [_Wrapped([title]), _Lines(_columns([header, *rows], [justify for _, justify in columns]))]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---- summary ---------------------------------------------------------------------------------------


_SETTING_WORDS = {"cell_clip": "cell clip", "proj_clip": "projection clip"}


def _value(value: object) -> str:
    if isinstance(value, float):
        return repr(value)  # 1.0, 0.3: as the file or the flag gave it
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return safe(shown(str(value)))


def setting_lines(layer: LayerSummary) -> list[str]:
    """Each setting of a layer and where it came from (or why it is assumed): the forget bias, the
    activations (on one line when one source says both), and the clips the layer has."""
    settings = layer.settings
    lines = []
    forget = settings.get("forget_bias")
    if forget is not None:
        added = ", added at run time, not stored" if forget.value else ""
        lines.append(f"forget bias {_value(forget.value)} ({safe(forget.source)}){added}")
    cell, gates = settings.get("activation"), settings.get("recurrent_activation")
    if cell is not None and gates is not None and cell.source == gates.source:
        lines.append(f"activations: {_value(gates.value)} (gates), {_value(cell.value)} (cell) — {safe(cell.source)}")
    else:
        for word, setting in (("activation", cell), ("recurrent activation", gates)):
            if setting is not None:
                lines.append(f"{word} {_value(setting.value)} ({safe(setting.source)})")
    for name, word in _SETTING_WORDS.items():
        setting = settings.get(name)
        if setting is not None and setting.value is not None:
            lines.append(f"{word} {_value(setting.value)} ({safe(setting.source)})")
    return lines


def _extras(layer: LayerSummary) -> str:
    extras = [f"projection {layer.projection}"] if layer.projection else []
    if layer.peepholes:
        extras.append("peepholes")
    return ", ".join(extras) or "-"


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _num(n: int) -> str:
    return f"{n:,}"


_LAYER_COLUMNS: Columns = (
    ("layer", "left"),
    ("cell", "left"),
    ("gates", "left"),
    ("input", "right"),
    ("units", "right"),
    ("extras", "left"),
    ("forget bias", "right"),
    ("params", "right"),
)


def _kinds(layers: Sequence[LayerSummary]) -> str:
    """The cell kinds of these layers, "LSTM", "LSTM and GRU"; of none, every kind this tool finds."""
    kinds = list(dict.fromkeys(layer.kind for layer in layers))
    return " and ".join(kinds) if kinds else " or ".join(KIND_NAMES)


def _variant_text(name: str, value: bool) -> str:
    """ "applies the reset gate after the recurrent matmul (reset_after=True)"."""
    return f"the cell {variant_words(name, value)} ({name}={value})"


def summary_parts(summary: Summary) -> list[RenderableType]:
    parts: list[RenderableType] = [_Bold([f"{safe(summary.path)} ({safe(summary.format)})"], hanging=0)]
    kinds = _kinds(summary.layers)
    if not summary.layers:
        parts.append(_Wrapped([f"No {kinds} layers found."], hanging=0))
    else:
        parts += _layer_parts(summary, kinds)
    if summary.unknown:
        parts.append(_Wrapped(_unknown_lines(summary)))
    if len(summary.variables) > MAX_VARIABLE_ROWS:
        parts += _variables_by_scope(summary.variables)
    elif summary.variables:
        parts.append(
            _Fitted(lambda width: _variables_table(summary.variables), lambda width: _variable_lines(summary.variables))
        )
    totals = [
        f"{kinds} parameters: {_num(summary.lstm_params)} in {len(summary.layers)} layer(s)",
        f"Total model parameters: {_num(summary.total_params)}",
    ]
    if summary.unknown:
        params = sum(u.params for u in summary.unknown)
        totals.insert(1, f"Recurrent layers not understood: {_num(params)} parameters in {len(summary.unknown)}")
    if summary.optimizer_tensors:
        totals.append(
            f"Optimizer state (not counted): {_num(summary.optimizer_params)} in {summary.optimizer_tensors} tensor(s)"
        )
    if summary.bookkeeping:
        totals.append("Bookkeeping (not counted): " + ", ".join(safe(v.name) for v in summary.bookkeeping))
    parts.append(_Wrapped(totals))
    commands = _next_commands(summary)
    if commands:
        parts.append(_hint(commands))
    return parts


def _unknown_lines(summary: Summary) -> list[Line]:
    """Each recurrent layer no layout computes: what the file says it is, why it is no LSTM here,
    and its tensors with what their shapes hold where the cell is known."""
    lines: list[Line] = []
    for unknown in summary.unknown:
        cell = f" ({safe(unknown.cell)})" if unknown.cell else ""
        lines.append(f"Recurrent layer not understood: {safe(unknown.name)}{cell}: {safe(unknown.why)}")
        for t in unknown.tensors:
            lines.append((f"  {safe(t.name)}", safe(t.explanation) if t.explanation else _shape(t.shape)))
    return lines


def _convolution_line(conv: dict[str, object]) -> str:
    """A ConvLSTM's convolutions: "convolution: 3 × 3 kernel, strides 1 × 1, padding same, dilation 1 × 1"."""

    def sizes(value: object) -> str:
        return " × ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)

    said = [
        f"{sizes(conv['kernel_size'])} kernel",
        f"strides {sizes(conv.get('strides'))}",
        f"padding {safe(str(conv.get('padding')))}",
        f"dilation {sizes(conv.get('dilation_rate'))}",
        safe(str(conv.get("data_format") or "channels_last")),
    ]
    return f"  convolution: {', '.join(said)} — {safe(str(conv.get('source')))}"


def _layer_parts(summary: Summary, kinds: str) -> list[RenderableType]:
    """The layers' table, their pairs, and what each layer's tensors hold."""
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
    parts: list[RenderableType] = []
    if len(rows) > MAX_TABLE_ROWS:
        parts += _plain(f"{kinds} layers", _LAYER_COLUMNS, rows)
    else:
        # A table narrower than its rows (an 80-column terminal and TF1 scope names) would fold
        # each layer name into pieces, and layer names are what users pass to --layer.
        parts.append(
            _Fitted(
                lambda width: _rich_table(f"{kinds} layers", _LAYER_COLUMNS, rows),
                lambda width: _layer_blocks(rows, f"{kinds} layers"),
            )
        )
    pairs = _pairs_line(summary.layers)
    if pairs:
        parts.append(_Wrapped([pairs]))
    # One renderable for all explanations: rich lays out each renderable apart, and a file with
    # thousands of layers would spend seconds on that.
    lines: list[Line] = [line for layer in summary.layers[:MAX_EXPLAINED_LAYERS] for line in _explained(layer)]
    if len(summary.layers) > MAX_EXPLAINED_LAYERS:
        lines.append(f"(the first {MAX_EXPLAINED_LAYERS} layers explained; --json decomposes every tensor)")
    parts.append(_Wrapped(lines))
    return parts


def _explained(layer: LayerSummary) -> list[Line]:
    order = ", ".join(f"{letter}={gate}" for letter, gate in zip(layer.gate_order, layer.gates))
    # A ConvLSTM's inputs are channels and its units filters (keras/src/layers/rnn/conv_lstm.py).
    sizes = "input channels, {} filters" if layer.convolution is not None else "inputs, {} units"
    said = f"{layer.input_size} {sizes.format(layer.units)}"
    lines: list[Line] = [f"{safe(layer.name)}: {said}; gates {order}"]
    lines += [(f"  {safe(t.name)}", safe(t.explanation)) for t in layer.tensors]
    lines += [f"  {line}" for line in setting_lines(layer)]
    for name, setting in layer.variants.items():
        assumed = "assumed: " if setting.assumed else ""
        lines.append(f"  {_variant_text(name, bool(setting.value))} — {assumed}{safe(setting.source)}")
    if layer.convolution is not None:
        lines.append(_convolution_line(layer.convolution))
    return lines


# Rich lays out a table cell by cell, about 1 ms a row: past these sizes the summary stays fast
# by printing plain columns, explaining the first layers only and grouping other variables by
# top-level scope. --json always lists everything.
MAX_TABLE_ROWS = 200
MAX_EXPLAINED_LAYERS = 50
MAX_VARIABLE_ROWS = 100
# Bidirectional pairs listed by name under the layers (--json lists every layer's `pair`).
MAX_LISTED_PAIRS = 20


def _layer_blocks(rows: Sequence[tuple[str, ...]], title: str) -> _Wrapped:
    """The layers one block per layer: the name whole on a line of its own, then what the table's
    columns say, each value named ("gates ijfo", "units 64"; extras say what they are)."""
    lines: list[Line] = [title]
    for name, cell, *values in rows:
        named = [
            value if header == "extras" else f"{header} {value}"
            for (header, _), value in zip(_LAYER_COLUMNS[2:], values)
        ]
        lines += [name, "  " + ", ".join(part for part in [cell, *named] if part != "-")]
    return _Wrapped(lines, hanging=0)


def _pairs_line(layers: Sequence[LayerSummary]) -> str | None:
    """The bidirectional pairs by name, which --layer takes for both halves."""
    pairs: dict[str, list[str]] = {}
    for layer in layers:
        if layer.pair is not None:
            pairs.setdefault(layer.pair, []).append(layer.name)
    if not pairs:
        return None
    shown = [f"{safe(pair)} = {' + '.join(safe(h) for h in halves)}" for pair, halves in pairs.items()]
    more = f"; … ({len(pairs):,} in all)" if len(shown) > MAX_LISTED_PAIRS else ""
    return (
        "Bidirectional pairs (--layer takes a pair's name for both halves): "
        + "; ".join(shown[:MAX_LISTED_PAIRS])
        + more
    )


def _next_commands(summary: Summary) -> list[str]:
    """What to run next on the file shown: split of the forget gate, and export; of the first pair
    (so that its name shows) or, in a file of several layers, of the first layer."""
    if not summary.layers:
        return []
    layer = next((layer for layer in summary.layers if layer.pair is not None), summary.layers[0])
    path = shlex.quote(safe(summary.path))
    select = ""
    if layer.pair is not None or len(summary.layers) > 1:
        select = f" --layer {shlex.quote(safe(layer.pair or layer.name))}"
    forget = LAYOUTS[layer.layout].cell.forget_gate
    gate = f" --gate {forget}" if forget else ""
    return [f"lstm-inspect split {path}{select}{gate}", f"lstm-inspect export {path}{select}"]


def _hint(commands: Sequence[str]) -> _Fitted:
    """The commands on one line where they fit, else one a line."""
    one_line = "Next: " + ", ".join(f"`{command}`" for command in commands)
    return _Fitted(lambda width: _Lines([one_line]), lambda width: _Wrapped(["Next:", *(f"  {c}" for c in commands)]))


def _variables_table(variables: Sequence[VariableLine]) -> Table:
    from rich.table import Table

    table = Table(title="Other model variables", title_justify="left")
    for column, justify in (("name", "left"), ("shape", "left"), ("dtype", "left"), ("params", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for v in variables:
        table.add_row(safe(v.name), _shape(v.shape), safe(v.dtype), _num(v.params))
    return table


def _variable_lines(variables: Sequence[VariableLine]) -> _Wrapped:
    return _Wrapped(
        [
            "Other model variables",
            *((f"  {safe(v.name)}", f"{_shape(v.shape)} {safe(v.dtype)}, {_num(v.params)} params") for v in variables),
        ]
    )


def _variables_by_scope(variables: list[VariableLine]) -> list[RenderableType]:
    """Many variables: a line per top-level scope, in plain columns as a table of many layers is."""
    groups: dict[str, list[VariableLine]] = {}
    for v in variables:
        groups.setdefault(v.name.split("/", 1)[0], []).append(v)
    rows = [
        (safe(scope), _num(len(members)), _num(sum(v.params for v in members))) for scope, members in groups.items()
    ]
    title = f"Other model variables: {_num(len(variables))}, by top-level scope (--json lists each)"
    return _plain(title, (("scope", "left"), ("tensors", "right"), ("params", "right")), rows)


# ---- split -----------------------------------------------------------------------------------------


def _stat(x: float) -> str:
    return f"{x:.4g}"


def show_split(
    result: SplitResult | SplitStream,
    as_json: bool = False,
    console: Console | None = None,
    stats: Callable[[], dict[str, Any] | None] | None = None,
    below: Callable[[LayerSplit, int], list[str]] | None = None,
) -> None:
    """Print split's result as its layers come (a SplitStream reads one layer at a time): per
    layer its blocks, gate by gate, then each block's numbers where asked for; or one JSON object,
    written as it goes, with the same text json.dumps(result.to_dict(), indent=2) gives.
    below: lines to print under each layer's table, in the console's width (sparkline.py's)."""
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
    out = console.file
    for layer in result.layers:
        out.write("".join(line + "\n" for line in split_lines(layer, console.width)))
        if below is not None:
            out.write("".join(line + "\n" for line in below(layer, console.width)))
        for b in layer.blocks:
            if b.values is not None:
                import numpy as np

                out.write(safe(block_title(layer.name, b.gate, b.part, b.shape)) + "\n")
                for line in _value_lines(np.asarray(b.values)):
                    out.write(line + "\n")


def _forget_bias_text(layer: LayerSplit) -> str:
    """What the cell adds to the forget gate at run time, and where that value comes from."""
    source = ("assumed: " if layer.forget_bias_assumed else "") + safe(layer.forget_bias_source)
    if not layer.forget_bias:
        return f"forget_bias 0: the cell adds nothing to the forget gate at run time ({source})"
    return f"forget_bias {layer.forget_bias:g}: the cell adds it to the forget gate at run time ({source})"


@record
class _SplitRow:
    heading: str | None  # the gate's line, before its first row
    part: str
    shape: str
    source: str  # where it was cut from, or what an effective row is
    stats: tuple[str, str, str, str, str]  # mean, std, min, max, L2
    effective: bool = False


_STAT_NAMES = ("mean", "std", "min", "max", "L2")


def _split_rows(layer: LayerSplit) -> list[_SplitRow]:
    framework = _FRAMEWORK.get(layer.framework, layer.framework)
    order = f"{framework} order {', '.join(layer.gate_order)}"
    rows: list[_SplitRow] = []
    group: object = ()  # the gate of the rows so far (None: the layer's own parts)
    for b in layer.blocks:
        heading = None
        if b.gate != group:
            group = b.gate
            if b.gate is None:
                heading = "  the whole layer"
            elif b.position is None:
                heading = f"  {b.gate}"
            elif layer.fused_gates:
                heading = f"  {b.gate}  ({_ordinal(b.position)} stored block, {order})"
            else:
                heading = f"  {b.gate}  (tensors of its own, {_ordinal(b.position)} in {order})"
        stats = (_stat(b.mean), _stat(b.std), _stat(b.min), _stat(b.max), _stat(b.l2))
        rows.append(_SplitRow(heading, b.part, _shape(b.shape), safe(b.source), stats))
        e = b.effective
        if e is not None and e.forget_bias:
            added = (_stat(e.mean), _stat(e.std), _stat(e.min), _stat(e.max), _stat(e.l2))
            what = f"bias + forget_bias {e.forget_bias:g}, as the cell adds them"
            rows.append(_SplitRow(None, "effective", _shape(b.shape), what, added, effective=True))
    return rows


def _source_line(row: _SplitRow) -> str:
    return f"      {row.source}" if row.effective else _Whole(f"      from {row.source}")


def split_lines(layer: LayerSplit, width: int) -> list[str]:
    """One layer of split for people, in `width` columns: its cell and runtime forget bias, then
    per gate where it is stored and a row per part. Cut-from ranges and statistics go in columns
    where they fit, the ranges under their rows where only the statistics do, and one block per
    part below that."""
    framework = _FRAMEWORK.get(layer.framework, layer.framework)
    lines = _wrap(f"{safe(layer.name)}: {safe(layer.cell)} ({framework})", width)
    if layer.forget_bias is not None:  # a cell kind with a forget gate
        lines += _wrap("  " + _forget_bias_text(layer), width)
    lines += [
        line for name, value in layer.variants.items() for line in _wrap(f"  {_variant_text(name, value)}", width)
    ]
    if layer.note is not None:
        return lines + _wrap("  " + safe(layer.note), width)
    rows = _split_rows(layer)

    def table(with_source: bool) -> list[str]:
        header = ("part", "shape", *(["cut from"] if with_source else []), *_STAT_NAMES)
        cells = [header] + [(r.part, r.shape, *([r.source] if with_source else []), *r.stats) for r in rows]
        justify = ("left", "left", *(["left"] if with_source else []), *["right"] * len(_STAT_NAMES))
        aligned = _columns(cells, justify, indent="    ")
        out = [aligned[0]]
        for row, line in zip(rows, aligned[1:]):
            out += [row.heading] if row.heading else []
            out.append(line)
            if not with_source:
                out.append(_source_line(row))
        return out

    def blocks() -> list[str]:
        out: list[str] = []
        for row in rows:
            out += [row.heading] if row.heading else []
            out += _wrap(f"    {row.part} {row.shape}", width)
            out.append(_source_line(row))
            out += _pack([f"{n} {v}" for n, v in zip(_STAT_NAMES, row.stats)], width, "      ")
        return out

    return lines + _fit([lambda: table(True), lambda: table(False), blocks], width)


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


@record
class _Deferred:
    """A JSON member made only when the writer reaches it (after what comes before it was
    written), and left out when it makes None."""

    make: Callable[[], object]


def _json_chunks(value: object, indent: str) -> Iterator[str]:
    """`value` as json.dumps(value, indent=2) writes it at nesting `indent`, in pieces: dataclasses
    as their fields (as asdict), iterators pulled one item at a time, numpy arrays row by row, and
    what lies between them joined into one piece (a piece per number made the --json of a split
    of 6,000 layers write 2.5 million pieces, and take 10 s)."""
    parts: list[str | Iterator[str]] = []
    _json_parts(value, indent, parts)
    run: list[str] = []
    for part in parts:
        if isinstance(part, str):
            run.append(part)
            continue
        if run:
            yield "".join(run)
            run = []
        yield from part
    if run:
        yield "".join(run)


def _json_parts(value: object, indent: str, parts: list[str | Iterator[str]]) -> None:
    """Appends `value`'s text to `parts`, where what must be made as it is written (an iterator's
    items, a _Deferred member, an array's rows) is a generator of its pieces."""
    import numpy as np

    names = _record_fields(type(value))
    if names is not None:
        value = {name: getattr(value, name) for name in names}
    # A split's 72,000 blocks, each a dozen numbers and names: one piece each.
    flat = _json_flat(value, indent) if type(value) is dict else None
    if flat is not None:
        parts.append(flat)
    elif isinstance(value, dict):
        _json_dict_parts(value, indent, parts)
    elif isinstance(value, np.ndarray):
        parts.append(_json_array(value, indent))
    elif isinstance(value, Iterator):
        parts.append(_json_items(value, indent))
    elif isinstance(value, (list, tuple)):
        inner = indent + "  "
        opening = "[\n" + inner
        for item in value:
            parts.append(opening)
            opening = ",\n" + inner
            _json_parts(item, inner, parts)
        parts.append("[]" if not value else "\n" + indent + "]")
    elif isinstance(value, str):
        parts.append(_json_string(value))
    elif isinstance(value, float):
        parts.append(_json_float(value))
    else:
        parts.append(json.dumps(value))


def _json_dict_parts(value: dict[object, object], indent: str, parts: list[str | Iterator[str]]) -> None:
    if any(isinstance(item, _Deferred) for item in value.values()):
        parts.append(_json_members(value, indent))
        return
    inner = indent + "  "
    opening = "{\n" + inner
    for key, item in value.items():
        parts.append(opening + _json_key(key) + ": ")
        opening = ",\n" + inner
        _json_parts(item, inner, parts)
    parts.append("{}" if not value else "\n" + indent + "}")


def _json_flat(members: dict[object, object], indent: str) -> str | None:
    """`members` as json.dumps(members, indent=2) writes it at nesting `indent`, when each is a
    string, a number, True, False, None or a list of those; else None. One join for what
    _json_parts makes in a call per member."""
    inner = indent + "  "
    deeper = inner + "  "
    lines = []
    for key, item in members.items():
        kind = type(item)
        if kind is list:
            elements = cast("list[object]", item)
            texts = [_JSON_SCALARS[type(e)](e) for e in elements if type(e) in _JSON_SCALARS]
            if len(texts) != len(elements):
                return None
            text = "[\n" + deeper + (",\n" + deeper).join(texts) + "\n" + inner + "]" if texts else "[]"
        elif kind in _JSON_SCALARS:
            text = _JSON_SCALARS[kind](item)
        else:
            return None
        lines.append(inner + _json_key(key) + ": " + text)
    return "{\n" + ",\n".join(lines) + "\n" + indent + "}" if lines else "{}"


def _json_items(items: Iterator[object], indent: str) -> Iterator[str]:
    inner = indent + "  "
    empty = True
    for item in items:
        yield ("[\n" if empty else ",\n") + inner
        empty = False
        yield from _json_chunks(item, inner)
    yield "[]" if empty else "\n" + indent + "]"


def _json_members(members: dict[object, object], indent: str) -> Iterator[str]:
    inner = indent + "  "
    first = True
    for key, item in members.items():
        if isinstance(item, _Deferred):
            item = item.make()
            if item is None:
                continue
        yield ("{\n" if first else ",\n") + inner + _json_key(key) + ": "
        first = False
        yield from _json_chunks(item, inner)
    yield "{}" if first else "\n" + indent + "}"


def _record_fields(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names, in order (asdict's), or None for any other type."""
    if kind not in _FIELDS:
        _FIELDS[kind] = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
    return _FIELDS[kind]


_FIELDS: dict[type, tuple[str, ...] | None] = {}


# json.dumps' own spelling of a string with its default ensure_ascii (json/encoder.py), without its
# encoder made anew per call.
_json_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _json_key(key: object) -> str:
    """A member's name as json.dumps writes it: a string as it is, a number, True, False or None as
    its JSON text in quotes."""
    return _json_string(key if type(key) is str else json.dumps(key))


# Each scalar type as json.dumps spells it (bool before int: True is an int too, but its own type).
_JSON_SCALARS: dict[type, Callable[[Any], str]] = {
    str: _json_string,
    float: _json_float,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}


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


# ---- verify --------------------------------------------------------------------------------------


_VERIFY_COLUMNS: Columns = (
    ("layer", "left"),
    ("target", "left"),
    ("max |diff|", "right"),
    ("tolerance", "right"),
    ("result", "left"),
)


@record
class _VerifyLayer:
    name: str
    tolerance: str
    checks: list[tuple[str, str, str]]  # (target, max |diff|, verdict)


def _verify_layers(result: VerifyResult) -> list[_VerifyLayer]:
    layers = []
    for layer in result.layers:
        note = layer.note
        if layer.covered_by is not None:
            note = f"not run: the structure of {layer.covered_by}"
        checks = [(c.target, c.max_abs_diff, c.note, c.error) for c in layer.checks] or [("-", None, note, None)]
        rows = []
        for target, diff, note, error in checks:
            if error is not None:
                verdict = f"FAIL: {error}"
            elif diff is None:
                verdict = note or "-"
            else:
                verdict = "ok" if diff <= layer.tolerance else "FAIL"
            rows.append((target, "-" if diff is None else f"{diff:.1e}", safe(verdict)))
        layers.append(_VerifyLayer(safe(layer.name), f"{layer.tolerance:.1e}", rows))
    return layers


def _verify_table(title: str, layers: Sequence[_VerifyLayer]) -> Table:
    table = _rich_table(title, _VERIFY_COLUMNS, [])
    for layer in layers:
        for index, (target, diff, verdict) in enumerate(layer.checks):
            first = index == 0
            end = index == len(layer.checks) - 1
            table.add_row(
                layer.name if first else "", target, diff, layer.tolerance if first else "", verdict, end_section=end
            )
    return table


def _verify_blocks(title: str, layers: Sequence[_VerifyLayer], width: int) -> _Lines:
    """One block per layer: its name and tolerance, then a row per check whose verdict wraps in
    its own column, or, where that column would be narrower than _VERDICT_MIN, under the row."""
    lines = _wrap(title, width)
    rows = [(target, diff) for layer in layers for target, diff, _ in layer.checks]
    aligned = iter(_columns(rows, ("left", "right"), indent="  "))
    start = 2 + sum(max((cell_len(row[i]) for row in rows), default=0) for i in range(2)) + 4
    beside = width - start >= _VERDICT_MIN
    for layer in layers:
        lines += _wrap(f"{layer.name}  (tolerance {layer.tolerance})", width)
        for _, _, verdict in layer.checks:
            line = next(aligned)
            if beside:
                import textwrap

                text = textwrap.wrap(verdict, width - start, break_long_words=False, break_on_hyphens=False)
                text = text or [verdict]
                lines.append(_pad(line, start, "left") + text[0])
                lines += [" " * start + more for more in text[1:]]
            else:
                lines.append(line)
                lines += _wrap("      " + verdict, width, hanging=0)
    return _Lines(lines)


# A verdict column narrower than this wraps a message a word or two a line.
_VERDICT_MIN = 24


def verify_parts(result: VerifyResult) -> list[RenderableType]:
    """Per layer and target, the largest |difference| from the numpy cell (LSTM, GRU) on the split blocks, the
    tolerance and the verdict (or why the target did not run); then the overall verdict."""
    title = (
        f"{safe(result.path)}: max |difference| from the numpy cell on the split blocks "
        f"(seed {result.seed}, {result.steps} steps, batch {result.batch})"
    )
    layers = _verify_layers(result)
    blocks = functools.partial(_verify_blocks, title, layers)
    if sum(len(layer.checks) for layer in layers) > MAX_TABLE_ROWS:
        table: RenderableType = _Fitted(blocks)
    else:
        table = _Fitted(lambda width: _verify_table(title, layers), blocks)
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
    return [table, _Wrapped([verdict])]


# Each result type's renderables, printed one after another.
_RENDERERS: dict[str, Callable[..., list[RenderableType]]] = {
    "Summary": summary_parts,
    "VerifyResult": verify_parts,
}


def show(
    result: Summary | SplitResult | SplitStream | VerifyResult,
    as_json: bool = False,
    console: Console | None = None,
    stats: Callable[[], dict[str, Any] | None] | None = None,
) -> None:
    """Print a result: one JSON object (its to_dict()) for scripts, tables for people in the
    width of the screen (output_width). stats: asked once the result is made, for a `stats`
    member of the JSON (what crossed the network); none when it gives None."""
    if isinstance(result, (SplitResult, SplitStream)):
        show_split(result, as_json, console, stats)
    elif as_json:
        # A summary's to_dict() is its fields as asdict gives them: written as they are.
        data = _record_members(result) if isinstance(result, Summary) else result.to_dict()
        extra = stats() if stats is not None else None
        if extra is not None:
            data["stats"] = extra
        sys.stdout.writelines(_json_object(data.items()))
        sys.stdout.write("\n")
    else:
        parts = _RENDERERS[type(result).__name__](result)
        if console is None and _unstyled():
            # What rich would print, without loading it (a tenth of a 20,001-tensor summary) where
            # every part is this module's: a pipe or a file gets the same bytes either way.
            width = _width()
            lines = [_text_lines(part, width) for part in parts]
            if all(part is not None for part in lines):
                sys.stdout.write("".join(line.rstrip(" \t") + "\n" for part in lines for line in part or ()))
                return
        from rich.console import Group

        _print(console or _console(), Group(*parts))


# ---- diff ------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from rich.console import JustifyMethod, RenderableType

    from .diff import DiffResult, LayerDiff


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


_DIFF_COLUMNS: Columns = (
    ("gate", "left"),
    ("part", "left"),
    ("shape", "left"),
    ("max |Δ|", "right"),
    ("‖Δ‖/‖A‖", "right"),
    ("cosine", "right"),
)
_UNITS = "units changed most (‖Δ‖)"


def _diff_blocks(layer: LayerDiff, width: int) -> list[str]:
    """A changed pair's blocks: a row each with the units that changed most in a last column where
    it fits, under each row where only the numbers do, and one block per block below that."""
    rows = [
        (
            block.gate or "-",
            block.part,
            _shape(block.shape),
            "0" if block.identical else f"{block.max_abs_diff:.3g}",
            _optional(block.relative_change, ".3g"),
            _optional(block.cosine, ".6f"),
        )
        for block in layer.blocks
    ]
    units = [", ".join(f"{u.unit} ({u.norm:.3g})" for u in block.top_units) or "-" for block in layer.blocks]
    header = tuple(name for name, _ in _DIFF_COLUMNS)
    justify = [how for _, how in _DIFF_COLUMNS]

    def table(beside: bool) -> list[str]:
        if beside:
            return _columns([(*header, _UNITS), *((*row, u) for row, u in zip(rows, units))], [*justify, "left"], "  ")
        aligned = _columns([header, *rows], justify, "  ")
        out = [aligned[0]]
        for line, u in zip(aligned[1:], units):
            out += [line, *_wrap(f"      units changed most: {u}", width)]
        return out

    def blocks() -> list[str]:
        out: list[str] = []
        for (gate, part, shape, largest, relative, cosine), u in zip(rows, units):
            out += _wrap(f"  {gate} {part} {shape}", width)
            out += _pack([f"max |Δ| {largest}", f"‖Δ‖/‖A‖ {relative}", f"cosine {cosine}"], width, "    ")
            out += _wrap(f"    {_UNITS}: {u}", width)
        return out

    return _fit([lambda: table(True), lambda: table(False), blocks], width)


def _diff_layer(layer: LayerDiff) -> list[RenderableType]:
    names = safe(layer.a) if layer.a == layer.b else f"{safe(layer.a)} ↔ {safe(layer.b)}"
    how = "" if layer.matched_by == "name" else f" (matched by {layer.matched_by})"
    parts: list[RenderableType] = [_Wrapped([f"{names}{how}: {layer.verdict}", *(f"  {note}" for note in layer.notes)])]
    if layer.status == "changed" and layer.blocks:
        parts.append(_Fitted(lambda width: _Lines(_diff_blocks(layer, width))))
    return parts


def diff_parts(result: DiffResult) -> list[RenderableType]:
    """Per matched pair of layers a one-line verdict (and notes); a table of every block of a
    changed pair; layers only one file has; the overall verdict."""
    parts: list[RenderableType] = [
        _Bold([f"A: {safe(result.a)} ({result.format_a})", f"B: {safe(result.b)} ({result.format_b})"], hanging=0)
    ]
    for layer in result.layers:
        parts += _diff_layer(layer)
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            parts.append(_Wrapped([f"Only in {side}: " + ", ".join(safe(name) for name in names)]))
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
    parts.append(_Wrapped([verdict]))
    return parts


def _tolerance(result: DiffResult) -> str:
    from .diff import tolerance_text

    return tolerance_text(result.atol, result.rtol)


_RENDERERS["DiffResult"] = diff_parts
