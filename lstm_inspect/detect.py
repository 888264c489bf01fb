"""Layer detection: which stored tensors form a layer, and in which layout.

Works on names and shapes only (plus a Keras model config when the file has one), so it never
reads tensor data and never knows which file format the names came from. What a layer of each
layout looks like (its roles, their leaf names and shapes, its scope and config rules) is
declared in schema.py; this module only groups tensors by scope and asks each layout in turn.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from . import activations
from .errors import CorruptFile, warn
from .readers.base import LayerConfig, LayerHint, TensorInfo
from .records import record
from .schema import SOURCE_LAYOUTS, UNMODELLED, Layout, Setting, Unmodelled, explain, solve

# TF2 object-based checkpoints append this to every variable's object path
# (tensorflow/python/checkpoint/checkpoint.py, _OBJECT_ATTRIBUTES_NAME + VARIABLE_VALUE_KEY).
_TF2_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

# Optimizer slot names TF1 optimizers append (tensorflow/python/training/*.py: slot_creator
# names the slot after the optimizer: Adam, Adam_1, Momentum, RMSProp, RMSProp_1, ...).
_SLOT_LEAF = re.compile(
    r"^(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|AdagradDA_\d+|Adadelta|Adadelta_\d+|"
    r"Ftrl|Ftrl_\d+|ProximalAdagrad|Nadam|Nadam_\d+|Adamax|Adamax_\d+|ExponentialMovingAverage)$"
)
_OPTIMIZER_PREFIXES = ("optimizer_weights/", "optimizer/", "training/")
# A whole name component; "not after anything but /" rather than "(^|/)", which is tried as two
# branches at every position of every model tensor's name (a third slower).
_BOOKKEEPING_NAMES = (
    "global_step",
    r"beta1_power(?:_\d+)?",
    r"beta2_power(?:_\d+)?",
    "save_counter",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "iterations",
    "iter",
    "step",
    "seed_generator_state",
    "keras_api",
)
_BOOKKEEPING = re.compile(rf"(?<![^/])(?:{'|'.join(_BOOKKEEPING_NAMES)})(?:/|$)")
# What each of them starts with: a scope component that starts with none is none (str.startswith
# answers in a tenth of a regex search, for the thousands of scopes a file has).
_BOOKKEEPING_HEADS = tuple(re.match(r"\w*", name)[0] for name in _BOOKKEEPING_NAMES)  # type: ignore[index]

# The settings every layer has, and those it has only when the file says (TF1 LSTMCell's
# cell_clip, proj_clip: clip_by_value of the new cell state and of the projected output).
SETTINGS = ("forget_bias", "activation", "recurrent_activation")
CLIP_SETTINGS = ("cell_clip", "proj_clip")
# What to do about a setting the file does not say, added to the assumption's source.
_OVERRIDE = {"forget_bias": "pass --forget-bias if the cell was built otherwise"}
_NO_OVERRIDE = "a cell built otherwise says so only in its graph"

# Leaf names that span several name components ("Linear/Matrix", "projection/kernel", a gates export's
# "forget/kernel", TF 0.x GRUCell's "Gates/Linear/Matrix"): a scope all of whose leaves are such a
# leaf's last components belongs to the scope that many components above.
_LONG_LEAVES: set[str] = {
    leaf for layout in SOURCE_LAYOUTS for role in layout.roles for leaf in role.leaf_names if "/" in leaf
}
_LONGEST_LEAF = max(leaf.count("/") for leaf in _LONG_LEAVES)
# The components a long leaf starts with ("Linear", "Gates", "Gates/Linear"): the only heads to lift.
_LONG_HEADS = {leaf.rsplit("/", depth)[0] for leaf in _LONG_LEAVES for depth in range(1, leaf.count("/") + 1)}
# The last components of those: a scope ending in none of them has no head to lift.
_LONG_HEAD_ENDS = {head.rpartition("/")[2] for head in _LONG_HEADS}


@record
class LayerSpec:
    """One layer found in a file: its layout, sizes, where its tensors are, and what it computes."""

    name: str
    cell: str  # the class name: "(Basic)LSTMCell", "LSTMCell", "LSTM", "CuDNNLSTM", ...
    layout: Layout
    sizes: dict[str, int]  # "input", "units", "recurrent", and "projection" when it projects
    tensors: dict[str, TensorInfo]  # role key ("kernel", "recurrent_kernel", "w_f_diag", "W_i", ...) -> tensor
    # "forget_bias", "activation", "recurrent_activation" (and cell_clip, proj_clip where the file
    # says), each with where it was read or why assumed
    settings: dict[str, Setting]
    pair: str | None = None  # the bidirectional pair this layer belongs to
    direction: str | None = None  # "forward" / "backward" inside a pair
    # Settings the file says differently in different places: every reading, each naming its node.
    conflicts: dict[str, tuple[Setting, ...]] = field(default_factory=dict)

    @property
    def forget_bias(self) -> float:
        """What the cell adds to the forget gate at run time (0 for a cell kind without one)."""
        setting = self.settings.get("forget_bias")
        return 0.0 if setting is None else float(setting.value)  # type: ignore[arg-type]

    @property
    def activation(self) -> str:
        """The cell's activation ("tanh"), or "unknown" when nothing in the file says."""
        return str(self.settings["activation"].value)

    @property
    def recurrent_activation(self) -> str:
        return str(self.settings["recurrent_activation"].value)

    @property
    def activation_source(self) -> str:
        """ "config", "graph", "default" (the framework's own), or "unknown" when nothing says."""
        sources = [self.settings[s] for s in ("activation", "recurrent_activation")]
        # A fused op's attributes ("op attribute: …", "op: …") are the graph's too.
        for kind, starts in (("graph", ("graph", "op")), ("config", ("config",))):
            if any(setting.source.startswith(starts) and not setting.assumed for setting in sources):
                return kind
        return "unknown" if any(setting.value == "unknown" for setting in sources) else "default"

    @property
    def input_size(self) -> int:
        return self.sizes["input"]

    @property
    def units(self) -> int:
        return self.sizes["units"]

    @property
    def recurrent_size(self) -> int:
        return self.sizes["recurrent"]

    @property
    def projection_size(self) -> int | None:
        return self.sizes.get("projection")

    @property
    def params(self) -> int:
        return sum(t.size for t in self.tensors.values())

    @property
    def dtype(self) -> str:
        return next(iter(self.tensors.values())).dtype

    @property
    def peepholes(self) -> bool:
        return any(self.layout.role(key).part == "peephole" for key in self.tensors)


