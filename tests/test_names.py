"""Names from a hostile file reach a person escaped: no control character, bidi control or line
break of a tensor or layer name gets to the terminal, from any command, table, title or message;
--json keeps them exact, and --layer takes a name as stored or as shown."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from lstm_inspect.api import Checkpoint
from lstm_inspect.cli import main
from lstm_inspect.errors import LstmInspectWarning
from lstm_inspect.render import show
from lstm_inspect.terminal import safe
from lstm_inspect.verify import verify

from .test_slicer import MemoryStore
from .test_values import write_checkpoint

# What must never reach a terminal raw; "\n" only as the end of an output line.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A scope with ESC CSI (clear screen), OSC (window title, ended by BEL), U+202E and a newline that
# would print a fake table row; a variable with a NUL (which an .npz member name cannot hold, so
# the LSTM scope has none: export refuses it).
EVIL = "rnn/e\x1b[2J\x1b]0;owned\x07\u202e\n│ fake │ row │\r\u2066x\u0085\x9b/lstm_cell"
HEAD = "head\x1b]0;x\x07/dense\x00\n/kernel"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def evil_checkpoint(tmp_path) -> str:
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((5, 12)).astype(np.float32)
    kernel[0, 0] = np.nan  # for a value warning that names the tensor
    return write_checkpoint(
        str(tmp_path / "evil"),
        {
            f"{EVIL}/kernel": kernel,
            f"{EVIL}/bias": np.zeros(12, np.float32),
            HEAD: np.zeros((2, 3), np.float32),
        },
    )


def unescape(text: str) -> str:
    """The inverse of terminal.safe."""
    named = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
    return re.sub(
        r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt\\])",
        lambda m: named.get(m.group(1)) or chr(int(m.group(1)[1:], 16)),
        text,
    )


def assert_shown_safely(text: str) -> None:
    for line in text.split("\n"):
        assert not UNSAFE.search(line), repr(line)
    # The fake row never starts a line of its own.
    assert not any(line.startswith("│ fake") for line in text.splitlines())


# ---- terminal.safe --------------------------------------------------------------------------------


def test_safe_escapes_what_moves_the_cursor_and_keeps_the_rest():
    assert safe("rnn/basic_lstm_cell") == "rnn/basic_lstm_cell"
    assert safe("größe/zelle·日本") == "größe/zelle·日本"  # printable non-ASCII stays as it is
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("t\x1b]0;title\x07") == "t\\x1b]0;title\\x07"
    assert safe("x\ny\rz\t") == "x\\ny\\rz\\t"
    assert safe("\x00\x7f\x85\x9b") == "\\x00\\x7f\\x85\\x9b"
    assert safe("abc\u202edef\u2066\u200f\u061c") == "abc\\u202edef\\u2066\\u200f\\u061c"
    assert safe("a\u2028b") == "a\\u2028b"
    assert safe("\ud800") == "\\ud800"  # a lone surrogate cannot even be encoded to print
    assert safe("a\\x1b") == "a\\\\x1b"  # a literal backslash never reads as an escape


@given(st.text())
def test_safe_is_reversible_and_leaves_nothing_unsafe(text):
    shown = safe(text)
    assert not UNSAFE.search(shown) and "\n" not in shown
    assert unescape(shown) == text


# ---- every human output ------------------------------------------------------------------------------


def test_summary_split_values_and_errors_show_names_safely(tmp_path):
    path = evil_checkpoint(tmp_path)
    for args in (
        ["summary", path],
        ["split", path],
        ["split", path, "--values", "--gate", "f"],
        ["split", path, "--layer", "nope"],
        ["export", path, "-o", str(tmp_path / "out.npz")],
        ["export", path, "--layer", EVIL, "-o", str(tmp_path / "x\x1b[2J.npz")],
    ):
        result = run(*args)
        assert_shown_safely(result.stdout)
        assert_shown_safely(result.stderr)
        assert "Traceback" not in result.stderr
    shown = safe(EVIL)
    summary = run("summary", path).stdout
    # The tensor's name is wider than the explanation's line leaves: the explanation goes under it.
    assert shown in summary.splitlines() and f"  {shown}/kernel\n    kernel [5, 12]" in summary
    assert safe(HEAD) in summary and "dense\\x00\\n/kernel" in summary
    split = run("split", path, "--values", "--gate", "f")
    assert f"{shown}: (Basic)LSTMCell" in split.stdout and f"{shown} forget bias [3]\n[" in split.stdout
    # The value warning quotes the tensor's repr, escaped like everything else.
    (warning,) = [line for line in split.stderr.splitlines() if line.startswith("Warning:")]
    assert safe(repr(f"{EVIL}/kernel")) in warning and "1 NaN or infinite" in warning
    unknown = run("split", path, "--layer", "no\x1bpe")
    assert unknown.exit_code == 1 and unknown.stderr.count("\n") == 1
    assert shown in unknown.stderr and "no\\\\x1bpe" in unknown.stderr  # repr's escape, escaped again
    wrote = run("export", path, "--layer", EVIL, "-o", str(tmp_path / "x\x1b[2J.npz"))
    assert wrote.exit_code == 0 and f"for {shown} to " in wrote.stdout and "x\\x1b[2J.npz" in wrote.stdout


def test_verify_table_shows_names_safely(tmp_path):
    import lstm_inspect

    # numpy targets only: the frameworks are tested in test_verify.py, and their notes pass the same way.
    console = Console(file=io.StringIO(), width=200)
    with lstm_inspect.load(evil_checkpoint(tmp_path)) as ckpt, pytest.warns(LstmInspectWarning, match="1 NaN"):
        show(verify(ckpt, frameworks=()), console=console)
    text = console.file.getvalue()
    assert_shown_safely(text)
    assert safe(EVIL) in text


def test_json_keeps_names_exact(tmp_path):
    path = evil_checkpoint(tmp_path)
    summary = json.loads(run("summary", path, "--json").stdout)
    assert [layer["name"] for layer in summary["layers"]] == [EVIL]
    assert summary["variables"][0]["name"] == HEAD
    split = json.loads(run("split", path, "--json", "--values", "--part", "bias").stdout)
    assert split["layers"][0]["name"] == EVIL and split["layers"][0]["blocks"][0]["source"].startswith(EVIL)


def test_a_layer_can_be_named_as_summary_shows_it(tmp_path):
    path = evil_checkpoint(tmp_path)
    for name in (EVIL, safe(EVIL)):
        result = run("split", path, "--layer", name, "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["layers"][0]["name"] == EVIL
    # A name as stored wins over another layer's shown form.
    arrays = {}
    for scope in ("a\x1b/lstm_cell", "a\\x1b/lstm_cell"):
        arrays[f"{scope}/kernel"] = np.zeros((5, 12), np.float32)
        arrays[f"{scope}/bias"] = np.zeros(12, np.float32)
    ckpt = Checkpoint(MemoryStore(arrays))
    assert [layer.name for layer in ckpt.select(["a\\x1b/lstm_cell"])] == ["a\\x1b/lstm_cell"]
    assert [layer.name for layer in ckpt.select(["a\\\\x1b/lstm_cell"])] == ["a\\x1b/lstm_cell"]


def test_ordinary_names_print_unchanged():
    # The golden files (test_cli.py) pin whole outputs; here a name with every printable ASCII
    # character but the backslash comes through byte for byte.
    scope = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\").replace("/", "") + "/lstm_cell"
    arrays = {f"{scope}/kernel": np.zeros((5, 12), np.float32), f"{scope}/bias": np.zeros(12, np.float32)}
    console = Console(file=io.StringIO(), width=400, markup=False, emoji=False)
    from lstm_inspect.results import summarize

    show(summarize(Checkpoint(MemoryStore(arrays))), console=console)
    assert f"│ {scope} │" in console.file.getvalue()


def test_every_character_is_shown_as_the_escaping_pattern_says():
    # safe() answers printable text without its pattern: the answer must be the pattern's, for
    # every code point (surrogates included).
    from lstm_inspect import terminal

    unsafe = terminal._compile()
    for code in range(0x110000):
        text = f"a{chr(code)}b"
        assert safe(text) == unsafe.sub(terminal._escape, text), hex(code)


@settings(deadline=None)  # bound by work, not by the clock of a busy machine
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), st.text(max_size=6)), min_size=1, max_size=6))
def test_columns_align_alike_whether_or_not_every_cell_is_printable_ascii(rows):
    # _columns pads printable ASCII by str.format; anything else by each cell's terminal width.
    from lstm_inspect import render

    rows = [tuple(safe(cell) for cell in row) for row in rows]
    justify = ("left", "right", "left")
    widths = [max(render.cell_len(row[i]) for row in rows) for i in range(3)]
    expected = [
        "  ".join(render._pad(cell, width, how) for cell, width, how in zip(row, widths, justify)).rstrip()
        for row in rows
    ]
    assert render._columns(rows, justify) == expected


@given(
    st.text(),
    st.lists(st.integers(min_value=0, max_value=1 << 70), max_size=5),
    st.text(max_size=10),
    st.integers(min_value=0, max_value=1 << 80),
    st.sampled_from(["model", "bookkeeping", "optimizer"]),
)
@settings(deadline=None)
def test_a_variable_is_written_as_the_json_encoder_writes_it(name, shape, dtype, params, category):
    # summary --json writes its variables by one format each, the encoder's text exactly.
    from lstm_inspect import render
    from lstm_inspect.results import VariableLine

    v = VariableLine(name, shape, dtype, params, category)
    assert render._variable_json(v) == render._dumps()(v) == json.dumps(json.loads(render._dumps()(v)))


# Values a summary's layers may hold, a few of each so that layers share them: what JSON tells
# apart and Python calls equal (1, 1.0, True; 0.0, -0.0) among them.
_NUMBERS = st.sampled_from([0, 1, 2, 0.0, -0.0, 1.0, 2.5, float("nan"), float("inf"), True, False])
_VALUES = st.one_of(st.none(), _NUMBERS, st.text(max_size=4), st.lists(_NUMBERS, max_size=2))


@given(st.data())
@settings(deadline=None, max_examples=200)
def test_layers_are_written_as_the_json_encoder_writes_them(data):
    # summary --json writes a layer's shared fields once per set of values (render._LayerText);
    # every layer must read as the encoder writes it, whatever the layers before it were.
    from lstm_inspect import render
    from lstm_inspect.results import LayerSummary, SettingLine, TensorLine
    from lstm_inspect.schema import Setting

    def pool(strategy, size=2):
        return st.sampled_from(data.draw(st.lists(strategy, min_size=1, max_size=size)))

    texts = pool(st.text(max_size=4))
    # Fields declared int, bool or str are keyed by value and type: 1, 1.0 and True among them.
    ints = pool(st.sampled_from([0, 1, 2, 1.0, 2.5, True, False]))
    floats = pool(st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, float("nan")])))
    lines = pool(st.builds(SettingLine, _VALUES, st.text(max_size=4), st.booleans()), 3)
    variants = pool(st.builds(Setting, _VALUES, st.text(max_size=4), st.booleans()))
    shape = st.lists(st.integers(min_value=0, max_value=1 << 40), max_size=2)  # ints, as a variable's
    tensors = st.lists(st.builds(TensorLine, st.text(max_size=4), shape, texts), max_size=2)
    convolution = st.one_of(st.none(), st.dictionaries(st.text(max_size=2), _VALUES, max_size=2))
    layer = st.builds(
        LayerSummary,
        texts,
        st.one_of(st.none(), texts),  # name, cell
        texts,
        texts,
        texts,
        st.lists(texts, max_size=4),  # framework, layout, gate_order, gates
        ints,
        ints,
        ints,
        st.one_of(st.none(), ints),
        ints,
        floats,
        texts,
        texts,
        texts,
        ints,
        texts,  # activations, activation_source, params, dtype
        st.one_of(st.none(), texts),
        st.one_of(st.none(), texts),
        tensors,  # pair, direction
        st.dictionaries(texts, lines, max_size=3),
        texts,
        st.dictionaries(texts, variants, max_size=2),
        convolution,
    )
    layers = data.draw(st.lists(layer, min_size=1, max_size=6))
    spell, dumps = render._LayerText(layers), render._dumps()
    assert spell.typed  # the fields it writes are LayerSummary's, of the types declared
    for one in layers:
        assert spell(one) == dumps(one) == json.dumps(render._record_members(one), default=render._record_members)


def _layer(forget_bias: object = 1.0, units: object = 2, tensors: tuple = ()):
    from lstm_inspect.results import LayerSummary, TensorLine

    return LayerSummary(
        *("l", None, "tensorflow", "tf1", "ijfo", ["i"], 1, units, 1, None, False, forget_bias),
        *("tanh", "sigmoid", "default", 8, "float32", None, None, [TensorLine(*t) for t in tensors]),
    )


def test_layers_equal_in_python_but_not_in_json_are_written_apart():
    from lstm_inspect import render

    layers = [_layer(0.0, 2), _layer(-0.0, 2), _layer(0.0, 2.0), _layer(0.0, True), _layer(0.0, 1)]
    spell = render._LayerText(layers)
    assert spell.typed and [spell(one) for one in layers] == [render._dumps()(one) for one in layers]
    assert len({spell(one) for one in layers}) == 5


@pytest.mark.parametrize(
    "tensor",
    [("t", [True], "x"), ("t", [2.0], "x"), ("t", (3,), "x"), (b"t", [1], "x"), ("t", [1], None)],
)
def test_layers_whose_own_fields_are_not_as_declared_go_to_the_encoder(tensor):
    # A dimension that is a bool or a float, a shape that is a tuple, a name of bytes (not JSON:
    # the encoder says so): the whole list is the encoder's.
    from lstm_inspect import render

    one = _layer(tensors=(tensor,))
    spell = render._LayerText([one])
    assert not spell.typed
    try:
        expected = render._dumps()(one)
    except TypeError:
        with pytest.raises(TypeError):
            spell(one)
    else:
        assert spell(one) == expected == json.dumps(json.loads(expected))
