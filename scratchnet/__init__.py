"""scratchnet: neural networks from scratch in NumPy, with the API of *Deep Learning from
Scratch* (Operation, Dense, SoftmaxCrossEntropy, SGDMomentum, Trainer), made correct."""

from .activations import ACTIVATIONS, Activation, Linear, ReLU, Sigmoid, Tanh, get_activation
from .callbacks import Callback, EarlyStopping
from .core import BiasAdd, Dropout, Operation, Param, ParamOperation, WeightMultiply
from .errors import ConfigError, DataError, DivergenceError, ScratchnetError, ShapeError
from .initializers import INITIALIZERS, VarianceScaling, get_initializer
from .layers import LAYERS, Dense, Layer
from .losses import LOSSES, Loss, MeanSquaredError, SoftmaxCrossEntropy, get_loss
from .metrics import METRICS, accuracy, mae, r2, rmse
from .network import NeuralNetwork
from .optimizers import OPTIMIZERS, SGD, Optimizer, SGDMomentum, get_optimizer
from .schedules import SCHEDULES, Constant, ExponentialDecay, LinearDecay, Schedule, make_schedule
from .trainer import History, Trainer, evaluate

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