@dataclass(slots=True)
class Variable:
    """A stored tensor that is not part of an LSTM layer, with what it is."""

    info: TensorInfo
    category: str  # "model", "optimizer", "bookkeeping"


@record
class UnknownLayer:
    """A recurrent layer that no layout of this tool computes (a layer-norm or coupled-gate cell, a
    custom cell with weights of its own): listed with its tensors, never taken for an LSTM.

    name:    its scope.
    cell:    what the file says it is ("CoupledInputForgetGateLSTMCell", "RNN(MyCell)"), or None.
    why:     what about it no layout computes, for people.
    tensors: its stored tensors, in file order.
    explanations: per tensor name, what its shape is made of, where the cell is known well enough to say.
    """

    name: str
    cell: str | None
    why: str
    tensors: list[TensorInfo]
    explanations: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return sum(t.size for t in self.tensors)


@record
class Detection:
    layers: list[LayerSpec] = field(default_factory=list)
    unknown: list[UnknownLayer] = field(default_factory=list)
    # Every tensor, and the names the layers and unknown layers hold: what `variables` is made of.
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    # The tensors of each category ("model", "optimizer", "bookkeeping"), in file order; only model
    # tensors are ever a layer's.
    model: list[TensorInfo] = field(default_factory=list)
    slots: list[TensorInfo] = field(default_factory=list)
    kept: list[TensorInfo] = field(default_factory=list)

    @functools.cached_property
    def variables(self) -> list[Variable]:
        """Every tensor no layer holds, with what it is, in file order: made when first asked (a
        summary counts 100,000 of them without)."""
        categories = _category_names(self.model, self.slots, self.kept)
        return [Variable(info, categories[name]) for name, info in self.tensors.items() if name not in self.used]

    def variable_groups(self) -> tuple[list[TensorInfo], list[TensorInfo], list[TensorInfo]]:
        """The tensors no layer holds, as (model, optimizer, bookkeeping) lists in file order."""
        return [info for info in self.model if info.name not in self.used], self.slots, self.kept


def categorize(
    name: str,
    dtype: str,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    trainable: Collection[str] | None = None,
) -> str:
    """ "optimizer", "bookkeeping" or "model" for a tensor that is not part of an LSTM.

    shapes: every stored tensor's shape by name (the TF2 suffix undone): a tensor `X/<anything>`
    of X's shape is an optimizer slot, whatever the optimizer was called (slot_creator.py names a
    slot `<variable>/<optimizer name>`, `…_1` for the second).
    trainable: the model's variables as the file declares them (a TF graph's trainable_variables
    collection): never a slot, whatever their names.
    """
    shapes = shapes or {}
    info = TensorInfo(name, shapes.get(name.removesuffix(_TF2_VALUE_SUFFIX), ()), dtype)
    named = {other: TensorInfo(other, shape, "") for other, shape in shapes.items()}
    model, slots, kept = _categories({name: info}, named, trainable)
    return _category_names([info for info, _, _ in model], slots, kept)[name]


def _category_names(model: list[TensorInfo], slots: list[TensorInfo], kept: list[TensorInfo]) -> dict[str, str]:
    """Each tensor's category by its name, from the lists _categories makes."""
    found = dict.fromkeys((info.name for info in model), "model")
    found.update(dict.fromkeys((info.name for info in slots), "optimizer"))
    found.update(dict.fromkeys((info.name for info in kept), "bookkeeping"))
    return found


