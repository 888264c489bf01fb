"""The command line: a thin click adapter over the library.

Heavy modules (numpy, rich, h5py) are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from .errors import LstmInspectError

_EPILOG_SUMMARY = """\b
Examples:
  lstm-inspect summary model.ckpt
  lstm-inspect summary train_dir/            (uses train_dir/checkpoint)
  lstm-inspect summary model.h5 --json
"""

_EPILOG_SPLIT = """\b
Examples:
  lstm-inspect split model.ckpt --gate forget
  lstm-inspect split model.ckpt --layer rnn/lstm_cell --gate f --part kernel --values
  lstm-inspect split model.keras --json
"""

_EPILOG_EXPORT = """\b
Examples:
  lstm-inspect export model.ckpt                      (writes ./model.ckpt.gates.npz)
  lstm-inspect export model.ckpt -o gates.npz --layer rnn/lstm_cell --gate forget
Keys: LAYER/GATE/kernel, LAYER/GATE/recurrent, LAYER/GATE/bias [, recurrent_bias, peephole],
LAYER/projection and the 0-d LAYER/forget_bias.
"""


@contextmanager
def _errors() -> Iterator[None]:
    """Known input problems become one line on stderr and exit 1; bugs keep their traceback."""
    try:
        yield
    except LstmInspectError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--forget-bias",
        type=float,
        default=None,
        metavar="FLOAT",
        help="Runtime forget bias to assume for every layer (default: the framework's own; "
        "1.0 for TF1 cells, 0.0 for Keras).",
    )(f)
    f = click.option("--no-verify", is_flag=True, help="Do not check the checkpoint's CRC-32C checksums.")(f)
    f = click.argument("path", type=click.Path(path_type=str))(f)
    return f


_layer_option = click.option(
    "--layer",
    "layers",
    multiple=True,
    metavar="NAME",
    help="Only this layer (repeatable); names as `summary` shows them.",
)
_gate_option = click.option(
    "--gate",
    "gates",
    multiple=True,
    metavar="GATE",
    help="input|forget|cell|output, or i, f, c, o, j, g, candidate (repeatable).",
)


def _open(path: str, forget_bias: float | None, no_verify: bool) -> Any:
    from .api import load

    return load(path, forget_bias=forget_bias, verify=not no_verify)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstm-inspect")
def main() -> None:
    """Find the LSTM layers in a TensorFlow checkpoint or Keras file and explain their fused weights.

    PATH is a TF checkpoint (the prefix, its .index or .data-… file, or a directory with a
    `checkpoint` file), a Keras .h5 / .weights.h5, or a Keras 3 .keras file.
    TensorFlow is not needed.
    """


@main.command(epilog=_EPILOG_SUMMARY)
@_common
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def summary(path: str, forget_bias: float | None, no_verify: bool, as_json: bool) -> None:
    """Every LSTM layer: sizes, gate order, how its fused tensors decompose, parameter counts;
    then the other variables, optimizer state and totals."""
    with _errors():
        from .render import print_renderable, summary_renderable, to_json
        from .results import summarize

        with _open(path, forget_bias, no_verify) as ckpt:
            result = summarize(ckpt)
        if as_json:
            click.echo(to_json(result))
        else:
            print_renderable(summary_renderable(result))


@main.command(epilog=_EPILOG_SPLIT)
@_common
@_layer_option
@_gate_option
@click.option(
    "--part",
    "parts",
    multiple=True,
    type=click.Choice(["kernel", "recurrent", "bias", "recurrent_bias", "peephole", "projection"]),
    help="Only this part (repeatable).",
)
@click.option("--values", is_flag=True, help="Print the numbers too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def split(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    layers: tuple[str, ...],
    gates: tuple[str, ...],
    parts: tuple[str, ...],
    values: bool,
    as_json: bool,
) -> None:
    """Gate tables: for each gate and part its shape, where it was cut from, mean, std, min, max, L2 norm."""
    with _errors():
        from .render import print_renderable, split_renderable, to_json
        from .results import split as split_blocks

        with _open(path, forget_bias, no_verify) as ckpt:
            result = split_blocks(ckpt, layers, gates, parts, values)
        if as_json:
            click.echo(to_json(result))
        else:
            print_renderable(split_renderable(result))


@main.command(epilog=_EPILOG_EXPORT)
@_common
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Output .npz (default: <checkpoint name>.gates.npz in the current directory).",
)
@_layer_option
@_gate_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def export(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    output: str | None,
    layers: tuple[str, ...],
    gates: tuple[str, ...],
    quiet: bool,
) -> None:
    """Write the gate blocks of the LSTM layers to an .npz file (atomically)."""
    with _errors():
        from .export import default_output, gate_arrays, write_npz

        with _open(path, forget_bias, no_verify) as ckpt:
            selected = ckpt.select(layers)
            target = output or default_output(ckpt.path)
            result = write_npz(target, gate_arrays(ckpt, layers, gates))
        if not quiet:
            names = ", ".join(layer.name for layer in selected)
            size = result.bytes / 2**20
            click.echo(f"Wrote {result.arrays} arrays ({size:.2f} MiB) for {names} to {os.path.abspath(target)}")


if __name__ == "__main__":
    main()
