"""From a validated config to the parts training needs: the data, the network, the
optimizer."""

from __future__ import annotations

from ..config import ExperimentConfig
from ..data import Dataset, Prepared, load_dataset, prepare
from ..data.download import Progress
from ..nn import OPTIMIZERS, Dense, EarlyStopping, NeuralNetwork, Optimizer, get_activation, get_loss


def _spec(spec) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    spec = dict(spec)
    return spec.pop("name"), spec


def build_network(cfg: ExperimentConfig, n_inputs: int | None = None) -> NeuralNetwork:
    """The configured network (built at once when ``n_inputs`` is given)."""
    layers = []
    for layer in cfg.model.layers:
        name, kwargs = _spec(layer.activation)
        layers.append(Dense(layer.neurons, activation=get_activation(name, **kwargs),
                            weight_init=layer.weight_init, dropout=layer.dropout,
                            bias_init=layer.bias_init, batch_norm=layer.batch_norm))
    loss_name, loss_kwargs = _spec(cfg.model.loss)
    net = NeuralNetwork(layers, get_loss(loss_name, **loss_kwargs),
                        seed=cfg.seed, dtype=cfg.train.dtype,
                        input_dropout=cfg.model.input_dropout)
    if n_inputs is not None:
        net.build(n_inputs)
    return net


def build_optimizer(cfg: ExperimentConfig) -> Optimizer:
    """The configured optimizer; the schema has already checked that it takes each option."""
    o = cfg.optimizer
    kwargs = o.options()
    if o.decay.type != "none":
        kwargs["decay_type"] = o.decay.type
        kwargs["final_lr"] = o.decay.final_lr
    if o.decay.kwargs():  # step/plateau options and warm-up (warm-up also for "none")
        kwargs["decay_kwargs"] = o.decay.kwargs()
    cls = OPTIMIZERS[o.name]
    return cls(o.lr, **kwargs)


def early_stopping_of(cfg: ExperimentConfig) -> EarlyStopping:
    es = cfg.train.early_stopping
    if isinstance(es, bool):
        return EarlyStopping.of(es)
    return EarlyStopping(patience=es.patience, min_delta=es.min_delta, restore_best=es.restore_best)


def load_data(cfg: ExperimentConfig, data_dir: str | None = None, download: bool = True,
              progress: Progress | None = None) -> Dataset:
    """The configured dataset (``progress`` hears about a download, when one is needed)."""
    d = cfg.data
    return load_dataset(d.dataset, path=d.path, data_dir=data_dir, target=d.target, task=d.task,
                        test_fraction=d.test_fraction, seed=cfg.seed, download=download,
                        progress=progress)


def prepare_data(cfg: ExperimentConfig, data_dir: str | None = None,
                 progress: Progress | None = None) -> Prepared:
    """Load and prepare the configured data (split, scaling fitted on train, one-hot)."""
    return prepare(load_data(cfg, data_dir, progress=progress), scale=cfg.data.scale,
                   validation=cfg.data.validation, seed=cfg.seed, dtype=cfg.train.dtype)


def data_info(data: Prepared) -> dict:
    """What evaluation and prediction need to transform inputs as training did."""
    return {"task": data.task, "classes": list(data.classes), "feature_names": list(data.feature_names),
            "image_shape": list(data.image_shape) if data.image_shape else None,
            "n_features": int(data.n_features), "n_outputs": int(data.n_outputs),
            "scaler": data.scaler.to_dict()}