# A scope's facts (_scope_facts): the shapes of the tensors named as it and as each scope above it,
# and whether a component of it is a bookkeeping name.
_ScopeFacts = tuple[tuple[tuple[int, ...], ...], bool]


def _categories(
    tensors: Mapping[str, TensorInfo],
    named: Mapping[str, TensorInfo] | None = None,
    trainable: Collection[str] | None = None,
    joined: str | None = None,
) -> tuple[list[tuple[TensorInfo, str, str]], list[TensorInfo], list[TensorInfo]]:
    """categorize() of every tensor, as the model tensors, in order, each with its scope and leaf
    name (_split_leaf); the optimizer's tensors and the bookkeeping ones, in order. What a leaf name
    or a scope says is asked once: a file's 100,000 tensors have a handful of leaf names ("kernel",
    "Adam_1") and a few tensors per scope. named: the tensors by name without the TF2 suffix, where
    a scope's name is looked up (None: `tensors`' own)."""
    # What only a few names have is looked for in all of them at once, and then only in each name
    # when some has it: each name follows a "\n" in `joined` (a name holding one only makes a false hit).
    joined = _joined(tensors) if joined is None else joined
    optimizer_named = ".OPTIMIZER_SLOT" in joined or any("\n" + prefix in joined for prefix in _OPTIMIZER_PREFIXES)
    suffixed = _TF2_VALUE_SUFFIX in joined
    if named is None:
        named = {name.removesuffix(_TF2_VALUE_SUFFIX): info for name, info in tensors.items()} if suffixed else tensors
    model: list[tuple[TensorInfo, str, str]] = []
    slots: list[TensorInfo] = []
    kept: list[TensorInfo] = []
    slot, keep, place = slots.append, kept.append, model.append
    leaves: dict[str, tuple[bool, bool]] = {}  # leaf -> (an optimizer's slot name, a bookkeeping name)
    scopes: dict[str, _ScopeFacts] = {}
    for name, info in tensors.items():
        if optimizer_named and (name.startswith(_OPTIMIZER_PREFIXES) or ".OPTIMIZER_SLOT" in name):
            slot(info)
            continue
        base = name.removesuffix(_TF2_VALUE_SUFFIX) if suffixed else name
        if trainable is not None and base in trainable:
            if info.dtype == "string":
                keep(info)
            else:
                place((info, *_split_leaf(name)))
            continue
        # _split_leaf's, the scope made only for a tensor that is no slot by its leaf name.
        cut = base.rfind("/")
        leaf = base[cut + 1 :]
        said = leaves.get(leaf)
        if said is None:
            said = leaves[leaf] = (_SLOT_LEAF.match(leaf) is not None, _BOOKKEEPING.search(leaf) is not None)
        if said[0]:
            slot(info)
            continue
        above: tuple[tuple[int, ...], ...] = ()
        scope, in_kept = "", False
        if cut >= 0:
            scope = base[:cut]
            above, in_kept = scopes.get(scope) or _scope_facts(scope, scopes, named)
        if above and info.shape in above:
            slot(info)
        elif info.dtype == "string" or said[1] or in_kept:
            keep(info)
        else:
            place((info, scope, leaf))
    return model, slots, kept


def _joined(tensors: Iterable[str]) -> str:
    """The names, each after a "\n": one string to search for what few names hold."""
    return "\n" + "\n".join(tensors)


def _scope_facts(scope: str, scopes: dict[str, _ScopeFacts], named: Mapping[str, TensorInfo]) -> _ScopeFacts:
    """What a scope says of the tensors in it, kept in `scopes` for it and each scope above it: the
    shapes of the tensors named as it and as each scope above it, any of which a tensor in it that
    is an optimizer slot has; and whether a component of it is a bookkeeping name. Made from the
    nearest scope above that is known, so that each is made once."""
    missing = []
    above = scope
    while above not in scopes:
        missing.append(above)
        cut = above.rfind("/")
        if cut < 0:
            facts: _ScopeFacts = ((), False)
            break
        above = above[:cut]
    else:
        facts = scopes[above]
    for name in reversed(missing):
        # A component is a bookkeeping name followed by "/" exactly when it is one inside a tensor's name.
        component = name[name.rfind("/") + 1 :]
        kept = facts[1] or (
            component.startswith(_BOOKKEEPING_HEADS) and _BOOKKEEPING.search(component + "/") is not None
        )
        info = named.get(name)  # a scope that is a tensor's name too (a variable, its slots below it)
        facts = scopes[name] = ((info.shape, *facts[0]) if info is not None else facts[0], kept)
    return facts


def _split_leaf(name: str) -> tuple[str, str]:
    """(scope, last name component) for a model tensor name, the TF2 object-checkpoint suffix undone."""
    scope, _, leaf = name.removesuffix(_TF2_VALUE_SUFFIX).rpartition("/")
    return scope, leaf


