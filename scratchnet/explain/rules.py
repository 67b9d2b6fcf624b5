"""The pitfalls ``scratchnet explain`` looks for: one table of rules (:data:`RULES`), each
with an id, its condition on the resolved config and plan, the reason in one sentence and
where the docs say more. docs/explain.md lists them, made from this table:

    python -m scratchnet.explain     # the Markdown of docs/explain.md's rule list
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..data import DATASETS
from ..experiment import early_stopping_of
from ..nn.initializers import fans
from ..nn.schedules import Constant, Warmup
from .choices import RELU_LIKE, SQUASHING, g, watched
from .setup import Setup

#: time steps from which a plain RNN's gradient has all but vanished (min-char-rnn trains
#: one over 25; the adding problem defeats one from about 50)
LONG_SEQUENCE = 50
#: a decay that keeps this share of its first rate at the last epoch barely decays
BARELY = 0.9


@dataclass(frozen=True)
class Finding:
    """Where a rule applies (a config key) and what it sees there, with this config's
    numbers."""

    key: str
    text: str


@dataclass(frozen=True)
class Rule:
    id: str
    #: the condition in words (the docs list it)
    when: str
    #: why it hurts, in one sentence
    reason: str
    #: where the docs say more: a file of the repository and a section's anchor
    docs: str
    #: the findings in a config; none when the rule does not apply
    condition: Callable[[Setup], Iterable[Finding]]


#: every rule, in the order explain reports them
RULES: list[Rule] = []


def rule(id: str, when: str, reason: str, docs: str):
    """Declare the rule whose condition is the decorated function."""
    def register(condition):
        RULES.append(Rule(id, " ".join(when.split()), " ".join(reason.split()), docs,
                          condition))
        return condition
    return register


def pitfalls(setup: Setup) -> list[tuple[Rule, Finding]]:
    """Every finding of every rule, in the order of :data:`RULES`."""
    return [(r, f) for r in RULES for f in r.condition(setup)]


def _standard(setup: Setup, activations) -> Iterable:
    for view in setup.layers:
        if getattr(view.layer, "weight_init", None) == "standard" and view.weights and \
                (view.activation in activations or "gates" in activations and
                 view.kind in ("lstm", "gru")):
            yield view, fans(view.weights)[0]


@rule("saturating-init", """a sigmoid or tanh layer (or an LSTM's or GRU's gates) whose weights
      start N(0, 1) (weight_init: standard)""",
      """A unit sums fan_in inputs times weights of variance 1, so its pre-activation spreads
      about sqrt(fan_in) wide, far beyond the +-2 where sigmoid and tanh bend: they saturate,
      their slopes are near 0 and the layer barely learns (glorot keeps the spread near 1).""",
      "docs/tour.md#5-the-initial-weights")
def _saturating(setup: Setup):
    for view, fan_in in _standard(setup, (*SQUASHING, "gates")):
        what = view.activation if view.activation in SQUASHING else "its gates"
        yield Finding(f"{view.key}.weight_init",
                      f"layer {view.index}: {what} over {g(fan_in)} inputs with N(0, 1) "
                      f"weights: pre-activations spread about sqrt({g(fan_in)}) = "
                      f"{g(math.sqrt(fan_in))} wide")


@rule("relu-standard-init", """a layer of the ReLU family (relu, leaky_relu, elu, gelu,
      softplus) whose weights start N(0, 1)""",
      """With weights of variance 1 a ReLU layer's outputs are about sqrt(fan_in/2) times
      larger than its inputs, so the layers after it and the loss see huge values, and steps
      sized for one layer are far off for the others; He's Var(W) = 2/fan_in keeps the
      scale.""",
      "docs/tour.md#1-the-hidden-activation")
def _relu_standard(setup: Setup):
    for view, fan_in in _standard(setup, RELU_LIKE):
        yield Finding(f"{view.key}.weight_init",
                      f"layer {view.index}: {view.activation} over {g(fan_in)} inputs with "
                      f"N(0, 1) weights: outputs about sqrt({g(fan_in)}/2) = "
                      f"{g(math.sqrt(fan_in / 2))} times the inputs' scale")


@rule("sigmoid-mse-classes", """mean squared error on classes with a sigmoid output layer""",
      """Under mean squared error the gradient at a sigmoid output is multiplied by its slope
      p(1-p), near 0 once the output saturates, so a confidently wrong output stays wrong; a
      linear output under softmax_cross_entropy gets p-y (the notebook's experiment 1
      against 4: 72.58% against 91.01%).""",
      "docs/tour.md#2-the-loss-and-the-output-it-needs")
def _sigmoid_mse(setup: Setup):
    if setup.loss.name == "mse" and setup.classification and setup.last.activation == "sigmoid":
        yield Finding("model.loss", f"mse on the {setup.last.outputs[-1]} sigmoid outputs of "
                      f"layer {setup.last.index}")


#: the range each bounded activation squeezes a score into
_BOUNDS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


@rule("squashed-scores", """a sigmoid or tanh output layer under softmax_cross_entropy or
      binary_cross_entropy, which apply the softmax or the sigmoid themselves""",
      """The loss turns raw scores into probabilities itself; scores squeezed into a short
      range first can never make a confident prediction, so the loss never approaches 0 and
      the gradient never stops pushing (the output layer should be linear).""",
      "docs/tour.md#2-the-loss-and-the-output-it-needs")
def _squashed(setup: Setup):
    act, loss, last = setup.last.activation, setup.loss.name, setup.last
    if act not in _BOUNDS:
        return
    low, high = _BOUNDS[act]
    if loss == "softmax_cross_entropy":
        classes = last.outputs[-1]
        best = math.exp(high - low) / (math.exp(high - low) + classes - 1)
        yield Finding(f"{last.key}.activation",
                      f"layer {last.index} applies {act} before the loss's softmax: over "
                      f"{classes} classes no prediction can pass {best:.0%}")
    elif loss == "binary_cross_entropy":
        low, high = (1 / (1 + math.exp(-x)) for x in (low, high))
        yield Finding(f"{last.key}.activation",
                      f"layer {last.index} applies {act} before the loss's sigmoid: every "
                      f"probability lies between {low:.0%} and {high:.0%}")


@rule("dropout-above-half", """a dropout (or input_dropout) above 0.5""",
      """A layer's dropout is the drop rate, as in PyTorch and Keras, where the book's
      Dropout(0.8) was the probability of keeping a unit: a value above 0.5 is most often a
      keep probability written where a drop rate belongs, and it leaves few units to
      learn.""",
      "docs/tour.md#6-dropout")
def _dropout_above_half(setup: Setup):
    dropped = [(f"{v.key}.dropout", f"layer {v.index}", v.dropout) for v in setup.layers]
    dropped.append(("model.input_dropout", "the input", setup.input_dropout))
    for key, where, rate in dropped:
        if rate > 0.5:
            yield Finding(key, f"{where} drops {rate:.0%} of its values while training; for "
                          f"the book's keep probability {g(rate)}, write dropout: "
                          f"{g(round(1 - rate, 6))}")


@rule("dropout-on-output", """dropout on the output layer""",
      """Dropout there zeroes some of the predictions themselves while training (class
      scores, predicted values), so the loss compares damaged predictions with the targets;
      dropout belongs on hidden layers.""", "docs/tour.md#6-dropout")
def _dropout_on_output(setup: Setup):
    if setup.last.dropout > 0 and len(setup.layers) > 1:
        yield Finding(f"{setup.last.key}.dropout", f"layer {setup.last.index}, the output, "
                      f"drops {setup.last.dropout:.0%} of the predictions while training")


@rule("rate-ends-above-start", """a learning rate higher at the last epoch than at the
      first (today: a warm-up with no decay after it)""",
      """Late in a run small steps settle into a minimum instead of bouncing around it (the
      notebook's decays gained a little, experiments 6 to 8); a rate that ends above where it
      starts takes its largest steps last.""", "docs/tour.md#4-learning-rate-decay")
def _rate_ends_above(setup: Setup):
    first, last = setup.rate(0), setup.rate(setup.plan.schedule.epochs - 1)
    if last > first:
        yield Finding("optimizer.decay", f"the rate rises from {g(first)} at epoch 1 to "
                      f"{g(last)} at epoch {setup.plan.schedule.epochs}")


@rule("final-lr-without-decay", """decay.final_lr given with decay type none""",
      """final_lr is where a decay ends; without a decay type (linear, exponential, step,
      cosine) the rate stays lr for the whole run, as the notebook's optimizer kept it when
      decay_type was left out.""", "docs/tour.md#4-learning-rate-decay")
def _final_lr_without_decay(setup: Setup):
    schedule = setup.plan.schedule
    inner = schedule.schedule if isinstance(schedule, Warmup) else schedule
    if isinstance(inner, Constant) and inner.final_lr is not None:
        yield Finding("optimizer.decay.final_lr", f"final_lr {g(inner.final_lr)} with decay "
                      f"type none: the rate stays {g(inner.lr)}")


@rule("decay-barely-decays", f"""a decay whose last rate keeps {BARELY:.0%} or more of the
      first""",
      """final_lr is the rate at the last epoch, not a factor per epoch (Keras's decay_rate,
      PyTorch's gamma): so close to lr, the schedule is all but constant.""",
      "docs/tour.md#4-learning-rate-decay")
def _barely(setup: Setup):
    epochs = setup.plan.schedule.epochs
    first, last = setup.rate(0), setup.rate(epochs - 1)
    if epochs > 1 and BARELY * first <= last < first:
        yield Finding("optimizer.decay.final_lr",
                      f"the rate falls from {g(first)} to {g(last)} over {epochs} epochs: "
                      f"{last / first:.0%} of it remains")


@rule("sgd-without-momentum", """plain SGD (sgd, or momentum 0)""",
      """Each step follows the gradient of its batch alone, slow along shallow, steady
      directions and jittery across steep ones; momentum 0.9 averages about 10 steps, and
      took the notebook's tanh network from 91.01% to 95.51% at the same rate (experiments 4
      and 6).""", "docs/tour.md#3-the-optimizer")
def _plain_sgd(setup: Setup):
    o = setup.cfg.optimizer
    if o.name == "sgd" or (o.name in ("sgd_momentum", "nesterov") and o.momentum == 0):
        yield Finding("optimizer.name", f"{o.name} at lr {g(o.lr)} without momentum")


@rule("validation-on-test", """validation: test (the notebook's protocol)""",
      """Evaluation and early stopping pick the weights on the test rows themselves, so the
      test accuracy reported afterwards is an optimistic estimate; hold out part of the
      training rows (validation: 0.1) and touch the test split once, at the end.""",
      "docs/reproduction.md#beyond-the-notebook-configsmnist_bestyaml-9826")
def _validation_on_test(setup: Setup):
    if setup.cfg.data.validation == "test":
        yield Finding("data.validation", f"the {g(setup.plan.data.n_test)} test rows choose "
                      "the weights and then grade them")


@rule("batch-size-one", """batch_size 1""",
      """Each step learns from one row, as noisy as a single example, and the run spends its
      time in per-step overhead rather than in the matrix products NumPy is fast at (the
      notebook used 60).""", "docs/explain.md#batch-size-one")
def _batch_one(setup: Setup):
    if setup.cfg.train.batch_size == 1 and setup.plan.n_train > 1:
        yield Finding("train.batch_size", f"{g(setup.plan.n_train)} steps an epoch, each on "
                      "one row")


@rule("one-step-per-epoch", """a batch that holds every training row""",
      """Full-batch gradient descent takes one step per pass over the data, so a run of a few
      epochs takes only a few steps, and without the noise of mini-batches nothing shakes it
      out of a poor minimum.""", "docs/explain.md#one-step-per-epoch")
def _one_step(setup: Setup):
    b, n = setup.cfg.train.batch_size, setup.plan.n_train
    if b >= n > 1:
        yield Finding("train.batch_size", f"batch_size {g(b)} holds all {g(n)} training rows: "
                      f"{setup.epochs} steps in the whole run")


@rule("patience-one-every-epoch", """early stopping with patience 1, evaluated every epoch""",
      """The validation loss wobbles from epoch to epoch; with patience 1 one unlucky
      evaluation ends a run that was still learning (the notebook's experiment 5 stopped at
      epoch 4 of 50).""", "docs/reproduction.md#why-the-numbers-differ-one-line-each")
def _patience_one(setup: Setup):
    cfg = setup.cfg
    if cfg.train.eval_every == 1 and setup.epochs > 2 and \
            early_stopping_of(cfg).patience == 1:
        yield Finding("train.early_stopping", f"the first epoch whose {watched(cfg)} does "
                      f"not improve ends the run, as early as epoch 2 of {setup.epochs}")


@rule("unscaled-inputs", """data.scale none""",
      """Glorot and He assume inputs of variance about 1; raw values (MNIST pixels run 0 to
      255) make the first pre-activations hundreds of times larger, saturating tanh and
      sigmoid at once, unless the data is scaled already.""",
      "docs/explain.md#unscaled-inputs")
def _unscaled(setup: Setup):
    data = setup.cfg.data
    if data.scale == "none" and not DATASETS[data.dataset].unit_range:
        yield Finding("data.scale", f"the {setup.plan.data.name} rows enter as they are stored")


@rule("rnn-long-sequences", f"""a plain RNN over {LONG_SEQUENCE} or more time steps""",
      """Back through time the gradient is multiplied by W_h and the activation's slope at
      every step, so little of it reaches the early steps: a plain RNN learns dependencies of
      a few tens of steps at most, where an LSTM or a GRU carries them through its gates.""",
      "docs/health.md#recurrent-layers-the-gradient-through-time")
def _long_rnn(setup: Setup):
    for view in setup.layers:
        if view.kind == "rnn" and view.inputs[0] >= LONG_SEQUENCE:
            yield Finding(f"{view.key}.type", f"layer {view.index}: a plain RNN over "
                          f"{g(view.inputs[0])} time steps")


def markdown() -> str:
    """The rules as docs/explain.md lists them: a section per rule, its anchor its id."""
    parts = []
    for r in RULES:
        more = ""
        if not r.docs.startswith("docs/explain.md"):
            target = r.docs.removeprefix("docs/") if r.docs.startswith("docs/") \
                else f"../{r.docs}"
            more = f" More: [{r.docs}]({target})."
        parts.append(f"### {r.id}\n\n**When:** {r.when}.\n\n**Why:** {r.reason}{more}\n")
    return "\n".join(parts)

