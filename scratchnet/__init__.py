"""scratchnet: neural networks from scratch in NumPy, with the API of *Deep Learning from
Scratch* (Operation, Dense, SoftmaxCrossEntropy, SGDMomentum, Trainer), made correct."""

from .activations import (ACTIVATIONS, ELU, GELU, Activation, LeakyReLU, Linear, ReLU, Sigmoid,
                          Softplus, Tanh, get_activation)
from .callbacks import Callback, EarlyStopping
from .core import BatchNorm, BiasAdd, Dropout, Operation, Param, ParamOperation, WeightMultiply
from .errors import ConfigError, DataError, DivergenceError, ScratchnetError, ShapeError
from .initializers import INITIALIZERS, VarianceScaling, get_initializer
from .layers import LAYERS, Dense, Layer
from .losses import (LOSSES, BinaryCrossEntropy, Huber, Loss, MeanAbsoluteError, MeanSquaredError,
                     SoftmaxCrossEntropy, get_loss)
from .metrics import METRICS, accuracy, mae, r2, rmse
from .network import NeuralNetwork
from .optimizers import (OPTIMIZERS, SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp, SGDMomentum,
                         SGDNesterov, get_optimizer)
from .schedules import (SCHEDULES, Constant, CosineDecay, ExponentialDecay, LinearDecay,
                        ReduceOnPlateau, Schedule, StepDecay, Warmup, make_schedule)
from .trainer import History, Trainer, evaluate

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