def _lift_long_leaves(scopes: dict[str, dict[str, TensorInfo]], asked: _Asked) -> dict[str, dict[str, TensorInfo]]:
    """Scopes whose every leaf, after the scope's last components, is a long leaf, merged into the
    scope above them when some layout then claims it whole. All or none, and only then: a TF2 object
    checkpoint's `X/cell` holds kernel, recurrent_kernel and bias, and a TF1 cell may live in a
    scope named `cell`, while `cell/kernel` and `cell/bias` are long leaves of the gates export.
    Scopes above are tried first, so that TF 0.x `GRUCell/Gates/Linear` joins `GRUCell` (as
    `Gates/Linear/Matrix`), not `GRUCell/Gates` (as the `Linear/Matrix` of a TF 0.x LSTM)."""
    # parent -> [(scope below it, the components between them)], for every depth that fits.
    children: dict[str, list[tuple[str, str]]] = {}
    for scope, leaves in scopes.items():
        if scope[scope.rfind("/") + 1 :] not in _LONG_HEAD_ENDS:
            continue
        components = scope.split("/")
        for depth in range(1, min(_LONGEST_LEAF, len(components)) + 1):
            head = "/".join(components[-depth:])
            if head in _LONG_HEADS and all(f"{head}/{leaf}" in _LONG_LEAVES for leaf in leaves):
                children.setdefault("/".join(components[:-depth]), []).append((scope, head))
    lifted_into: dict[str, tuple[str, str]] = {}
    for parent in sorted(children, key=lambda name: name.count("/") if name else -1):
        below = [(scope, head) for scope, head in children[parent] if scope not in lifted_into]
        merged = dict(scopes.get(parent, {}))
        for scope, head in below:
            merged.update({f"{head}/{leaf}": info for leaf, info in scopes[scope].items()})
        if below and asked.claims(merged):
            lifted_into.update((scope, (parent, head)) for scope, head in below)
    result: dict[str, dict[str, TensorInfo]] = {}
    for scope, leaves in scopes.items():
        into = lifted_into.get(scope)
        if into is None:
            result.setdefault(scope, {}).update(leaves)
        else:
            parent, head = into
            result.setdefault(parent, {}).update({f"{head}/{leaf}": info for leaf, info in leaves.items()})
    return result


def detect(
    tensors: dict[str, TensorInfo],
    configs: dict[str, LayerConfig] | None = None,
    forget_bias: float | None = None,
    hints: dict[str, LayerHint] | None = None,
    trainable: Collection[str] | None = None,
    unsaid: str | None = None,
    where: str = "",
) -> Detection:
    """Find every LSTM layer among `tensors`, and the recurrent layers no layout computes.

    configs: per layer scope, what a Keras model config says (class, units, activations).
    forget_bias: overrides the runtime forget bias of every layer (None: what the file says, else
    each layout's default).
    hints: per layer scope, what the file says beside the weights (readers' layer_hints()).
    trainable: the model's variables as the file declares them (None: it does not say).
    unsaid: why the file does not say what it does not ("no graph beside the checkpoint"), added
    to the source of every setting assumed for want of it.
    where: the file, for messages (a setting the file says two ways). Raises CorruptFile when a
    config and the weights it describes disagree on a layer's sizes.
    """
    configs = configs or {}
    hints = hints or {}
    trainable = None if trainable is None else set(trainable)
    joined = _joined(tensors)
    placed, slots, kept = _categories(tensors, None, trainable, joined)
    model = [info for info, _, _ in placed]
    result = Detection()
    asked = _Asked(joined)
    result.unknown = _unmodelled(model, (scope for _, scope, _ in placed), asked)
    used: set[str] = {t.name for layer in result.unknown for t in layer.tensors}
    scopes: dict[str, dict[str, TensorInfo]] = {}
    for info, scope, leaf in placed:
        if info.name not in used:
            scopes.setdefault(scope, {})[leaf] = info
    scopes = _lift_long_leaves(scopes, asked)

    for scope, leaves in scopes.items():
        spec = _detect_scope(scope, leaves, configs, hints, asked, unsaid, where)
        if spec is None:
            continue
        if forget_bias is not None and spec.layout.cell.forget_gate is not None:
            spec.settings["forget_bias"] = Setting(float(forget_bias), "--forget-bias")
            spec.conflicts.pop("forget_bias", None)
        for setting, readings in spec.conflicts.items():
            _warn_conflict(where, spec.name, setting, readings)
        result.layers.append(spec)
        used.update(t.name for t in spec.tensors.values())
    result.unknown += _not_understood(model, configs, used, {layer.name for layer in result.layers})
    used.update(t.name for layer in result.unknown for t in layer.tensors)
    _pair_directions(result.layers)
    result.layers = _forward_first(result.layers)
    result.tensors, result.used = tensors, used
    result.model, result.slots, result.kept = model, slots, kept
    return result


def _under(scope: str, infos: list[TensorInfo]) -> list[TensorInfo]:
    """The tensors in `scope` or any scope below it, in file order."""
    return [info for info in infos if _split_leaf(info.name)[0] == scope or info.name.startswith(scope + "/")]


