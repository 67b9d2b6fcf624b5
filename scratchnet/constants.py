"""Names and limits the command line shows before it has loaded the library.

``scratchnet --help`` lists every command's options with their defaults and choices;
to answer at once it must not import NumPy, pydantic or the engine. The values it
shows live here, in a module that imports nothing, and the modules they belong to
(the sweep, the tune, the schema, the ONNX export) take them from here.
"""

#: the most runs (grid points x seeds) a sweep or study plans unless told it may plan
#: more (``--max-runs N``): a grid of thousands of points is more often a slip than a plan
MAX_RUNS = 1000
#: seconds a Dask cluster may be without a single worker before the sweep gives up on it
#: (``sweep --worker-timeout``)
WORKER_TIMEOUT = 60.0
#: metrics that may pick a sweep's best grid point (epochs and seconds may not)
SELECTABLE = ("val_loss", "test_loss", "accuracy", "mae", "rmse", "r2")
#: the state files of a sweep folder and a tune folder
SWEEP_STATE = "sweep.json"
TUNE_STATE = "tune.json"

#: the metrics that improve upwards, in words, for ``tune --help``: a copy of what
#: :data:`scratchnet.nn.metrics.METRIC_MODES` says (tests/test_layout.py checks it)
HIGHER_IS_BETTER = "accuracy and r2"

#: what ``scratchnet tune`` may optimise (a validation metric of every evaluation), and
#: its other choices
TUNE_METRICS = ("val_loss", "accuracy", "mae", "rmse", "r2")
TUNE_DIRECTIONS = ("minimize", "maximize")
TUNE_PRUNERS = ("none", "median", "hyperband")
TUNE_SAMPLERS = ("tpe", "random")
#: a tune distribution -> the form it is written in
TUNE_FORMS = {"uniform": "uniform:LOW:HIGH", "loguniform": "loguniform:LOW:HIGH",
              "int": "int:LOW:HIGH[:STEP|:log]", "choice": "choice:A,B,..."}

#: the ONNX opset ``scratchnet export`` writes
ONNX_OPSET = 17

#: which weights a run folder's ``weights.safetensors`` holds: those ``eval``, ``predict``,
#: ``export`` and the run's test metrics use (summary.json's ``weights`` names them)
WEIGHTS_RULE = ("those a completed run ended with (its best evaluation's when early stopping "
                "restores them, else its last epoch's) or, until it completes, its best "
                "evaluation's so far")
