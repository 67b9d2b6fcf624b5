"""The whole experiment, built without training: what ``validate``, ``show``, ``train``
(before any run folder exists) and ``sweep`` (for every grid point) all check, so that
"validate says ok" and "train can start" are the same fact.

:func:`plan_experiment` describes the data (cheaply: MNIST and the scikit-learn sets by
heart, a CSV file by reading it), works out every layer's output shape and parameter
count without allocating a weight, checks that the loss, the data's task and the output
width fit together, builds the optimizer and its schedule with every option, and
estimates the memory training will take. Every mistake becomes one line naming the
file, the line, the key path, the bad value and what was expected; all of them are
collected (:class:`~scratchnet.errors.ConfigErrors`), the first is the message.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import partial

from ..config import ExperimentConfig
from ..config.loading import data_file_mistake
from ..data import Description, describe_dataset, sequence_shape_of, split_indices
from ..data.bundled import READ_WITHOUT_SKLEARN, SHAPES
from ..errors import ConfigError, ConfigErrors, ShapeError
from ..nn import DTYPES, NeuralNetwork, Schedule, SoftmaxCrossEntropy
from ..nn.metrics import TEXT_METRICS, recorded_metrics
from .build import build_layer, build_loss, build_network, build_optimizer, data_options
from .fit_data import check_sequences, with_data_sizes

#: the share of the machine's memory an experiment may plan to use
MEMORY_SHARE = 0.8
#: rows evaluated at once (:func:`scratchnet.nn.evaluate`'s batch)
EVAL_BATCH = 2048
_MIB, _GIB = 1 << 20, 1 << 30
#: what a training process holds before it reads any data: Python, NumPy, the engine
#: and the command line; and what importing scikit-learn adds to it, which reads most of
#: the bundled sets (measured by benchmarks/memory.py, as is the factor below)
PROCESS_BYTES, SKLEARN_BYTES = 57 * _MIB, 150 * _MIB
_SKLEARN_READS = set(SHAPES) - set(READ_WITHOUT_SKLEARN)
#: the data sets of 8-bit images, kept a byte a value (scaled batch by batch)
BYTE_SETS = ("mnist", "fashion_mnist")
#: a pass's working memory over the activations its layers keep: the temporaries that
#: make them (a convolution's columns, BLAS's packing buffers) and the allocator's slack
WORKING_FACTOR = 2.3


@dataclass
class Plan:
    """What an experiment will be, before it runs."""

    cfg: ExperimentConfig
    data: Description | None = None
    n_train: int = 0
    n_val: int = 0
    input_shape: tuple = ()
    targets: str = ""
    #: one row per layer: index, description, output shape, parameter count
    layers: list[dict] = field(default_factory=list)
    n_params: int = 0
    #: estimated bytes, by part ("process", "data", "parameters", "activations") and "total"
    memory: dict = field(default_factory=dict)
    #: the learning rate by epoch (None when the optimizer is wrong)
    schedule: Schedule | None = None
    #: what the data gives an ``auto`` option (:func:`~scratchnet.experiment.build.
    #: data_sizes`): build the network with them
    sizes: dict = field(default_factory=dict)


class _Mistakes:
    """Collects one located line per mistake."""

    def __init__(self, cfg: ExperimentConfig):
        self.origin = cfg.origin
        self.lines: list[str] = []

    def add(self, loc: tuple, message: str) -> None:
        self.lines.append(self.origin.message(loc, message))

    def run(self, loc: tuple, make, *args):
        """``make(*args)``, or None after recording its ConfigError/ShapeError at ``loc``
        followed by the key the error names (relative to what ``make`` was given)."""
        try:
            return make(*args)
        except (ConfigError, ShapeError) as e:
            self.add(tuple(loc) + getattr(e, "key", ()), str(e))
            return None


def plan_experiment(cfg: ExperimentConfig, data_dir: str | None = None,
                    description: Description | None = None,
                    schedule_epochs: int | None = None) -> Plan:
    """Build ``cfg`` without training it; raise :class:`~scratchnet.errors.ConfigErrors`
    listing every mistake (a broken data file is a DataError, as when training).
    ``description`` skips describing the data again (a sweep's grid points share it);
    ``schedule_epochs`` lays the schedule over other epochs than the run's (a run that
    extends another keeps that one's)."""
    mistakes = _Mistakes(cfg)
    plan = Plan(cfg)
    layers = [mistakes.run(("model", "layers", i), build_layer, layer)
              for i, layer in enumerate(cfg.model.layers)]
    loss = mistakes.run(("model", "loss"), build_loss, cfg)
    net = None
    if loss is not None and all(layer is not None for layer in layers):
        net = mistakes.run((), partial(build_network, layers=layers, loss=loss), cfg)
    optimizer = mistakes.run((), build_optimizer, cfg, schedule_epochs)
    if optimizer is not None:
        plan.schedule = optimizer.schedule(schedule_epochs or cfg.train.epochs)
    plan.data = description or _describe(cfg, data_dir, mistakes)
    if plan.data is not None:
        _plan_monitor(cfg, plan.data, mistakes)
        _plan_rows(cfg, plan, mistakes)
        if net is not None:
            net = with_data_sizes(cfg, net, plan, mistakes)
        if net is not None:
            _plan_network(cfg, net, plan, mistakes)
            _plan_memory(cfg, net, optimizer, plan, mistakes)
    if mistakes.lines:
        raise ConfigErrors(mistakes.lines)
    return plan


def _describe(cfg: ExperimentConfig, data_dir: str | None,
              mistakes: _Mistakes) -> Description | None:
    mistake = data_file_mistake(cfg)  # a file the config names must be there
    if mistake is not None:
        mistakes.add(mistake.key, str(mistake))
        return None
    return mistakes.run(("data",), partial(describe_dataset, cfg.data.dataset,
                                           **data_options(cfg, data_dir)))


def _plan_monitor(cfg: ExperimentConfig, data: Description, mistakes: _Mistakes) -> None:
    """What early stopping monitors (and the plateau schedule watches) is a value every
    evaluation of this run records."""
    monitor = getattr(cfg.train.early_stopping, "monitor", "val_loss")
    recorded = recorded_metrics(data.task, text=data.targets == "ids")
    if monitor not in recorded:
        text = " (bits_per_char and perplexity: a character model's)" \
            if monitor in TEXT_METRICS else ""
        mistakes.add(("train", "early_stopping", "monitor"),
                     f"got {monitor!r}: {data.name} is a {data.task} set, whose runs record "
                     f"{', '.join(recorded)}{text}; expected one of those")


def _plan_rows(cfg: ExperimentConfig, plan: Plan, mistakes: _Mistakes) -> None:
    """How many rows train and validate (exactly as :func:`scratchnet.data.prepare` will
    split them), and the batch size against them."""
    d, v = plan.data, cfg.data.validation
    if d.n_val is not None:  # a data set that cuts its own validation part (a text)
        plan.n_train, plan.n_val = d.n_train, d.n_val
    elif v == "test":
        plan.n_train, plan.n_val = d.n_train, d.n_test
    elif d.y_train is not None:
        try:
            keep, held = split_indices(d.y_train, v, seed=cfg.split_seed,
                                       stratify=d.task == "classification")
            plan.n_train, plan.n_val = len(keep), len(held)
        except Exception as e:  # too few rows to hold any out
            mistakes.add(("data", "validation"), str(e))
            return
    else:
        plan.n_val = int(round(v * d.n_train))
        plan.n_train = d.n_train - plan.n_val
        if not 0 < plan.n_val < d.n_train:
            mistakes.add(("data", "validation"), f"got {v}: holds out {plan.n_val} of the "
                         f"{d.n_train} training rows; expected a share that leaves rows on "
                         "both sides")
            return
    batch = cfg.train.batch_size  # larger than the rows: one batch per epoch
    if any(getattr(layer, "batch_norm", False) for layer in cfg.model.layers) \
            and plan.n_train % batch == 1:
        mistakes.add(("train", "batch_size"), f"got {batch}: with batch_norm the last batch "
                     f"of each epoch would hold a single row ({plan.n_train} training rows); "
                     "choose another batch size")


def _plan_network(cfg: ExperimentConfig, net: NeuralNetwork, plan: Plan,
                  mistakes: _Mistakes) -> None:
    """Every layer's output shape and parameter count, then the output against the task."""
    d = plan.data
    if not check_sequences(cfg, net, plan, mistakes):
        return
    shape = plan.input_shape = mistakes.run(("data", "shape"), input_shape, cfg, d, net)
    if shape is None:
        return
    for i, layer in enumerate(net.layers):
        if layer.takes_sequences and len(shape) != 2:
            after = f", and layer {i - 1} ({net.layers[i - 1].describe()}) gives samples of " \
                f"shape {shape}" if i else f"; the samples are {shape}"
            flat = " (remove the flatten: it reads the sequences itself)" if i and \
                len(shape) == 1 and len(plan.layers[i - 1]["inputs"]) > 1 else ""
            mistakes.add(("model", "layers", i, "type"), f"a {cfg.model.layers[i].type} layer "
                         f"reads sequences, samples of shape (time, features){after}{flat}")
            return
        out = mistakes.run(("model", "layers", i), layer.output_shape, shape)
        if out is None:
            return
        count = layer.param_count(shape)
        plan.layers.append({"layer": i, "type": layer.describe(), "inputs": shape,
                            "outputs": out, "params": count,
                            "activations": layer.activation_size(shape),
                            "inference": layer.inference_size(shape)})
        plan.n_params += count
        shape = out
    loss = net.loss
    name = loss.name or type(loss).__name__
    if cfg.data.target_scale != "none" and d.task != "regression":
        mistakes.add(("data", "target_scale"), f"got {cfg.data.target_scale!r}: it scales "
                     f"regression values, and {d.name} is a {d.task} set; expected none")
    if loss.task == "classification" and d.task != "classification":
        mistakes.add(("model", "loss"), f"got {name!r}: a classification loss, but "
                     f"{d.name} is a {d.task} set; expected mse, mae or huber")
        return
    if plan.targets == "ids" and not isinstance(loss, SoftmaxCrossEntropy):
        mistakes.add(("model", "loss"), f"got {name!r}: a text's targets are the ids of the "
                     "next characters, which softmax cross entropy scores; expected "
                     "softmax_cross_entropy")
        return
    if plan.targets == "binary" and d.n_classes != 2:
        mistakes.add(("model", "loss"), f"got {name!r}: it needs two classes, and {d.name} "
                     f"has {d.n_classes}; expected softmax_cross_entropy")
        return
    width = {"one_hot": d.n_classes, "ids": d.n_classes, "binary": 1,
             "value": 1}[plan.targets]
    what = {"one_hot": f"the {d.n_classes} classes of {d.name}", "ids": f"the {d.n_classes} "
            "ids of the vocabulary", "binary": "one logit (binary cross entropy)",
            "value": "one predicted value (regression)"}[plan.targets]
    steps = (d.n_features,) if plan.targets == "ids" else ()  # a target at every step
    if shape[:-1] != steps and steps:
        i, layer = next(((i, layer) for i, layer in reversed(list(enumerate(net.layers)))
                         if getattr(layer, "return_sequences", True) is False), (None, None))
        key = ("model", "layers", i, "return_sequences") if layer else ("model", "layers")
        mistakes.add(key, f"got {'false' if layer else shape}: a text has a target at every "
                     f"one of its {d.n_features} steps (the next character), so the network "
                     "must output every step; expected true (return_sequences)")
    elif shape != (*steps, width):
        last = len(net.layers) - 1
        key = net.layers[-1].width_option  # the option that sets it
        mistakes.add(("model", "layers", last, *([key] if key else [])),
                     f"got {shape[-1] if len(shape) == 1 + len(steps) else shape}: the output "
                     f"layer needs {width} unit{'s' if width != 1 else ''} for {what}")


def input_shape(cfg: ExperimentConfig, data: Description, net: NeuralNetwork) -> tuple:
    """What one sample looks like to the network: flat rows (features,) for a network
    that starts with a dense layer (and a text's windows of ids, (time,), for one that
    starts with an embedding), (channels, height, width) images for one that starts with
    a convolution (the dataset's own image shape, or ``data.shape``), and (time, features)
    sequences for one that starts with a recurrent layer (an image's rows, say:
    :func:`~scratchnet.data.sequence_shape_of`)."""
    if net.layers[0].takes_sequences:  # (time, features): an image's rows, say
        return sequence_shape_of(data, cfg.data.shape)
    shape = cfg.data.shape or data.sample_shape
    if cfg.data.shape and math.prod(shape) != data.n_features:
        raise ConfigError(f"got {list(shape)}: {math.prod(shape)} values a row, but the rows "
                          f"of {data.name} hold {data.n_features}; expected channels x height "
                          f"x width = {data.n_features}")
    if not net.layers[0].takes_images:
        return (data.n_features,)
    if shape is None:
        raise ConfigError(f"{data.name} has flat rows of {data.n_features} values and "
                          f"model.layers.0 takes images: give data.shape, [channels, height, "
                          "width]")
    return tuple(shape)


def _plan_memory(cfg: ExperimentConfig, net: NeuralNetwork, optimizer, plan: Plan,
                 mistakes: _Mistakes) -> None:
    """Bytes the training process will hold at its peak (its resident memory), checked
    against the machine's memory. ``benchmarks/memory.py`` (in ``make bench``) sets
    each estimate beside the peak of the real run; the shipped configs are within 30%.

    Process: Python, NumPy and the engine (:data:`PROCESS_BYTES`), and scikit-learn
    for the bundled sets it reads (:data:`SKLEARN_BYTES`). Data: the training, validation
    and test rows, a byte a value for 8-bit images (scaled batch by batch), else the
    source in float64 and its scaled copy. Parameters: value, gradient, the optimizer's
    slots, the best copy early stopping keeps and the copies a checkpoint makes (2).
    Activations: the larger pass, a training batch or an evaluation batch (as many rows
    as :meth:`~scratchnet.nn.NeuralNetwork.inference_batch_size` allows), each sample's
    input and what its layers keep (:meth:`~scratchnet.nn.Layer.activation_size`, or at
    inference :meth:`~scratchnet.nn.Layer.inference_size`: a recurrent layer's backward
    pass makes arrays of its own), times :data:`WORKING_FACTOR`. A mistake points at the layer that takes over half
    of it (its width: ``neurons``, ``out_channels``, or ``kernel_size`` where the
    columns of its convolution are the bulk), else at the batch size or the data."""
    if not plan.layers or len(plan.layers) != len(cfg.model.layers):
        return
    size = DTYPES[cfg.train.dtype].itemsize
    copies = 2 + 1 + 2 + len(optimizer.slots if optimizer else ())
    d = plan.data
    inputs = math.prod(plan.input_shape)
    # (rows, what a sample keeps): a training batch, an evaluation batch
    passes = [(min(cfg.train.batch_size, plan.n_train), "activations"),
              (min(net.inference_batch_size(EVAL_BATCH, plan.input_shape),
                   max(plan.n_val, d.n_test)), "inference")]
    rows, kept = max(passes, key=lambda p: p[0] * (inputs + sum(r[p[1]] for r in plan.layers)))
    per_sample = [r[kept] * size for r in plan.layers]
    value = 1 if cfg.data.dataset in BYTE_SETS else 8 + size
    if plan.targets == "ids":  # a text: windows of ids and their targets (int32), and the
        value = 2 * (4 + size)  # copies in the network's dtype training makes of them
    per_layer = [r["params"] * size * copies + WORKING_FACTOR * rows * b
                 for r, b in zip(plan.layers, per_sample)]
    parts = {
        "process": PROCESS_BYTES + (SKLEARN_BYTES if cfg.data.dataset in _SKLEARN_READS else 0),
        # validation rows among them (a text's are its own)
        "data": (d.n_train + (d.n_val or 0) + d.n_test) * d.n_features * value,
        "parameters": plan.n_params * size * copies,
        "activations": WORKING_FACTOR * rows * (inputs * size + sum(per_sample)),
    }
    plan.memory = {**parts, "total": sum(parts.values())}
    limit = MEMORY_SHARE * physical_memory()
    if plan.memory["total"] <= limit:
        return
    widest = max(range(len(per_layer)), key=per_layer.__getitem__)
    if per_layer[widest] > plan.memory["total"] / 2:
        loc = ("model", "layers", widest, *_width_key(net.layers[widest],
                                                      plan.layers[widest]["inputs"][0]))
        hint = f"layer {widest} takes most of it"
    elif parts["activations"] > parts["data"]:
        loc, hint = ("train", "batch_size"), "the batch's activations take most of it"
    else:
        loc, hint = ("data",), "the data takes most of it"
    breakdown = ", ".join(f"{k} {_gib(v)}" for k, v in parts.items())
    mistakes.add(loc, f"training would need about {_gib(plan.memory['total'])} ({breakdown}), "
                 f"more than the {_gib(limit)} this machine can give ({MEMORY_SHARE:.0%} of "
                 f"its memory); {hint}")


def _width_key(layer, in_channels: int) -> tuple[str, ...]:
    """The option that sets how much memory ``layer`` (built from its config) takes: its
    width (:attr:`width_option`: a dense layer's ``neurons``, a convolution's
    ``out_channels``), or a convolution's ``kernel_size`` where its columns (input channels
    x kernel positions, at every output position) outnumber its outputs (filters, at every
    output position); none for a layer without one (pooling): the error names the layer."""
    width = getattr(layer, "width_option", None)
    kernel = getattr(layer, "kernel_size", None)
    if width == "out_channels" and in_channels * math.prod(kernel) > layer.out_channels:
        return ("kernel_size",)
    return (width,) if width else ()


def _gib(n: float) -> str:
    return f"{n / _GIB:,.0f} GiB" if n >= 100 * _GIB else f"{n / _GIB:.3g} GiB"


def physical_memory() -> int:
    """Bytes of memory this machine has (8 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * _GIB