def _unmodelled(model: list[TensorInfo], scopes: Iterable[str], asked: _Asked) -> list[UnknownLayer]:
    """Scopes of the cells schema.UNMODELLED names (by the scope name each gives itself), with every
    tensor in or below them: what each holds, said by its declaration, never claimed by a layout.
    scopes: the model tensors' scopes, in file order."""
    patterns = [
        (cell, _pattern(cell.layout.scope_required))
        for cell in UNMODELLED
        if cell.layout.scope_required is not None and asked.possible(cell.layout.scope_required)
    ]
    if not patterns:  # what nearly every file says: no name of it holds such a cell's scope name
        return []
    scopes = dict.fromkeys(scopes)
    # The cell whose scope a name is, per name asked: scopes share the names above them.
    cell_of: dict[str, Unmodelled | None] = {}
    tops: dict[str, tuple[str, Unmodelled] | None] = {}
    for scope in scopes:
        # The cell's own scope may sit above the tensor's (LayerNormBasicLSTMCell's input/gamma):
        # the scope, then each name above it, the nearest first.
        tops[scope] = None
        above = scope
        for _ in range(scope.count("/") + 1):
            if above not in cell_of:
                cell_of[above] = next((cell for cell, pattern in patterns if pattern.search(above)), None)
            cell = cell_of[above]
            if cell is not None:
                tops[scope] = (above, cell)
                break
            above = above.rpartition("/")[0]
    found: dict[str, UnknownLayer] = {}
    for top in tops.values():
        if top is not None and top[0] not in found:
            name, cell = top
            found[name] = _described(name, cell.name, cell.why, _under(name, model), cell.layout)
    return list(found.values())


def _described(name: str, cell: str | None, why: str, tensors: list[TensorInfo], layout: Layout | None) -> UnknownLayer:
    """An UnknownLayer, each tensor explained by `layout` where its roles and shapes say."""
    unknown = UnknownLayer(name, cell, why, tensors)
    if layout is None:
        return unknown
    leaves = {info.name[len(name) + 1 :]: info for info in tensors}
    claimed = {role.key: leaves[leaf] for role in layout.roles for leaf in role.leaf_names if leaf in leaves}
    sizes = solve(layout, {key: info.shape for key, info in claimed.items()})
    if sizes is not None:
        unknown.explanations = {info.name: explain(layout, layout.role(key), sizes) for key, info in claimed.items()}
    return unknown


def _recurrent_config(config: LayerConfig) -> bool:
    """Whether a config's class is one some layout takes (LSTM, ConvLSTM2D, RNN(LSTMCell), ...) or a
    Keras RNN of any cell ("RNN(MyCell)", a stacked RNN's cell): a layer that computes a recurrence."""
    name = config.class_name
    return name.startswith("RNN(") or any(
        layout.config_class is not None and re.search(layout.config_class, name) for layout in SOURCE_LAYOUTS
    )


def _not_understood(
    model: list[TensorInfo], configs: dict[str, LayerConfig], used: set[str], layers: set[str]
) -> list[UnknownLayer]:
    """Recurrent layers a config names whose tensors no layout claimed, with what keeps each out."""
    free = [info for info in model if info.name not in used]
    found = []
    for scope, config in configs.items():
        if scope in layers or not _recurrent_config(config):
            continue
        tensors = _under(scope, free)
        if tensors:
            found.append(_described(scope, config.class_name, _why_not(scope, config, tensors), tensors, None))
    return found


def _why_not(scope: str, config: LayerConfig, tensors: list[TensorInfo]) -> str:
    """Why the layouts that take this config's class claim none of its tensors."""
    leaves = {info.name[len(scope) + 1 :]: info for info in tensors}
    for layout in SOURCE_LAYOUTS:
        if layout.config_class is None or not re.search(layout.config_class, config.class_name):
            continue
        needed = [role for role in layout.roles if not role.optional]
        if all(any(leaf in leaves for leaf in role.leaf_names) for role in needed):
            known = {leaf for role in layout.roles for leaf in role.leaf_names}
            extra = [leaf for leaf in leaves if leaf not in known]
            if extra:
                return (
                    f"besides an LSTM's {', '.join(r.key for r in layout.roles)} it holds {', '.join(extra)}, "
                    "which no LSTM layout computes with"
                )
            return "its tensors' shapes fit no LSTM layout (" + _shapes(tensors) + ")"
    return "its tensors are no LSTM's (" + _shapes(tensors) + ")"


def _shapes(tensors: list[TensorInfo]) -> str:
    return ", ".join(f"{info.name.rpartition('/')[2]} {list(info.shape)}" for info in tensors)


def _layer_name(scope: str) -> str:
    # TF2 object checkpoints of Keras layers keep the weights on the layer's `cell` object.
    return scope[: -len("/cell")] if scope.endswith("/cell") else scope


