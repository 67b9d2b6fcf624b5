"""What several commands share: the options that stand for a ``--set``, the MLflow
options, and naming a run folder (``@last``)."""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

SET_HELP = "Override a config value: --set model.layers.0.neurons=128 (repeatable)."
MLFLOW_HELP = ("Log to MLflow (extra 'mlflow'), by default to the SQLite database mlflow.db "
               "beside the {} folders; the same as --set tracking.mlflow=true.")
MLFLOW_URI_HELP = "Log to MLflow at this tracking URI (implies --mlflow)."
DATA_DIR_HELP = "Folder holding data sets (e.g. DIR/mnist/)."
RUN_DIR_HELP = ("A run folder written by `scratchnet train` (@last: the newest in runs/, "
                "DIR/@last: the newest in DIR).")


@dataclass(frozen=True)
class ConfigFlag:
    """An option that is a shorthand for ``--set KEY=VALUE``."""

    key: str
    metavar: str
    help: str


#: the shorthands, on every command that takes ``--set`` (a command may keep an option of
#: the same name for something of its own: ``tune --seed`` seeds its sampler)
CONFIG_FLAGS = {
    "--epochs": ConfigFlag("train.epochs", "N", "Epochs to train"),
    "--lr": ConfigFlag("optimizer.lr", "X", "The learning rate"),
    "--batch-size": ConfigFlag("train.batch_size", "N", "Rows per batch"),
    "--seed": ConfigFlag("seed", "N", "Seeds the weights, dropout and shuffling"),
}


def _parameter(flag: str) -> str:
    return "flag_" + flag.lstrip("-").replace("-", "_")


def config_flags(command):
    """Give ``command`` (a Typer command function with an ``overrides`` parameter, its
    ``--set``) the options of :data:`CONFIG_FLAGS` it does not declare itself; each given
    one is appended to the overrides as the ``--set`` it stands for (so it wins over a
    ``--set`` of the same key)."""
    signature = inspect.signature(command)
    own = {o for p in signature.parameters.values()
           for o in (getattr(p.default, "param_decls", None) or ())}
    flags = {_parameter(f): (f, spec) for f, spec in CONFIG_FLAGS.items() if f not in own}
    added = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               annotation=Optional[str],
                               default=typer.Option(None, flag, metavar=spec.metavar,
                                                    help=f"{spec.help}: --set {spec.key}."))
             for name, (flag, spec) in flags.items()]

    @functools.wraps(command)
    def with_flags(*args, **kwargs):
        given = [f"{spec.key}={kwargs.pop(name)}" for name, (_, spec) in flags.items()
                 if kwargs.get(name) is not None]
        for name in flags:
            kwargs.pop(name, None)
        kwargs["overrides"] = [*(kwargs.get("overrides") or []), *given]
        return command(*args, **kwargs)

    params = list(signature.parameters.values())
    after = next((i + 1 for i, p in enumerate(params) if p.name == "overrides"), len(params))
    with_flags.__signature__ = signature.replace(parameters=[*params[:after], *added,
                                                             *params[after:]])
    return with_flags


def tracking_overrides(mlflow: bool, mlflow_uri: str | None) -> list[str]:
    """``--mlflow`` and ``--mlflow-uri URI`` as the ``--set`` overrides they stand for.

    (Two options rather than one with an optional value: Typer has no optional option
    values, so ``--mlflow`` alone would be an error and ``--mlflow --quiet`` would take
    ``--quiet`` for the URI.)"""
    out = ["tracking.mlflow=true"] if mlflow or mlflow_uri is not None else []
    if mlflow_uri is not None:
        out.append(f"tracking.uri={json.dumps(mlflow_uri)}")  # a YAML string, whatever it holds
    return out


def run_folder(path: Path) -> Path:
    """A run folder given on the command line, ``@last`` resolved."""
    from ..listing import resolve

    return resolve(path)


def data_dir_text(data_dir: Path | None) -> str | None:
    return str(data_dir) if data_dir else None
