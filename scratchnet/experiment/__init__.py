"""From a validated experiment config to a trained run folder, and back.

This is the library behind ``scratchnet train`` and ``eval`` (and sweeps): everything the
command line does can be done from Python with :func:`train_experiment` and
:func:`evaluate_run`. ``build`` makes the parts (data, network, optimizer), ``run``
trains into a run folder, ``evaluation`` reads a run back and tests it.
"""

from .build import (as_samples, build_network, build_optimizer, data_info, early_stopping_of,
                    load_data, prepare_data)
from .evaluation import Evaluation, config_edited, evaluate_run, evaluate_split, load_run
from .plan import Plan, plan_experiment
from .run import RunRecorder, RunResult, train_experiment

__all__ = ["as_samples", "Evaluation", "RunRecorder", "RunResult", "build_network",
           "build_optimizer", "config_edited", "data_info", "early_stopping_of", "evaluate_run",
           "evaluate_split", "load_data", "load_run", "Plan", "plan_experiment", "prepare_data",
           "train_experiment"]