def _detect_scope(
    scope: str,
    leaves: dict[str, TensorInfo],
    configs: dict[str, LayerConfig],
    hints: dict[str, LayerHint],
    asked: _Asked,
    unsaid: str | None = None,
    where: str = "",
) -> LayerSpec | None:
    """The first source layout (schema.SOURCE_LAYOUTS' order) whose roles are every tensor of the
    scope, whose shapes solve for the layer's sizes and whose scope and config rules hold."""
    name = _layer_name(scope)
    config = _cell_config(configs.get(name))
    for claim in asked.claims(leaves):
        layout = claim.layout
        # Every rule must hold; the one that fails for most scopes is asked first.
        if claim.never or (claim.required is not None and not claim.required(scope)):
            continue
        if claim.foreign is not None and claim.foreign(scope):
            continue
        if config is not None and not (layout.config_class and _pattern(layout.config_class).search(config.class_name)):
            continue
        if claim.pattern is not None and not claim.pattern(scope):
            continue
        tensors = {key: leaves[leaf] for key, leaf in claim.roles}
        sizes = asked.solve(layout, tuple((key, info.shape) for key, info in tensors.items()))
        if sizes is None:
            continue
        if config is not None:
            _check_config_sizes(layout, name, config, sizes, tensors, where)
        hint = hints.get(scope) or hints.get(name)
        if config is not None and layout.cell_from_config:
            cell = config.class_name
        elif hint is not None and hint.cell:
            cell = hint.cell  # the class the graph shows (BasicLSTMCell, LSTMBlockFusedCell, …)
        else:
            cell = claim.cell_name
        if config is None and hint is None:  # what the layout says alone: the same for each such layer
            settings, conflicts = dict(asked.settings(layout, unsaid)), {}
        else:
            settings = _settings(layout, name, config, hint, unsaid)
            conflicts = {
                name: readings
                for name, readings in (hint.conflicts.items() if hint is not None else ())
                if name in layout.cell.settings or name in CLIP_SETTINGS
            }
        return LayerSpec(name, cell, layout, sizes, tensors, settings, None, None, conflicts)
    return None


@dataclass(frozen=True, slots=True)
class _Claim:
    """A layout whose roles are a scope's leaf names: (role key, leaf name) in role order, whether a
    present role is evidence, and the cell name those roles make."""

    layout: Layout
    roles: tuple[tuple[str, str], ...]
    evidence: bool
    cell_name: str
    # The layout's scope rules as this file's scopes are searched: None where a rule is not searched
    # (it has none, or it needs text no name of the file holds); `never` where no scope can pass them.
    required: Callable[[str], object] | None = None
    foreign: Callable[[str], object] | None = None
    pattern: Callable[[str], object] | None = None
    never: bool = False


