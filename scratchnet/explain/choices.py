"""Each choice of an experiment file in one sentence of the book's vocabulary, with the
numbers worked out for this config: what the initialisation does to the variance, what
momentum does to a step, the rates the schedule gives over this run's epochs, ..."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..experiment import early_stopping_of
from ..nn import DTYPES, INITIALIZERS, NotebookStopping
from ..nn.initializers import StandardNormal, fans
from ..nn.schedules import (Constant, CosineDecay, ExponentialDecay, LinearDecay,
                            ReduceOnPlateau, StepDecay, Warmup)
from .setup import LayerView, Setup

#: activations whose outputs saturate, and those of the ReLU family (zero or small below 0)
SQUASHING = ("sigmoid", "tanh")
RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu", "softplus")
#: the standard deviation of a pre-activation beyond which sigmoid and tanh saturate
SATURATING_STD = 2.0


@dataclass(frozen=True)
class Choice:
    """One sentence about the keys it names (``model.layers.0.weight_init``)."""

    topic: str
    keys: tuple[str, ...]
    text: str


def g(x: float) -> str:
    """A number to three significant digits, as people write it: 0.00229, 1.8, 1,000 (for
    1 / (1 - 0.999)), 2e-5, and whole numbers in full: 45,000."""
    if x != int(x):
        x = float(f"{x:.3g}")
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    mantissa, _, exponent = f"{x:.3g}".partition("e")
    return mantissa + (f"e{int(exponent)}" if exponent else "")


def size(shape) -> str:
    """``784 x 89``."""
    return " x ".join(str(n) for n in shape)


def _units(shape) -> str:
    """``89``, or ``8 x 8 x 8 = 512`` for a shape of several axes."""
    return g(shape[0]) if len(shape) == 1 else f"{size(shape)} = {g(math.prod(shape))}"


# -- data ---------------------------------------------------------------------------------
SCALING = {"global": "one mean and one standard deviation over all the training values (the "
                     "notebook's), so the inputs have mean 0 and variance 1 overall",
           "standard": "each feature to mean 0 and variance 1 over the training rows",
           "minmax": "each feature to [0, 1] over the training rows",
           "none": "the values as they are stored"}


def _data(s: Setup) -> Choice:
    d, p, v = s.plan.data, s.plan, s.cfg.data.validation
    if v == "test":
        held = (f"evaluation and early stopping use the {g(d.n_test)} test rows themselves "
                "(validation: test, the notebook's protocol)")
    else:
        held = (f"{g(p.n_val)} held out for validation ({v:.0%}) and {g(d.n_test)} test rows, "
                "touched once at the end")
    scale = f"scale {s.cfg.data.scale}: {SCALING.get(s.cfg.data.scale, s.cfg.data.scale)}"
    if p.targets == "ids":  # a text: windows of character ids, the next one's the target
        held = held.replace("rows", "windows")
        scale = (f"{g(d.n_features)} characters a window, each step's target the character "
                 "after it; ids, never scaled")
        return Choice("data", ("data.dataset", "data.validation", "data.seq_len"),
                      f"{d.name}: {g(p.n_train)} training windows, {held}; {scale}.")
    return Choice("data", ("data.dataset", "data.validation", "data.scale"),
                  f"{d.name}: {g(p.n_train)} training rows, {held}; {scale}.")


# -- weights --------------------------------------------------------------------------------
def _variance(init, fan_in: int, fan_out: int) -> str:
    """``2/(fan_in+fan_out) = 2/(784+89)``, the variance a preset draws with (written
    without spaces, so that a line never breaks inside it)."""
    if isinstance(init, StandardNormal):
        return "1 whatever the fans (the notebook's N(0, 1))"
    top = g(init.scale * (2 if init.mode == "fan_avg" else 1))
    formula, numbers = {"fan_in": ("fan_in", g(fan_in)), "fan_out": ("fan_out", g(fan_out)),
                        "fan_avg": ("(fan_in+fan_out)", f"({fan_in}+{fan_out})")}[init.mode]
    return f"{top}/{formula} = {top}/{numbers}"


def _signal(view: LayerView, variance: float) -> str:
    """What inputs of variance 1 become through these weights and the activation."""
    act = view.activation
    if view.kind == "embedding":
        return f"each id's vector starts with a spread of {g(math.sqrt(variance))}"
    fan_in = fans(view.weights)[0]
    v = fan_in * variance
    text = (f"inputs of variance 1 give pre-activations of variance fan_in x Var(W) = "
            f"{g(fan_in)} x {g(variance)} = {g(v)}")
    if act in SQUASHING or view.kind in ("lstm", "gru"):
        what = act if act in SQUASHING else "the gates' sigmoid and tanh"
        if math.sqrt(v) > SATURATING_STD:
            return f"{text}, far beyond where {what} bend{'s' * (act in SQUASHING)}: saturated"
        return f"{text}, where {what} still bend{'s' * (act in SQUASHING)}: not saturated"
    if act in RELU_LIKE:
        kept = ("holds" if 0.5 <= v / 2 <= 2 else "grows" if v / 2 > 2 else "shrinks")
        return (f"{text}; {act} passes about half, a mean square of {g(v / 2)}: the scale "
                f"{kept} from layer to layer")
    return text


def _weights(view: LayerView) -> Choice | None:
    layer, shape = view.layer, view.weights
    init_name = getattr(layer, "weight_init", None)
    if shape is None or init_name is None:
        return None
    init = INITIALIZERS[init_name]
    fan_in, fan_out = fans(shape)
    std = init.std(fan_in, fan_out)
    draw = "N(0, Var(W))" if getattr(init, "distribution", "normal") == "normal" else \
        f"uniform on [-a, a], a = sqrt(3) x std = {g(math.sqrt(3) * std)}"
    what = f"layer {view.index} ({view.activation})" if view.activation else f"layer {view.index}"
    fan = ""
    if len(shape) == 4:
        fan = f" (fan_in = {size(shape[1:])}, fan_out = {shape[0]} x {size(shape[2:])})"
    variance = _variance(init, fan_in, fan_out)
    if not isinstance(init, StandardNormal):
        variance += f" = {g(std ** 2)}"
    text = f"{what}, {init_name}: W ~ {draw} with Var(W) = {variance}{fan}; " \
           f"{_signal(view, std ** 2)}"
    if getattr(layer, "batch_norm", False):
        text += "; batch_norm then rescales each unit over the batch, whatever this variance"
    if view.kind in ("rnn", "lstm", "gru"):
        text += ("; W_h starts orthogonal, so a step neither grows nor shrinks the state "
                 "it passes on")
    if getattr(layer, "bias_init", "zeros") == "normal":
        text += "; the biases are drawn like the weights (the notebook's)"
    return Choice("weights", (f"{view.key}.weight_init",), text + ".")


def _dropout(where: str, key: str, rate: float, units) -> Choice:
    keep = 1 - rate
    return Choice("dropout", (key,),
                  f"{where} {g(rate)}: while training, each of the {_units(units)} "
                  f"values of a row is zeroed with probability {g(rate)} and the {keep:.0%} "
                  f"that survive are scaled by 1/{g(keep)} = {g(1 / keep)} (inverted "
                  f"dropout), so inference uses them all unchanged; the book's keep "
                  f"probability {g(keep)}.")


# -- loss, optimizer, schedule ----------------------------------------------------------------
def _loss(s: Setup) -> Choice:
    loss, last, b = s.loss.name, s.last, s.batch
    width, act = _units(last.outputs), last.activation or "linear"
    one = math.prod(last.outputs) == 1
    values = "one value" if one else f"{width} values"
    head = f"layer {last.index} outputs {values} ({act}) for {loss}"
    if loss == "softmax_cross_entropy":
        text = (f"layer {last.index} outputs {width} raw scores ({act}); {loss} turns them "
                "into probabilities itself (a softmax by log-sum-exp, never overflowing) and "
                f"takes minus the log of the true class's: its gradient, (softmax-y)/{b} a "
                "row, is large when wrong and never stuck")
    elif loss == "binary_cross_entropy":
        text = (f"layer {last.index} outputs one raw score ({act}); {loss} applies the "
                f"sigmoid itself and takes the cross entropy: its gradient is (sigmoid-y)/{b} "
                "a row")
    elif loss == "mse":
        target = "the one-hot labels" if s.classification else "the targets"
        text = f"{head}: the squared error against {target}, summed over outputs and " \
               f"averaged over the {b} rows; its gradient is 2(p-y)/{b}"
        if act == "sigmoid":
            text += ", times the sigmoid's slope p(1-p), near 0 where it saturates"
    elif loss == "mae":
        text = (f"{head}: the absolute error, averaged over the {b} rows; its gradient "
                f"sign(p-y)/{b} is as large near the target as far from it")
    elif loss == "huber":
        d = g(s.loss.delta)
        text = (f"{head}: squared error within {d} of the target, absolute beyond, so its "
                f"gradient, clip(p-y, -{d}, {d})/{b}, is bounded (robust to outliers)")
    else:
        text = head
    return Choice("loss", ("model.loss", f"{last.key}.activation"), text + ".")


def _optimizer(s: Setup) -> Choice:
    o = s.cfg.optimizer
    name, lr = o.name, g(o.lr)
    momentum = getattr(o, "momentum", 0.0)
    if name == "sgd" or (name in ("sgd_momentum", "nesterov") and momentum == 0):
        text = (f"{name}: W -= lr x dL/dW at lr {lr}, each step following the gradient of "
                "its batch alone")
    elif name in ("sgd_momentum", "nesterov"):
        n = g(1 / (1 - momentum))
        text = (f"{name}, momentum {g(momentum)}: v = {g(momentum)} v + lr x dL/dW, then "
                f"W -= v; the velocity sums the past gradients with weights {g(momentum)}^k, "
                f"about 1/(1-{g(momentum)}) = {n} steps' worth, so along a steady "
                f"gradient a step grows to {n} times lr x gradient")
        if name == "nesterov" or getattr(o, "nesterov", False):
            text += ", and it looks ahead (Nesterov): the step adds momentum x v to lr x g"
    elif name == "adagrad":
        text = (f"adagrad: each weight steps lr x g / sqrt(the sum of its squared gradients "
                f"so far) at lr {lr}, so steps shrink as the sums grow, most where the "
                "gradients were large")
    elif name == "rmsprop":
        text = (f"rmsprop, rho {g(o.rho)}: each weight steps lr x g / sqrt(the mean of g^2 "
                f"over about {g(1 / (1 - o.rho))} steps) at lr {lr}: about lr whatever the "
                "gradient's scale")
    elif name in ("adam", "adamw"):
        text = (f"{name}: each weight steps lr x m / sqrt(v), m the mean of its gradients over "
                f"about {g(1 / (1 - o.beta1))} steps (beta1 {g(o.beta1)}) and v that of their "
                f"squares over about {g(1 / (1 - o.beta2))} (beta2 {g(o.beta2)}), both "
                f"bias-corrected: about lr = {lr} a step, whatever the gradient's scale")
    else:
        text = f"{name} at lr {lr}"
    return Choice("optimizer", ("optimizer.name",), text + ".")


def _rates(s: Setup) -> str:
    """The rates at the first, middle and last epoch."""
    last = s.plan.schedule.epochs - 1
    epochs = sorted({0, last // 2, last})
    parts = [f"{g(s.rate(e))} at epoch {e + 1}" for e in epochs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _decay(schedule, epochs: int, total: int) -> str:
    """The decay over its ``epochs`` (the run's ``total``, less a warm-up)."""
    k, over = epochs - 1, f"over {total} epochs"
    lr, final = g(schedule.lr), g(getattr(schedule, "final_lr", None) or 0)
    if isinstance(schedule, Constant):
        return f"a constant rate of {lr} for all {total} epochs"
    if isinstance(schedule, LinearDecay):
        step = f", {g((schedule.lr - schedule.final_lr) / k)} less each epoch" if k else ""
        return f"linear decay from {lr} to {final} {over}{step}"
    if isinstance(schedule, ExponentialDecay):
        step = f", x {(schedule.final_lr / schedule.lr) ** (1 / k):.4g} each epoch" if k else ""
        return f"exponential decay from {lr} to {final} {over}{step}"
    if isinstance(schedule, StepDecay):
        floor = f" but never below {final}" if schedule.final_lr else ""
        return (f"step decay from {lr} {over}, x {g(schedule.gamma)} every "
                f"{schedule.step_size} epochs{floor}")
    if isinstance(schedule, CosineDecay):
        return (f"cosine decay from {lr} to {final} {over}, half a cosine: slow at the start "
                "and at the end, fastest mid-run")
    return f"{type(schedule).__name__} {over}"


def _schedule(s: Setup) -> Choice:
    schedule, epochs = s.plan.schedule, s.plan.schedule.epochs
    lead = ""
    if isinstance(schedule, Warmup):
        w = schedule.warmup_epochs
        lead = (f"a linear warm-up over {w} epochs from lr/{w + 1} = {g(s.rate(0))} up to "
                f"{g(schedule.lr)}, then ")
        schedule, epochs = schedule.schedule, epochs - w
    if isinstance(schedule, ReduceOnPlateau):
        text = (f"{lead}reduce on plateau: {g(schedule.lr)}, x {g(schedule.factor)} each time "
                f"the {watched(s.cfg)} has not improved for more than {schedule.patience} "
                f"evaluations, never below {g(schedule.min_lr)}: the run decides the rates")
    else:
        text = f"{lead}{_decay(schedule, epochs, s.plan.schedule.epochs)}"
        if not isinstance(schedule, Constant) or lead:
            text += f": {_rates(s)}"
    return Choice("learning rate", ("optimizer.lr", "optimizer.decay"), text + ".")


# -- the run ------------------------------------------------------------------------------------
def _batches(s: Setup) -> Choice:
    b, n, steps = s.cfg.train.batch_size, s.plan.n_train, s.steps_per_epoch
    if b >= n:
        text = (f"batch_size {g(b)} holds all {g(n)} training rows: one step an epoch, on "
                "the gradient of the whole training set")
    else:
        text = (f"batch_size {g(b)}: {g(n)} training rows make {g(steps)} steps an epoch "
                f"({g(steps * s.epochs)} in {s.epochs} epochs), each on the mean gradient of "
                f"{g(b)} rows, " + ("in order: row r of each batch goes on where row r of "
                                    "the last stopped (data.streams)" if s.cfg.data.streams
                                    else "reshuffled every epoch"))
        if n % b:
            text += f" (an epoch's last step takes the {g(n % b)} rows left)"
    return Choice("batches", ("train.batch_size",), text + ".")


def _evaluations(s: Setup) -> list[int]:
    every, epochs = s.cfg.train.eval_every, s.epochs
    return sorted({*range(every, epochs + 1, every), epochs})


def _said(epochs: list[int]) -> str:
    if len(epochs) > 6:
        return f"after every {epochs[0]} epochs ({len(epochs)} evaluations)" \
            if epochs[0] > 1 else f"after every epoch ({len(epochs)} evaluations)"
    words = [str(e) for e in epochs]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"after epoch{'s' * (len(words) > 1)} {listed}"


def _stopping(s: Setup) -> Choice:
    evals, cfg = _evaluations(s), s.cfg
    on = "test" if cfg.data.validation == "test" else "held-out"
    text = (f"eval_every {cfg.train.eval_every}: the validation loss (on the {g(s.plan.n_val)} "
            f"{on} rows) is measured {_said(evals)}; ")
    stopper = early_stopping_of(cfg)
    if isinstance(stopper, NotebookStopping):
        text += ("early_stopping notebook: at the first evaluation that does not improve, the "
                 "run stops and puts back a copy taken at the start of that epoch")
    elif stopper.patience is None:
        text += (f"no early stopping: all {s.epochs} epochs run and the last weights are kept")
    else:
        p = stopper.patience
        better = f" by more than {g(stopper.min_delta)}" if stopper.min_delta else ""
        kept = ("puts back the weights of the best evaluation" if stopper.restore_best
                else "keeps the last weights")
        earliest = evals[p] if p < len(evals) else None
        when = (f"the earliest it can stop is epoch {earliest}" if earliest is not None
                else "it has too few evaluations to stop before the end")
        first = ("at the first evaluation that fails" if p == 1
                 else f"once {p} evaluations in a row fail")
        aim = "lower" if stopper.mode == "min" else "raise"
        best = "loss" if stopper.monitor == "val_loss" else watched(cfg)
        text += f"early stopping ends the run {first} to {aim} the best {best}{better}, and " \
                f"{kept}; {when}"
    return Choice("evaluation", ("train.eval_every", "train.early_stopping"), text + ".")


def watched(cfg) -> str:
    """What early stopping and the plateau schedule watch, in words: ``validation loss``,
    ``validation accuracy``."""
    monitor = early_stopping_of(cfg).monitor
    return "validation loss" if monitor == "val_loss" else f"validation {monitor}"


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{g(n / scale)} {unit}"
    return f"{n} bytes"


def _numbers(s: Setup) -> list[Choice]:
    cfg, o = s.cfg, s.cfg.optimizer
    out = []
    wd = getattr(o, "weight_decay", 0.0)
    if wd:
        if o.name == "adamw":
            text = (f"weight_decay {g(wd)}, decoupled: each step first shrinks every weight by "
                    f"the fraction lr x {g(wd)} ({g(s.rate(0) * wd)} at the first rate), then "
                    "takes Adam's step; biases are left alone")
        else:
            text = (f"weight_decay {g(wd)}: {g(wd)} x W joins every weight's gradient (that of "
                    f"{g(wd / 2)} |W|^2), pulling the weights towards 0; biases are left alone")
        out.append(Choice("weight decay", ("optimizer.weight_decay",), text + "."))
    clip = getattr(o, "clip_norm", None)
    if clip:
        out.append(Choice("clipping", ("optimizer.clip_norm",),
                          f"clip_norm {g(clip)}: whenever the gradients of all "
                          f"{g(s.plan.n_params)} parameters together have an L2 norm above "
                          f"{g(clip)}, they are scaled down to it: the direction is kept, the "
                          "step's length capped."))
    dtype = DTYPES[cfg.train.dtype]
    digits = {4: 7, 8: 16}.get(dtype.itemsize)
    out.append(Choice("dtype", ("train.dtype",),
                      f"{cfg.train.dtype}: weights, gradients and activations are "
                      f"{dtype.itemsize}-byte floats (about {digits} significant digits); "
                      f"the {g(s.plan.n_params)} parameters take "
                      f"{_bytes(s.plan.n_params * dtype.itemsize)}."))
    drawn = ("the initial weights and the dropout masks are drawn from it (the batches are "
             "read in order)" if cfg.data.streams is not None else "the initial weights, the "
             "dropout masks and the order of the batches are drawn from it")
    out.append(Choice("seed", ("seed",), f"seed {cfg.seed}: {drawn}, so a rerun on the same "
                      "machine repeats the run exactly."))
    return out


def choices(s: Setup) -> list[Choice]:
    """Every sentence, in the order of the experiment file."""
    out = [_data(s)]
    out += [c for c in map(_weights, s.layers) if c is not None]
    if s.input_dropout:
        out.append(_dropout("input_dropout", "model.input_dropout", s.input_dropout,
                            s.plan.input_shape))
    out += [_dropout(f"layer {v.index}, dropout", f"{v.key}.dropout", v.dropout, v.outputs)
            for v in s.layers if v.dropout]
    out += [_loss(s), _optimizer(s), _schedule(s), _batches(s), _stopping(s)]
    return out + _numbers(s)
