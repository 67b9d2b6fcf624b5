"""The engine: the book's networks in NumPy, readable top-down.

``core`` (Param and the Operation contract), ``activations``, ``initializers``,
``normalization``, ``conv`` (convolution, pooling and flatten on images), ``layer_base``
(what every layer is), ``layers``, ``embedding``, ``recurrent_ops`` and ``recurrent`` (RNN,
LSTM and GRU, on sequences), ``losses``, ``network``, ``optimizers``, ``schedules``,
``callbacks``, ``metrics``, ``trainer``, ``health`` (per-layer health at every evaluation)
and ``gradcheck``. It imports nothing from the rest of scratchnet but its errors, its
argument checks, its registry lookup and the vocabulary its constructors declare their
options in (:mod:`scratchnet.options`), so it can be read (and used) without the command
line around it.
"""

from types import ModuleType as _ModuleType

from .activations import (ACTIVATIONS, ELU, GELU, Activation, LeakyReLU, Linear, ReLU, Sigmoid,
                          Softplus, Tanh, get_activation)
from .callbacks import Callback, EarlyStopping, NotebookStopping, PrintEvaluations
from .conv import AvgPool2DOp, ChannelBiasAdd, Conv2DOp, FlattenOp, MaxPool2DOp
from .core import DTYPES, BiasAdd, Dropout, Operation, Param, ParamOperation, WeightMultiply
from .health import HealthMonitor
from .initializers import BIAS_INITIALIZERS, INITIALIZERS, VarianceScaling, get_initializer
from .layers import LAYERS, AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D
from .losses import (LOSSES, BinaryCrossEntropy, Huber, Loss, MeanAbsoluteError, MeanSquaredError,
                     SoftmaxCrossEntropy, get_loss)
from .metrics import METRICS, accuracy, evaluate, mae, r2, rmse
from .recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN, Embedding
from .recurrent_ops import GRUOp, LSTMOp, RecurrentOp, RNNOp
from .network import NeuralNetwork
from .normalization import BatchNorm, BatchNorm2D
from .optimizers import (OPTIMIZERS, SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp, SGDMomentum,
                         SGDNesterov, get_optimizer)
from .schedules import (SCHEDULES, Constant, CosineDecay, ExponentialDecay, LinearDecay,
                        ReduceOnPlateau, Schedule, StepDecay, Warmup, get_schedule,
                        make_schedule)
from .history import History
from .trainer import Trainer

__all__ = [name for name, value in list(globals().items())
           if not name.startswith("_") and not isinstance(value, _ModuleType)]
