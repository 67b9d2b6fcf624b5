"""``scratchnet explain``: what an experiment will do, in the book's terms, before anything
trains. From a config and its plan (:func:`~scratchnet.experiment.plan_experiment`: shapes
and parameter counts, no weight allocated):

* the network as the book draws it, each layer as its chain of operations with the shape
  of one batch after each (:mod:`.network`);
* each choice of the file in one sentence, its numbers worked out (:mod:`.choices`);
* the pitfalls it walks into, from one table of rules (:mod:`.rules`).

    from scratchnet.config import load_config
    from scratchnet.experiment import plan_experiment
    from scratchnet.explain import explain

    cfg = load_config("configs/mnist_tanh.yaml")
    print(explain(cfg, plan_experiment(cfg))["pitfalls"])
"""

from __future__ import annotations

from ..config import ExperimentConfig
from ..experiment import Plan
from .choices import Choice, choices
from .network import network
from .rules import RULES, Finding, Rule, pitfalls
from .setup import LayerView, Setup, make_setup

__all__ = ["RULES", "Choice", "Finding", "LayerView", "Rule", "Setup", "explain", "make_setup"]


def explain(cfg: ExperimentConfig, plan: Plan) -> dict:
    """The explanation as one JSON-ready dict: ``name``, ``network`` (see
    :func:`.network.network`), ``choices`` (topic, keys, text) and ``pitfalls`` (id, key,
    finding, reason, docs)."""
    setup = make_setup(cfg, plan)
    return {"name": cfg.name, "network": network(setup),
            "choices": [{"topic": c.topic, "keys": list(c.keys), "text": c.text}
                        for c in choices(setup)],
            "pitfalls": [{"id": r.id, "key": f.key, "finding": f.text, "reason": r.reason,
                          "docs": r.docs} for r, f in pitfalls(setup)]}
