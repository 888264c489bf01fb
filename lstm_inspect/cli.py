"""The command line: a thin click adapter over the library.

Heavy modules (numpy, rich, h5py) are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import atexit
import functools
import gc
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any, TextIO, TypeVar

import click

from .errors import LstmInspectError, LstmInspectWarning, UsageError
from .terminal import safe

_F = TypeVar("_F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# Help wraps at the terminal's width (click's own formatter); the \b blocks, which click prints as
# they are, stay within 60 columns as printed.
_EPILOG_SUMMARY = """\b
Examples:
  lstm-inspect summary model.ckpt
  lstm-inspect summary train_dir/
      (the checkpoint its `checkpoint` file names)
  lstm-inspect summary model.h5 --json
"""

_EPILOG_SPLIT = """\b
Examples:
  lstm-inspect split model.ckpt --gate forget
  lstm-inspect split model.ckpt --layer rnn/lstm_cell \\
      --gate f --part kernel --values
  lstm-inspect split model.keras --json
"""

_EPILOG_EXPORT = """\b
Examples:
  lstm-inspect export model.ckpt
      (writes ./model.ckpt.gates.npz)
  lstm-inspect export model.ckpt -o gates.npz \\
      --layer rnn/lstm_cell --gate forget
  lstm-inspect export model.ckpt --layout pytorch \\
      -o lstm.npz
  lstm-inspect export model.keras --layout onnx \\
      --layer enc -o enc.onnx
  lstm-inspect export model.h5 --layout tensorflow \\
      --target-forget-bias 0 -o cell.npz
  lstm-inspect export model.h5 -o - | gzip > g.npz.gz

An existing file is replaced (atomically) only when -o names it, or with --force. Keys, per exported
layer L (a key with no L/ prefix when one layer or pair goes to pytorch):

"""


def _export_epilog() -> str:
    from .targets import TARGETS

    return _EPILOG_EXPORT + "\n\n".join(f"{target.name}: {target.summary}." for target in TARGETS.values())


def _verify_epilog() -> str:
    import textwrap  # here, not at the top: importing it compiles its regular expressions

    from .targets import TARGETS

    checks = [*(t.check for t in TARGETS.values() if t.check), "keras-model", "tf-cell"]
    # Wrapped here, whole names only (help's own wrapping would break keras-model at its hyphen).
    lines = textwrap.wrap(f"Checks --framework can name: {', '.join(checks)}.", 56, break_on_hyphens=False)
    return _EPILOG_VERIFY + "\n\b\n" + "\n".join(lines) + "\n"


_EPILOG_VERIFY = """\b
Examples:
  lstm-inspect verify model.ckpt
  lstm-inspect verify model.keras --layer enc --json