class _Asked:
    """What the layouts say of leaf names and shapes, each question answered once per detection: a
    file's thousands of layers are a handful of distinct leaf-name sets and shapes, and neither the
    claiming (names only) nor the solving (shapes only) depends on anything else."""

    def __init__(self, names: str = "") -> None:
        self._claims: dict[frozenset[str], list[_Claim]] = {}
        self._sizes: dict[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], dict[str, int] | None] = {}
        self._names = names  # every tensor name of the file, one a line
        self._possible: dict[str, bool] = {}
        self._lower: str | None = None
        self._settings: dict[tuple[str, str | None], dict[str, Setting]] = {}

    def settings(self, layout: Layout, unsaid: str | None) -> dict[str, Setting]:
        """_settings of a layer of `layout` that has no config and no hint (do not change it: copy it)."""
        key = (layout.key, unsaid)
        found = self._settings.get(key)
        if found is None:
            found = self._settings[key] = _settings(layout, "", None, None, unsaid)
        return found

    def possible(self, expression: str) -> bool:
        """Whether some scope of the file's names may match `expression` (False: none does)."""
        found = self._possible.get(expression)
        if found is None:
            texts, ignore_case = _required_text(expression)
            names = self._names
            if ignore_case and names.isascii() and all(text.isascii() for text in texts):
                # ASCII's cases are one to one: lower-case both (sre, ignoring case, tries every position).
                texts, names = tuple(text.lower() for text in texts), self._lowered()
            elif ignore_case:
                names = ""  # other cases fold otherwise (U+017F is an "s" to sre): every scope is searched
            found = self._possible[expression] = not texts or not names or any(text in names for text in texts)
        return found

    def _lowered(self) -> str:
        if self._lower is None:
            self._lower = self._names.lower()
        return self._lower

    def claims(self, leaves: Collection[str]) -> list[_Claim]:
        """Each source layout, in order, whose roles are these leaf names."""
        names = frozenset(leaves)
        found = self._claims.get(names)
        if found is None:
            found = self._claims[names] = [
                self._ruled(layout, roles, any(layout.role(key).evidence for key, _ in roles))
                for layout in SOURCE_LAYOUTS
                if (roles := _claim(layout, names)) is not None
            ]
        return found

    def _ruled(self, layout: Layout, roles: tuple[tuple[str, str], ...], evidence: bool) -> _Claim:
        """A claim with the searches its scope rules need in this file."""
        required, foreign = layout.scope_required, layout.cell.foreign_scope
        pattern = None if evidence else layout.scope_pattern
        return _Claim(
            layout,
            roles,
            evidence,
            layout.cell_name({key for key, _ in roles}),
            _pattern(required).search if required is not None and self.possible(required) else None,
            _pattern(foreign).search if foreign is not None and self.possible(foreign) else None,
            _pattern(pattern).search if pattern is not None and self.possible(pattern) else None,
            any(rule is not None and not self.possible(rule) for rule in (required, pattern)),
        )

    def solve(self, layout: Layout, shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> dict[str, int] | None:
        """schema.solve of (role key, shape) pairs, a fresh dict for each layer."""
        key = (layout.key, shapes)
        if key not in self._sizes:
            self._sizes[key] = solve(layout, dict(shapes))
        sizes = self._sizes[key]
        return None if sizes is None else dict(sizes)


@functools.cache
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


@functools.cache
def _required_text(expression: str) -> tuple[tuple[str, ...], bool]:
    """Text every match of `expression` holds, as alternatives one of which it holds (the longest
    run of characters it spells out, or a group's alternatives); () where none is found. And
    whether the expression ignores case. Where none of them is in any of a file's names, no
    scope of the file matches: one look at all the names answers for its thousands of scopes."""
    try:
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:  # Python 3.10
        import sre_parse as _parser  # type: ignore[no-redef]

    def needed(items: Iterable[tuple[object, object]]) -> list[str]:
        items = list(items)
        runs, run = [], ""
        for op, value in items:
            if op is _parser.LITERAL:
                run += chr(value)  # type: ignore[arg-type]
            else:
                runs.append(run)
                run = ""
        longest = max([*runs, run], key=len)
        if longest:
            return [longest]
        for op, value in items:
            found: list[str] = []
            if op is _parser.SUBPATTERN and not any(value[1:3]):  # type: ignore[index]
                found = needed(value[3])  # type: ignore[index]  # a group; one with flags of its own is not read
            elif op is _parser.BRANCH:
                alternatives = [needed(branch) for branch in value[1]]  # type: ignore[index]
                found = [text for texts in alternatives for text in texts] if all(alternatives) else []
            if found:
                return found
        return []

    return tuple(needed(_parser.parse(expression))), bool(re.compile(expression).flags & re.IGNORECASE)


def _check_config_sizes(
    layout: Layout, name: str, config: LayerConfig, sizes: dict[str, int], tensors: dict[str, TensorInfo], where: str
) -> None:
    """Refuse a layer whose model config says another size than its weights hold: one of the two is
    not what was saved together, and any number read from them would be wrong."""
    for size, places in layout.config_sizes.items():
        for key, index in places:
            value = config.config.get(key)
            if index is not None:
                value = value[index] if isinstance(value, list) and index < len(value) else None
            if isinstance(value, int) and not isinstance(value, bool):
                if value != sizes.get(size):
                    shapes = ", ".join(f"{role} {list(info.shape)}" for role, info in tensors.items())
                    said = key if index is None else f"{key}[{index}]"
                    raise CorruptFile(
                        f"{where + ': ' if where else ''}layer {name!r}: the model config says {said} = {value}, "
                        f"but its weights hold {sizes.get(size)} ({shapes}); the config and the weights do "
                        "not belong together, re-save the model"
                    )
                break


def _cell_config(config: LayerConfig | None) -> LayerConfig | None:
    """For a Keras RNN(cell) layer, its cell's config (class GRUCell, LSTMCell: what it computes);
    any other config as it is."""
    cell = config.config.get("cell") if config is not None else None
    if config is None or not isinstance(cell, dict):
        return config
    inner, class_name = cell.get("config"), cell.get("class_name")
    if not isinstance(inner, dict) or not isinstance(class_name, str):
        return config
    return LayerConfig(class_name, inner, config.keras_version)


def _claim(layout: Layout, leaves: Collection[str]) -> tuple[tuple[str, str], ...] | None:
    """(role key, leaf name) pairs, in the layout's role order, when every leaf name of the scope is
    one of the layout's roles and every role it must have is there; None otherwise (a cell with
    weights of its own is no plain LSTM)."""
    roles: list[tuple[str, str]] = []
    for role in layout.roles:
        found = [leaf for leaf in role.leaf_names if leaf in leaves]
        if len(found) > 1:
            return None
        if found:
            roles.append((role.key, found[0]))
        elif not role.optional:
            return None
    return tuple(roles) if len(roles) == len(leaves) else None


# The settings that name an activation function, which Keras 3 spells otherwise than Keras 2 (activations.py).
_ACTIVATIONS = ("activation", "recurrent_activation")


def _settings(
    layout: Layout, name: str, config: LayerConfig | None, hint: LayerHint | None, unsaid: str | None = None
) -> dict[str, Setting]:
    """What the layer computes, each setting from the first that says: the file beside the weights
    (a graph), what the cell fixes, the model config, the layout's default (an assumption, whose
    source says why the file does not say and how to override it). Clips only where the file
    says. A setting the file says two ways is the first reading, marked assumed, naming them all."""
    settings: dict[str, Setting] = {}
    for setting in layout.cell.settings:
        keys = layout.config_keys.get(setting, ())
        default = layout.defaults.get(setting)
        if hint is not None and setting in hint.settings:
            settings[setting] = hint.settings[setting]
        elif hint is not None and setting in hint.conflicts:
            settings[setting] = _disputed(setting, hint.conflicts[setting])
        elif setting in layout.fixed:
            settings[setting] = layout.fixed[setting]
        elif config is not None and keys:
            stored = next((config.config[key] for key in keys if key in config.config), None)
            value = stored if stored is not None else (default.value if default else "unknown")
            if setting in _ACTIVATIONS:
                value = activations.from_keras(value, config.keras_version)
            settings[setting] = Setting(value, f"config: {name}")
        elif keys:
            settings[setting] = Setting("unknown", "the file has no model config to say")
        elif default is not None:
            settings[setting] = _assumed(setting, default, unsaid)
        else:
            settings[setting] = Setting(layout.forget_bias, f"{layout.framework_name} adds none at run time")
    for setting in CLIP_SETTINGS:
        if hint is not None and setting in hint.settings:
            settings[setting] = hint.settings[setting]
        elif hint is not None and setting in hint.conflicts:
            settings[setting] = _disputed(setting, hint.conflicts[setting])
    return settings


def _assumed(setting: str, default: Setting, unsaid: str | None) -> Setting:
    if unsaid is None or not default.assumed:
        return default
    return Setting(default.value, f"{default.source}: {unsaid}; {_OVERRIDE.get(setting, _NO_OVERRIDE)}", True)


def _disputed(setting: str, readings: tuple[Setting, ...]) -> Setting:
    said = ", ".join(f"{_shown(r.value)} ({r.source})" for r in readings)
    return Setting(
        readings[0].value,
        f"the file says {len(readings)} values: {said}; the first assumed, {_OVERRIDE.get(setting, _NO_OVERRIDE)}",
        assumed=True,
    )


def _shown(value: object) -> str:
    return "none" if value is None else str(value)


def _warn_conflict(where: str, layer: str, setting: str, readings: tuple[Setting, ...]) -> None:
    said = " and ".join(f"{_shown(r.value)} ({r.source})" for r in readings)
    advice = "; pass --forget-bias to say which" if setting in _OVERRIDE else ""
    warn(
        f"{where + ': ' if where else ''}layer {layer!r}: the graph gives its {setting.replace('_', ' ')} "
        f"{len(readings)} values, {said}; lstm-inspect assumes {_shown(readings[0].value)}, the first{advice}"
    )


_TF_DIRECTION = re.compile(r"^(?:(?P<prefix>.*)/)?(?P<dir>fw|bw)/(?P<rest>.+)$")
# Keras halves are `bi/forward`, `bi/backward` (TF2 object checkpoints: forward_layer, backward_layer),
# and what a half holds below it (a stacked RNN's cells: `bi/forward/cell_0`) pairs by the same path.
_KERAS_DIRECTION = re.compile(r"^(?P<prefix>.+?)/(?P<dir>forward|backward)(_layer)?(?:/(?P<rest>.+))?$")


def _pair_directions(layers: list[LayerSpec]) -> None:
    """Mark the halves of bidirectional pairs (Keras `bi/forward` and `bi/backward`, or
    `bi/forward/cell_0` and `bi/backward/cell_0`, the pair `bi/cell_0`; TF
    `bidirectional_rnn/fw/<cell>` and `…/bw/<cell>`, the pair named after the enclosing scope)."""
    halves: dict[str, list[tuple[LayerSpec, str]]] = {}
    for layer in layers:
        match = _KERAS_DIRECTION.match(layer.name)
        if match:
            pair = "/".join(p for p in (match.group("prefix"), match.group("rest")) if p)
            direction = match.group("dir")
        else:
            match = _TF_DIRECTION.match(layer.name)
            if not match:
                continue
            # Cells nested below fw/ (a MultiRNNCell's cell_N) pair with the same path below bw/.
            inner = match.group("rest").rpartition("/")[0]
            pair = "/".join(p for p in (match.group("prefix"), inner) if p) or "bidirectional"
            direction = "forward" if match.group("dir") == "fw" else "backward"
        halves.setdefault(pair, []).append((layer, direction))
    for pair, members in halves.items():
        if sorted(d for _, d in members) == ["backward", "forward"]:
            for layer, direction in members:
                layer.pair, layer.direction = pair, direction


def _forward_first(layers: list[LayerSpec]) -> list[LayerSpec]:
    """File order, except that a pair's halves are listed together, forward then backward, where
    its first half is: a TF checkpoint lists `bw` before `fw` (its keys are sorted), a stacked
    bidirectional RNN every forward cell before the backward ones."""
    pairs: dict[str, list[LayerSpec]] = {}
    for layer in layers:
        if layer.pair is not None:
            pairs.setdefault(layer.pair, []).append(layer)
    ordered: list[LayerSpec] = []
    for layer in layers:
        if layer.pair is None:
            ordered.append(layer)
        elif layer.pair in pairs:
            ordered += sorted(pairs.pop(layer.pair), key=lambda half: half.direction != "forward")
    return ordered