Targets: numpy on each export layout written and read back, then torch.nn.LSTM/GRU (PyTorch export),
onnxruntime (.onnx model), Keras 3 (Keras export) and, for a Keras model file, Keras' own loader.
Their own logs (TensorFlow's, oneDNN's, torch's warnings) are hidden unless --verbose.
"""


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    if issubclass(category, LstmInspectWarning):
        from .readers.urls import mask_secrets

        click.echo(f"Warning: {safe(mask_secrets(str(message)))}", err=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)  # type: ignore[arg-type]


_default_showwarning = warnings.showwarning


def _own_process() -> bool:
    """Whether main() runs as a process of its own: a caller that swaps stderr (CliRunner) keeps
    its interpreter."""
    return sys.stderr is sys.__stderr__


@contextmanager
def _errors() -> Iterator[None]:
    """Known input problems become one line on stderr and exit 1; bugs keep their traceback.
    The library's warnings (LstmInspectWarning) print as one line each, "Warning: …"."""
    interrupted = False
    try:  # a Ctrl-C from the first import on ends as "Interrupted." (what came before: __main__.run)
        from .readers.files import reset_transfers

        warnings.showwarning = _show_warning
        warnings.simplefilter("always", LstmInspectWarning)
        reset_transfers()
        yield
    except UsageError as e:
        raise click.UsageError(safe(str(e))) from None
    except LstmInspectError as e:
        # Messages quote names from the file: shown safely, like every name (terminal.py), and
        # never with a URL's credentials.
        from .readers.urls import mask_secrets

        raise click.ClickException(safe(mask_secrets(str(e)))) from None
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        interrupted = True
        sys.exit(130)
    finally:
        if click.get_current_context().meta.get(_VERBOSE):
            _report_transfers()
        if interrupted and _own_process():
            # The exit handlers run (TensorFlow's worker is killed), then the process ends without
            # tearing down the frameworks' modules, which took 0.4 s after torch.
            atexit._run_exitfuncs()
            with suppress(OSError):  # a reader of stdout that went away
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(130)


_VERBOSE = "lstm_inspect.verbose"


def _report_transfers() -> None:
    """--verbose: what crossed the network, on stderr; nothing for local files."""
    from .readers.files import transfers

    counted = transfers()
    if counted is None:
        return

    def n(count: int, word: str) -> str:
        return f"{count:,} {word}{'' if count == 1 else 's'}"

    retries = f"; {counted.retries:,} tried again" if counted.retries else ""
    requests = n(counted.reads + counted.lookups, "request")
    click.echo(
        f"Fetched {n(counted.bytes, 'byte')} in {requests} ({n(counted.reads, 'read')}, "
        f"{n(counted.lookups, 'lookup')}{retries}):",
        err=True,
    )
    for url, c in counted.files.items():
        click.echo(f"  {url}: {n(c['reads'], 'read')}, {n(c['lookups'], 'lookup')}, {n(c['bytes'], 'byte')}", err=True)


def _show(result: Any, as_json: bool) -> None:
    """render.show, with the transfer counts in the JSON when the input was remote."""
    from .readers.files import transfers
    from .render import show

    def stats() -> dict[str, Any] | None:
        counted = transfers()
        return counted.to_dict() if counted else None

    show(result, as_json, stats=stats)


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_VERBOSE] = True


class _LazyEpilogCommand(click.Command):
    """A command whose epilog is made when help is shown: what it lists (the export targets' keys,
    verify's checks) lives in modules that `lstm-inspect --help` and `summary` need not import."""

    def __init__(self, *args: Any, epilog_from: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog is None:
            self.epilog = self.epilog_from()
        super().format_epilog(ctx, formatter)


class _FiniteFloat(click.ParamType):
    """A float that is a number: a NaN or infinite forget bias would be written into every bias."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


FINITE_FLOAT = _FiniteFloat()


_VERBOSE_HELP = "For a URL: say on stderr how many requests and bytes crossed the network, per file."
# One instance for every path parameter: making a click.Path looks up gettext's catalogues (its
# name is translated), once here instead of once per parameter.
_PATH = click.Path(path_type=str)


def _common(f: Callable[..., Any], verbose_help: str = _VERBOSE_HELP) -> Callable[..., Any]:
    f = click.option(
        "--forget-bias",
        type=FINITE_FLOAT,
        default=None,
        metavar="FLOAT",
        help="Runtime forget bias to assume for every layer (default: the framework's own; "
        "1.0 for TF1 cells, 0.0 for Keras).",
    )(f)
    f = click.option(
        "--no-verify", is_flag=True, help="Do not check checksums (a TF checkpoint's CRC-32C, a .keras file's CRC-32)."
    )(f)
    f = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_remember_verbose,
        help=verbose_help,
    )(f)
    f = click.argument("path", type=_PATH)(f)
    return f


# split --values prints at most this many numbers unless told otherwise: one 1024 × 1024 block
# (some 13 MB of text); --max-elements raises it, export writes any number to a file.
MAX_VALUES = 1024 * 1024


def _complete_layers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """--layer completes to the layer and pair names of the file already on the command line; a
    URL is not fetched for it, and a file that cannot be read completes to nothing."""
    from click.shell_completion import CompletionItem

    from .readers.urls import is_url

    # With the --layer being completed last, click's resilient parse stops before PATH is
    # processed and leaves it among the context's unparsed args.
    path = ctx.params.get("path") or next(iter(ctx.args), None)
    if not isinstance(path, str) or is_url(path):
        return []
    from .api import load

    names: dict[str, None] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nothing may print into the shell's command line
            with load(path, verify=False) as ckpt:
                for layer in ckpt.layers:
                    names.update(dict.fromkeys(name for name in (layer.pair, layer.name) if name is not None))
    except Exception:  # whatever the file is, completion offers nothing rather than a traceback
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


_layer_option = click.option(
    "--layer",
    "layers",
    multiple=True,
    metavar="NAME",
    shell_complete=_complete_layers,
    help="Only this layer (repeatable); names as `summary` shows them, or a bidirectional pair's name.",
)


class _SchemaChoice(click.Choice):
    """A click.Choice over names the schema declares, taken from it when first needed (to parse,
    complete or list the option): `lstm-inspect --help` and the other commands need not import it."""

    def __init__(self, names: Callable[[], Sequence[str]], case_sensitive: bool = True) -> None:
        self._names = names
        self.case_sensitive = case_sensitive

    @functools.cached_property
    def choices(self) -> Sequence[str]:  # type: ignore[override]
        return tuple(self._names())


class _SchemaOption(click.Option):
    """An option whose help text lists names the schema declares: made when help is shown."""

    def __init__(self, *args: Any, help_text: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._help_text = help_text

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.help is None:
            self.help = self._help_text()
        return super().get_help_record(ctx)


def _gate_names() -> tuple[str, ...]:
    """Every name a cell kind's gates go by (schema.CellKind.aliases), in any case."""
    from .schema import CELL_KINDS

    return tuple(dict.fromkeys(alias for kind in CELL_KINDS.values() for alias in kind.aliases))


def _gates_help() -> str:
    from .schema import CELL_KINDS

    kinds = list(CELL_KINDS.values())
    if len(kinds) == 1:
        return f"Only this gate (repeatable): {kinds[0].alias_text()}."
    return "Only this gate (repeatable): " + "; ".join(f"{kind.name} {kind.alias_text()}" for kind in kinds) + "."


def _part_names() -> tuple[str, ...]:
    from .schema import PARTS

    return PARTS


def _layout_option(f: _F) -> _F:
    """export's --layout, whose choices are the export targets' registry (imported when export is used)."""
    from .targets import NAMES

    return click.option(
        "--layout",
        type=click.Choice(NAMES),
        default="gates",
        show_default=True,
        metavar="LAYOUT",
        help=f"{', '.join(NAMES)}: the canonical gate blocks, or the weights ready for that framework (keys below).",
    )(f)


_gate_option = click.option(
    "--gate",
    "gates",
    cls=_SchemaOption,
    multiple=True,
    type=_SchemaChoice(_gate_names, case_sensitive=False),
    metavar="GATE",
    help_text=_gates_help,
)


@contextmanager
def _progress_bar(enabled: bool, doing: str = "exporting") -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while a command runs, only when stderr is a terminal; the command
    calls it with (bytes just done, bytes in all) as it goes (export.Progress)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn(doing),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        DownloadColumn(binary_units=True),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(doing, total=None)
        yield lambda done, total: bar.update(task, total=max(total, 1), advance=done)


def _one_blas_thread() -> None:
    """Ask numpy's BLAS for one thread, before numpy loads, in this process only, for a command
    whose BLAS calls are dot products of vectors at most (export, split, diff, plot): OpenBLAS
    starts a thread per core at load (start-up time and memory), and its threads spin a while
    after each call (under valgrind, one split counted 216 G instructions of spinning against its
    0.8 G of work). A limit the user set is kept; children get the environment as it was."""
    if "numpy" in sys.modules:
        return
    limits = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    added = [name for name in limits if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        import numpy  # noqa: F401  # loads its BLAS, which reads the limits now
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextmanager
def _framework_logs(meta: dict[str, Any]) -> Iterator[None]:
    """While verify runs the frameworks, keep their own logs off stderr unless --verbose: absl's
    "All log messages before absl::InitializeLog() is called are written to STDERR", oneDNN's
    notice and "failed call to cuInit" (C++ code writing to file descriptor 2, whatever
    TF_CPP_MIN_LOG_LEVEL says in TensorFlow 2.21), Python warnings and logging from torch and
    Keras. lstm-inspect's own warnings still print. Should verify fail with a traceback, what was
    held back is printed before it."""
    if meta.get(_VERBOSE):
        yield
        return
    import logging
    import tempfile

    log = tempfile.TemporaryFile()
    real_stderr, saved_fd = sys.stderr, None
    with suppress(OSError):
        real_stderr.flush()
        saved_fd = os.dup(2)
        os.dup2(log.fileno(), 2)
        if _is_fd2(real_stderr):
            # Python's own stderr writes to descriptor 2 too: it keeps the terminal.
            sys.stderr = open(saved_fd, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    shown = warnings.showwarning

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, LstmInspectWarning):
            shown(message, category, filename, lineno, file, line)
        else:
            log.write(warnings.formatwarning(message, category, filename, lineno).encode(errors="replace"))

    def restore() -> None:
        nonlocal saved_fd
        if sys.stderr is not real_stderr:
            sys.stderr.close()
            sys.stderr = real_stderr
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            saved_fd = None

    warnings.showwarning = show_warning
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    except Exception as e:
        restore()
        if not isinstance(e, LstmInspectError):
            log.seek(0)
            held = log.read().decode(errors="replace").rstrip()
            if held:
                click.echo(f"The frameworks' log, hidden without --verbose:\n{held}", err=True)
        raise
    finally:
        restore()
        logging.disable(disabled)
        warnings.showwarning = shown
        log.close()


def _is_fd2(stream: Any) -> bool:
    try:
        return bool(stream.fileno() == 2)
    except (AttributeError, OSError, ValueError):  # CliRunner's streams have no descriptor
        return False


def _open(path: str, forget_bias: float | None, no_verify: bool) -> Any:
    from .api import load

    return load(path, forget_bias=forget_bias, verify=not no_verify)


class _Commands(MutableMapping[str, click.Command]):
    """A group's commands by name, each made when first looked up, from the function and
    decorators it was declared with: listing the names makes none of them."""

    def __init__(self) -> None:
        self._entries: dict[str, click.Command | tuple[Callable[[], click.Command], str | None]] = {}

    def declare(self, name: str, make: Callable[[], click.Command], doc: str | None) -> None:
        self._entries[name] = (make, doc)

    def listed(self, name: str) -> click.Command:
        """What the group's help shows of `name`: the command if it is made, else one made of its
        docstring alone, whose first sentence click shortens alike."""
        entry = self._entries[name]
        return entry if isinstance(entry, click.Command) else click.Command(name, help=entry[1])

    def __getitem__(self, name: str) -> click.Command:
        entry = self._entries[name]
        if not isinstance(entry, click.Command):
            entry = self._entries[name] = entry[0]()
        return entry

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class _LazyGroup(click.Group):
    """A group whose commands' options are made when the command is used or its help shown: their
    click objects (7 commands, 44 parameters) were most of `lstm-inspect --help`'s own work, and
    every command paid for all the others'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: _Commands = _Commands()

    def lazy_command(
        self, *decorators: Callable[[Any], Any], name: str | None = None, **attrs: Any
    ) -> Callable[[_F], _F]:
        """As `@group.command(**attrs)` over `decorators` stacked in this order, applied when the
        command is first looked up; returns the function itself."""

        def declare(f: _F) -> _F:
            command_name = name or f.__name__

            def make() -> click.Command:
                made: Any = f
                for decorator in reversed(decorators):  # the lowest first, as stacked decorators
                    made = decorator(made)
                return click.command(command_name, **attrs)(made)

            self.commands.declare(command_name, make, f.__doc__)
            return f

        return declare

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listing = click.Group(commands=[self.commands.listed(name) for name in self.list_commands(ctx)])
        listing.format_commands(ctx, formatter)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstm-inspect")
def main() -> None:
    """Find the LSTM and GRU layers in a TensorFlow checkpoint or Keras file and explain their fused weights.

    PATH is a TF checkpoint (the prefix, its .index or .data-… file, or a directory with a
    `checkpoint` file), a Keras .h5 / .weights.h5, or a Keras 3 .keras file; a local path or a URL
    (s3://, gs://, http(s)://, any fsspec URL), of which only the bytes needed are fetched.
    TensorFlow is not needed.
    """


@main.lazy_command(
    _common,
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables."),
    epilog=_EPILOG_SUMMARY,
)
def summary(path: str, forget_bias: float | None, no_verify: bool, as_json: bool) -> None:
    """Every LSTM and GRU layer: sizes, gate order, how its fused tensors decompose, parameter counts;
    then the other variables, optimizer state and totals."""
    # A summary makes objects (some 3 per tensor) and no garbage: the collector would only walk
    # them, over and over as they grow (0.1-0.2 s at 100,000 tensors). The interpreter's exit
    # collects once more whatever the setting (Py_FinalizeEx), unless they are frozen out of its
    # sight first, which atexit's handlers run in time for.
    collecting = gc.isenabled()
    gc.disable()
    atexit.register(gc.freeze)
    try:
        with _errors():
            with _open(path, forget_bias, no_verify) as ckpt:
                result = ckpt.summary()
            _show(result, as_json)
    finally:
        if collecting:  # a caller in this process (CliRunner) gets its collector back
            gc.enable()


@main.lazy_command(
    _common,
    _layer_option,
    _gate_option,
    click.option(
        "--part",
        "parts",
        multiple=True,
        cls=_SchemaOption,
        type=_SchemaChoice(_part_names),
        metavar="PART",
        help_text=lambda: f"Only this part (repeatable): {', '.join(_part_names())}.",
    ),
    click.option(
        "--values",
        is_flag=True,
        help="Print every number too, none elided (6 significant digits; --json gives them exactly).",
    ),
    click.option(
        "--max-elements",
        type=click.IntRange(min=0),
        default=MAX_VALUES,
        show_default=True,
        metavar="N",
        help="With --values: refuse to print more than N numbers in all (for bulk values, use export).",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables."),
    click.option(
        "--sparkline/--no-sparkline",
        default=None,
        help="Below each layer, per gate a line of its units' weight norms in block characters "
        "(default: when stdout is a terminal, and not with --json or --values).",
    ),
    epilog=_EPILOG_SPLIT,
)
def split(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    layers: tuple[str, ...],
    gates: tuple[str, ...],
    parts: tuple[str, ...],
    values: bool,
    max_elements: int,
    as_json: bool,
    sparkline: bool | None,
) -> None:
    """Gate blocks: per gate where the framework stores it, and per part its shape, where it was cut
    from, mean, std, min, max and L2 norm; the forget gate's bias also with the runtime forget bias
    its cell adds. Printed a layer at a time, as read: one layer's tensors are in memory at a time."""
    if sparkline and (as_json or values):
        raise click.UsageError("--sparkline goes with the tables: not with --json or --values")
    with _errors():
        _one_blas_thread()
        with _open(path, forget_bias, no_verify) as ckpt:
            if sparkline or (sparkline is None and sys.stdout.isatty() and not (as_json or values)):
                from .render import show_split
                from .sparkline import with_sparklines

                stream, below = with_sparklines(ckpt.split(layers, gates, parts, values=True))
                show_split(stream, below=below)
            else:
                _show(ckpt.split(layers, gates, parts, values, max_elements), as_json)


@main.lazy_command(
    _common,
    click.option(
        "-o",
        "--output",
        type=_PATH,
        default=None,
        metavar="OUT",
        help="Output .npz (default: <input file name>.<layout>.npz in the current directory), or - for "
        "stdout; with --layout onnx, a name ending in .onnx writes a runnable ONNX model instead.",
    ),
    _layer_option,
    _gate_option,
    _layout_option,
    click.option(
        "--target-forget-bias",
        type=FINITE_FLOAT,
        default=None,
        metavar="FLOAT",
        help="With --layout tensorflow: the forget_bias the TF1 cell will add at run time "
        "(default 1.0, its own); the exported bias is adjusted for it.",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="Replace an existing file of the default output name (a file that -o names is always replaced).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Print nothing on success."),
    click.option("--json", "as_json", is_flag=True, help="Print what was written as one JSON object."),
    cls=_LazyEpilogCommand,
    epilog_from=_export_epilog,
)
def export(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    output: str | None,
    layers: tuple[str, ...],
    gates: tuple[str, ...],
    layout: str,
    target_forget_bias: float | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Write the LSTM and GRU layers' weights to an .npz file (atomically): the gate blocks, or in the
    layout of PyTorch, ONNX, Keras or TensorFlow; or one layer as an .onnx model."""
    with _errors():
        _one_blas_thread()
        from .errors import OutputError
        from .writers.output import default_output, output_format

        to_stdout = output == "-"
        if to_stdout and as_json:
            raise UsageError("--json prints to stdout, where -o - writes the .npz; give -o FILE.npz with --json")
        if output is not None and not to_stdout:
            output_format(output, layout)  # a name that cannot be written is refused before the input is read
        if to_stdout and sys.stdout.isatty():
            raise OutputError(
                "-o - writes the .npz to stdout, which is a terminal; redirect it (> out.npz) or give -o OUT.npz"
            )
        with _open(path, forget_bias, no_verify) as ckpt, _progress_bar(not quiet) as progress:
            options = {"layers": layers, "gates": gates, "target_forget_bias": target_forget_bias, "progress": progress}
            if to_stdout:
                with _stdout_binary() as stream:
                    result = ckpt.export(None, layout, stream=stream, **options)
            else:
                # A file -o names is replaced; a default name never replaces one, unless --force.
                target = default_output(ckpt.path, layout) if output is None else output
                result = ckpt.export(target, layout, replace=output is not None or force, **options)
        if as_json:
            _show(result, as_json=True)
        elif not quiet:
            where = "stdout" if to_stdout else os.path.abspath(result.path)
            if result.format == "onnx":
                node = f"bidirectional {result.cell} node" if result.directions == 2 else f"{result.cell} node"
                message = f"Wrote an ONNX model of {result.layers[0]} (one {node}) to {where}"
            else:
                size = result.bytes / 2**20
                message = f"Wrote {result.arrays:,} arrays ({size:.2f} MiB) for {_layer_list(result.layers)} to {where}"
            click.echo(safe(message), err=to_stdout)  # stdout holds the npz itself


def _layer_list(names: Sequence[str], shown: int = 4) -> str:
    """The layers a command wrote, by name; of many (a file of 6,000 layers), the count and the
    first and last few, in a line a person reads."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{len(names):,} layers ({', '.join(names[: shown - 1])}, …, {names[-1]})"


@contextmanager
def _stdout_binary() -> Iterator[IO[bytes]]:
    """stdout for binary output. When writing fails (a closed pipe: `| head`), stdout is pointed at
    /dev/null, so that Python's flush at exit does not report the same failure again as a traceback."""
    try:
        yield click.get_binary_stream("stdout")
    except BaseException:
        with suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        raise


@main.lazy_command(
    functools.partial(
        _common,
        verbose_help="Also print the frameworks' own logs (TensorFlow, oneDNN, torch warnings), hidden otherwise; "
        "for a URL, say how many requests and bytes crossed the network, per file.",
    ),
    _layer_option,
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the random input sequence (numpy's: 0 or more).",
    ),
    click.option(
        "--framework",
        "frameworks",
        multiple=True,
        metavar="NAME",
        help="Run only this framework's check (repeatable; the names are listed below); none for numpy's "
        "checks only (default: every installed one).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Show no progress bar."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table."),
    name="verify",
    cls=_LazyEpilogCommand,
    epilog_from=_verify_epilog,
)
def verify_command(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    layers: tuple[str, ...],
    seed: int,
    frameworks: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Run each layer over a seeded random input with the numpy cell on its split blocks, on every
    export layout read back, and with PyTorch, onnxruntime and Keras where installed; print the
    largest differences and exit 1 if any exceeds the tolerance for the weights' dtype. Of a whole
    file, the first 16 layers of each structure are run and the others only read; --layer runs
    every layer it names."""
    with _errors():
        chosen = None if not frameworks else [f for f in frameworks if f != "none"]
        meta = click.get_current_context().meta
        with (
            _open(path, forget_bias, no_verify) as ckpt,
            _framework_logs(meta),
            _progress_bar(not quiet, "verifying") as progress,
        ):
            result = ckpt.verify(layers, seed=seed, frameworks=chosen, progress=progress)
        _show(result, as_json)
        failures = result.failures()
        if failures:
            worst = "; ".join(
                f"{layer.name} {check.target} " + (check.error or f"{check.max_abs_diff:.1e} > {layer.tolerance:.1e}")
                for layer, check in failures[:3]
            )
            raise click.ClickException(safe(f"{len(failures)} check(s) exceed the tolerance: {worst}"))


_EPILOG_DIFF = """\b
Examples:
  lstm-inspect diff before.keras after.keras
  lstm-inspect diff model.ckpt model.h5 \\
      --map rnn/lstm_cell=enc
  lstm-inspect diff model.ckpt model.ckpt.gates.npz --json
  lstm-inspect diff a.ckpt b.ckpt --atol 1e-4 && echo same

Exit status: 0 when every layer matches and is equal within --atol/--rtol, 1 when not, 2 on errors.
"""


def _parse_mapping(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    from .diff import parse_mapping

    try:
        return parse_mapping(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _map_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--map", "mapping", multiple=True, metavar="A_NAME=B_NAME", callback=_parse_mapping, help=help)


@main.lazy_command(
    click.argument("a", metavar="A", type=_PATH),
    click.argument("b", metavar="B", type=_PATH),
    _map_option(
        "Pair layer (or bidirectional pair) A_NAME of A with B_NAME of B (repeatable); the rest pair "
        "by name, then in file order where their sizes agree."
    ),
    click.option("--atol", type=click.FloatRange(min=0), default=1e-6, show_default=True, help="Absolute tolerance."),
    click.option(
        "--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Relative tolerance (of |A|)."
    ),
    click.option(
        "--no-verify", is_flag=True, help="Do not check checksums (a TF checkpoint's CRC-32C, a .keras file's CRC-32)."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables."),
    name="diff",
    epilog=_EPILOG_DIFF,
)
def diff_command(
    a: str, b: str, mapping: dict[str, str], atol: float, rtol: float, no_verify: bool, as_json: bool
) -> None:
    """Compare the LSTM and GRU layers of two files (any formats) on their canonical gate blocks: per gate
    and part the largest |difference|, the relative change, the cosine similarity and the units
    that changed most; a verdict per layer."""
    try:
        with _errors():
            _one_blas_thread()
            from .diff import diff
            from .render import show

            with _open(a, None, no_verify) as ckpt_a, _open(b, None, no_verify) as ckpt_b:
                result = diff(ckpt_a, ckpt_b, mapping, atol=atol, rtol=rtol)
            show(result, as_json)  # type: ignore[arg-type]  # render.show takes every result with to_dict()
    except click.ClickException as e:
        e.exit_code = 2  # like cmp and diff: 1 says the files differ, so an error must say otherwise
        raise
    sys.exit(0 if result.equal else 1)


_EPILOG_PLOT = """\b
Examples:
  lstm-inspect plot model.ckpt -o gates.png
  lstm-inspect plot model.keras --layer enc \\
      --gate forget -o forget.svg
  lstm-inspect plot before.keras --diff after.keras \\
      -o change.pdf

Needs matplotlib: pip install 'lstm-inspect[plot]'.
"""


@main.lazy_command(
    _common,
    click.option(
        "-o",
        "--output",
        required=True,
        type=_PATH,
        help="The picture to write: a name ending in .png, .svg or .pdf (replaced atomically if it exists).",
    ),
    _layer_option,
    _gate_option,
    click.option(
        "--diff",
        "against",
        metavar="B",
        type=_PATH,
        default=None,
        help="Draw the change B − A of each layer instead (layers matched as `diff` matches them).",
    ),
    _map_option("With --diff: pair layer A_NAME of PATH with B_NAME of B (repeatable)."),
    click.option("--dpi", type=click.IntRange(20, 600), default=100, show_default=True, help="Pixels per inch."),
    click.option("-q", "--quiet", is_flag=True, help="Print nothing on success."),
    name="plot",
    epilog=_EPILOG_PLOT,
)
def plot_command(
    path: str,
    forget_bias: float | None,
    no_verify: bool,
    output: str,
    layers: tuple[str, ...],
    gates: tuple[str, ...],
    against: str | None,
    mapping: dict[str, str],
    dpi: int,
    quiet: bool,
) -> None:
    """Draw each layer's gates: heatmaps of every gate's input and recurrent kernels, a histogram
    of its weights, the bias and per-unit norms per gate; the halves of a bidirectional pair side
    by side. With --diff B, the change from PATH to B."""
    with _errors():
        if mapping and against is None:
            raise click.UsageError("--map applies to --diff only")
        _one_blas_thread()
        from .plot import output_format, plot, require_matplotlib

        output_format(output)
        require_matplotlib()  # said before any file is read
        with _open(path, forget_bias, no_verify) as ckpt:
            if against is None:
                result = plot(ckpt, output, layers, gates, dpi=dpi)
            else:
                with _open(against, forget_bias, no_verify) as other:
                    result = plot(ckpt, output, layers, gates, against=other, mapping=mapping, dpi=dpi)
        if not quiet:
            shrunk = ", downsampled for display" if result.downsampled else ""
            click.echo(
                safe(
                    f"Wrote {len(result.panels)} panels for {_layer_list(result.layers)} "
                    f"({result.width}×{result.height} px{shrunk}) to {os.path.abspath(output)}"
                )
            )


if __name__ == "__main__":
    main()
