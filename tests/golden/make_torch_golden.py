"""PyTorch's reference values for scratchnet's tests, written as golden files.

The tests compare scratchnet with these arrays in every run, torch or not; where torch is
installed they also compute them again live (``tests/golden_files.py`` calls the functions
below). To regenerate after changing a case here (needs torch, the one pinned by the
``bench`` extra)::

    .venv/bin/python tests/golden/make_torch_golden.py             # rewrites tests/golden/*.npz
    .venv/bin/python tests/golden/make_torch_golden.py --out DIR   # writes them elsewhere

Every file holds float64 arrays (integers for sizes, strides and indices), the inputs of
each case as well as torch's answers, and two 0-d strings: ``torch_version`` and
``numpy_version``, the libraries that made it. Read one with
``golden_files.load_golden(name)``.

``torch_blocks.npz`` (tests/test_blocks.py; each family's hyper-parameters are written
beside its torch call below, and beside scratchnet's in the test):
  optimizer_W0, optimizer_B0      the start values (3, 2) and (1, 2)
  optimizer_gW, optimizer_gB      the gradient of each of the 3 steps, (3, 3, 2), (3, 1, 2)
  optimizer_<case>_W, _B          the values after 3 steps, weight decay on W only; <case> is
                                  a key of OPTIMIZERS
  clip_<norm>_W, _B               SGD with momentum 0.9 after torch's clip_grad_norm_ each
                                  step, <norm> in CLIP_NORMS (``clip_0.5_W``, ``clip_100_W``)
  plateau_losses, plateau_lr      ReduceLROnPlateau: the rate before each epoch, and after
  step_lr, cosine_lr              StepLR and CosineAnnealingLR: the rate of epochs 0..8
  activation_x, activation_<name> the input (1, 41) and each activation's output
  loss_z, loss_y, loss_bce_mean   logits, 0/1 targets and torch's mean BCE with logits
  loss_p, loss_t, loss_l1_sum     predictions, targets and torch's summed L1 loss
  loss_huber_deltas, loss_huber_sum   summed Huber loss for each delta
  batchnorm_*                     BatchNorm1d over two training steps (x, dy, y, dx, dgamma,
                                  dbeta stacked by step), running statistics, then eval

``torch_conv.npz`` and ``torch_pool.npz`` (for the convolution layers): keys are
``<family>_<case>_<field>``, families ``conv``, ``max``, ``avg``, cases ``a``, ``b``, ...
(see CONV_CASES and POOL_CASES), no underscore in family or case, so
``key.split("_", 2)`` gives the three parts (``golden_files.golden_cases`` does it).
  conv_<c>_x (N, C, H, W), _W (F, C, KH, KW), _b (F,), _grad_out (N, F, H', W'),
  _out (N, F, H', W'), _dx, _dW, _db: torch.nn.functional.conv2d (cross-correlation) and
  its gradients for the loss sum(out * grad_out);
  conv_<c>_stride, _padding: as passed to torch: a 0-d int, a (2,) int pair (rows,
  columns), or the 0-d string "same";
  max_<c>_x, _size, _stride (0-d ints), _grad_out, _out, _dx, and _indices (torch's
  return_indices: for each window the flat h * W + w index of the input it picked);
  avg_<c>_x, _size, _stride, _grad_out, _out, _dx.

``torch_recurrent.npz`` (tests/test_recurrent.py): keys ``<family>_<case>_<field>`` as
above, families ``rnn``, ``lstm``, ``gru`` (torch.nn.RNN / LSTM / GRU, one layer,
batch_first) and ``embedding`` (see RECURRENT_CASES, STATEFUL_CASES, EMBEDDING_CASES).
  <family>_<c>_x (B, T, F); _w_ih (G*H, F), _w_hh (G*H, H), _b_ih, _b_hh (G*H,): torch's
  weights, its gate order (LSTM i, f, g, o; GRU r, z, n); rnn_<c>_activation: the RNN's
  nonlinearity, a 0-d string; _grad (B, T, H); _out (B, T, H); _hn, and for the LSTM _cn
  (B, H): the final state; _dx, _dw_ih, _dw_hh, _db_ih, _db_hh: the gradients of
  sum(out * grad); _grad_last (B, H) and _last_dx, _last_dw_ih, ...: those of
  sum(out[:, -1] * grad_last) (the last step only, return_sequences=False).
  <family>_s_*: two consecutive batches stacked on a first axis of 2 (x, grad, out, hn, cn,
  and the gradients of each batch's own pass), the second batch started from the first's
  final state, detached.
  embedding_<c>_ids (B, T) int, _W (V, D), _grad (B, T, D), _out (B, T, D), _dW (V, D).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# =======================================================================================
# torch_blocks: optimizers, clipping, schedules, activations, losses, batch norm
# =======================================================================================
def optimizer_start() -> tuple[np.ndarray, np.ndarray]:
    """A weight matrix (3, 2) and a bias (1, 2); also the start of test_blocks' own
    optimizer tests, so that both compare the same three steps."""
    return np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]), np.array([[0.1, -0.2]])


def optimizer_gradient(t: int) -> tuple[np.ndarray, np.ndarray]:
    """A different, fixed gradient for each step t = 0, 1, 2 (and no zero entries)."""
    gW = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]]) * (1.0 + 0.5 * t) + 0.1 * t
    gB = np.array([[-0.3, 0.8]]) * (2.0 - t) + 0.05
    return gW, gB


OPTIMIZER_STEPS = 3
#: case -> torch optimizer over (optim module, param groups); B's group has no decay
OPTIMIZERS = {
    "sgd": lambda o, ps: o.SGD(ps, lr=0.1, weight_decay=0.1),
    "sgd_momentum": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.8),
    "nesterov": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05),
    "adagrad": lambda o, ps: o.Adagrad(ps, lr=0.05, eps=1e-10, weight_decay=0.1),
    "rmsprop": lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1),
    "adam": lambda o, ps: o.Adam(ps, lr=0.02, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.1),
    "adamw": lambda o, ps: o.AdamW(ps, lr=0.02, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.1),
    "adam_defaults": lambda o, ps: o.Adam(ps),
    "adamw_defaults": lambda o, ps: o.AdamW(ps),
    "adagrad_defaults": lambda o, ps: o.Adagrad(ps),
}
CLIP_NORMS = (0.5, 100.0)


def clip_key(norm: float) -> str:
    return f"clip_{norm:g}"


def optimizer_run(torch, make_optimizer, wd_groups: bool, clip=None):
    """W and B after OPTIMIZER_STEPS steps of ``make_optimizer(params)``."""
    W0, B0 = optimizer_start()
    W = torch.tensor(W0, requires_grad=True)
    B = torch.tensor(B0, requires_grad=True)
    opt = make_optimizer([{"params": [W]}, {"params": [B], "weight_decay": 0.0}]
                         if wd_groups else [W, B])
    for t in range(OPTIMIZER_STEPS):
        gW, gB = optimizer_gradient(t)
        W.grad, B.grad = torch.tensor(gW), torch.tensor(gB)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([W, B], clip)
        opt.step()
    return W.detach().numpy(), B.detach().numpy()


def optimizers(torch) -> dict:
    W0, B0 = optimizer_start()
    grads = [optimizer_gradient(t) for t in range(OPTIMIZER_STEPS)]
    out = {"optimizer_W0": W0, "optimizer_B0": B0,
           "optimizer_gW": np.stack([g[0] for g in grads]),
           "optimizer_gB": np.stack([g[1] for g in grads])}
    for name, make in OPTIMIZERS.items():
        W, B = optimizer_run(torch, lambda ps, make=make: make(torch.optim, ps), wd_groups=True)
        out[f"optimizer_{name}_W"], out[f"optimizer_{name}_B"] = W, B
    for norm in CLIP_NORMS:
        W, B = optimizer_run(torch, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                             wd_groups=False, clip=norm)
        out[f"{clip_key(norm)}_W"], out[f"{clip_key(norm)}_B"] = W, B
    return out


PLATEAU_LOSSES = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.71, 0.72, 0.73]
SCHEDULE_EPOCHS = 9


def schedules(torch) -> dict:
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2,
                                                         min_lr=0.2)
    plateau_lr = []
    for loss in PLATEAU_LOSSES:
        plateau_lr.append(opt.param_groups[0]["lr"])
        plateau.step(loss)
    plateau_lr.append(opt.param_groups[0]["lr"])
    out = {"plateau_losses": np.array(PLATEAU_LOSSES), "plateau_lr": np.array(plateau_lr)}

    for name, make in [
        ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
        ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8,
                                                                        eta_min=0.01)),
    ]:
        opt = torch.optim.SGD([p], lr=0.3)
        sched = make(opt)
        rates = []
        for _ in range(SCHEDULE_EPOCHS):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[f"{name}_lr"] = np.array(rates)
    return out


def activations(torch) -> dict:
    x = np.linspace(-8, 8, 41).reshape(1, -1)
    nn = torch.nn
    modules = {"leaky_relu": nn.LeakyReLU(0.05), "elu": nn.ELU(1.5),
               "gelu": nn.GELU(approximate="tanh"), "softplus": nn.Softplus()}
    out = {"activation_x": x}
    for name, module in modules.items():
        out[f"activation_{name}"] = module(torch.tensor(x)).numpy()
    return out


HUBER_DELTAS = (0.5, 1.0, 2.0)


def losses(torch) -> dict:
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (7, 1))
    y = rng.integers(0, 2, (7, 1)).astype(np.float64)
    p, t = rng.normal(0, 2, (6, 3)), rng.normal(0, 2, (6, 3))
    tp, tt = torch.tensor(p), torch.tensor(t)
    return {
        "loss_z": z, "loss_y": y,
        "loss_bce_mean": np.array(
            F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y)).item()),
        "loss_p": p, "loss_t": t,
        "loss_l1_sum": np.array(F.l1_loss(tp, tt, reduction="sum").item()),
        "loss_huber_deltas": np.array(HUBER_DELTAS),
        "loss_huber_sum": np.array([F.huber_loss(tp, tt, reduction="sum", delta=d).item()
                                    for d in HUBER_DELTAS]),
    }


BATCHNORM_STEPS = 2


def batch_norm(torch) -> dict:
    """BatchNorm1d(4), momentum 0.1 and eps 1e-5 (scratchnet's defaults too): two training
    steps on (9, 4) batches, then one evaluation of a (3, 4) batch."""
    rng = np.random.default_rng(6)
    bn = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    steps = {k: [] for k in ("x", "dy", "y", "dx", "dgamma", "dbeta")}
    for _ in range(BATCHNORM_STEPS):
        x = rng.normal(1.0, 2.0, (9, 4))
        dy = rng.normal(size=(9, 4))
        tx = torch.tensor(x, requires_grad=True)
        bn.zero_grad()
        ty = bn(tx)
        ty.backward(torch.tensor(dy))
        for key, value in [("x", x), ("dy", dy), ("y", ty.detach().numpy()),
                           ("dx", tx.grad.numpy()), ("dgamma", bn.weight.grad.numpy()),
                           ("dbeta", bn.bias.grad.numpy())]:
            steps[key].append(np.array(value))
    out = {f"batchnorm_{k}": np.stack(v) for k, v in steps.items()}
    out.update(batchnorm_gamma=gamma, batchnorm_beta=beta,
               batchnorm_running_mean=bn.running_mean.numpy().copy(),
               batchnorm_running_var=bn.running_var.numpy().copy())
    bn.eval()
    x = rng.normal(size=(3, 4))
    out.update(batchnorm_eval_x=x, batchnorm_eval_y=bn(torch.tensor(x)).detach().numpy())
    return out


def blocks(torch) -> dict:
    return {**optimizers(torch), **schedules(torch), **activations(torch), **losses(torch),
            **batch_norm(torch)}


# =======================================================================================
# torch_conv and torch_pool: the reference for the convolution layers
# =======================================================================================
#: case -> (seed, x shape (N, C, H, W), W shape (F, C, KH, KW), stride, padding)
CONV_CASES = {
    "a": (10, (3, 2, 5, 6), (4, 2, 3, 3), 1, 1),
    "b": (11, (2, 3, 7, 5), (2, 3, 2, 3), 2, (1, 0)),  # rectangular kernel, odd input
    "c": (12, (2, 1, 9, 9), (3, 1, 5, 5), 1, "same"),
    "d": (13, (1, 2, 6, 7), (2, 2, 3, 3), (2, 1), 0),
    "e": (14, (2, 2, 8, 8), (3, 2, 5, 5), 2, 2),
}


def conv(torch) -> dict:
    out = {}
    for case, (seed, x_shape, w_shape, stride, padding) in CONV_CASES.items():
        rng = np.random.default_rng(seed)
        x = rng.normal(size=x_shape)
        W = rng.normal(size=w_shape)
        # a flipped kernel must give other numbers, or convolution would pass for
        # cross-correlation
        assert not np.allclose(W, W[..., ::-1, ::-1])
        b = rng.normal(size=w_shape[0])
        tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
        y = torch.nn.functional.conv2d(tx, tW, tb, stride=stride, padding=padding)
        grad_out = rng.normal(size=tuple(y.shape))
        (y * torch.tensor(grad_out)).sum().backward()
        fields = {"x": x, "W": W, "b": b, "stride": np.array(stride),
                  "padding": np.array(padding), "grad_out": grad_out,
                  "out": y.detach().numpy(), "dx": tx.grad.numpy(), "dW": tW.grad.numpy(),
                  "db": tb.grad.numpy()}
        out.update({f"conv_{case}_{k}": v for k, v in fields.items()})
    return out


#: case -> (seed, x shape (N, C, H, W), size, stride, integer inputs with ties)
POOL_CASES = {
    "max": {
        "a": (20, (2, 3, 4, 6), 2, 2, False),  # the windows tile the input exactly
        "b": (21, (2, 2, 7, 7), 3, 2, False),  # overlapping windows
        "c": (22, (2, 2, 6, 6), 2, 2, True),   # values 0, 1, 2: repeated maxima
    },
    "avg": {
        "a": (23, (2, 3, 4, 6), 2, 2, False),
        "b": (24, (2, 2, 5, 6), 3, 1, False),
    },
}


def pool(torch) -> dict:
    F = torch.nn.functional
    out = {}
    for family, cases in POOL_CASES.items():
        for case, (seed, x_shape, size, stride, ties) in cases.items():
            rng = np.random.default_rng(seed)
            x = (rng.integers(0, 3, x_shape).astype(np.float64) if ties
                 else rng.normal(size=x_shape))
            tx = torch.tensor(x, requires_grad=True)
            fields = {}
            if family == "max":
                y, indices = F.max_pool2d(tx, size, stride, return_indices=True)
                fields["indices"] = indices.numpy()
            else:
                y = F.avg_pool2d(tx, size, stride)
            grad_out = rng.normal(size=tuple(y.shape))
            (y * torch.tensor(grad_out)).sum().backward()
            fields.update(x=x, size=np.array(size), stride=np.array(stride),
                          grad_out=grad_out, out=y.detach().numpy(), dx=tx.grad.numpy())
            out.update({f"{family}_{case}_{k}": v for k, v in fields.items()})
    return out


# =======================================================================================
# torch_recurrent: nn.RNN, nn.LSTM, nn.GRU (batch_first) and nn.Embedding
# =======================================================================================
#: family -> case -> (seed, batch, time, features, hidden, RNN nonlinearity)
RECURRENT_CASES = {
    family: {"a": (30, 3, 5, 4, 3, "tanh"), "b": (31, 1, 1, 2, 1, "tanh"),
             **({"c": (32, 2, 4, 3, 5, "relu")} if family == "rnn" else {})}
    for family in ("rnn", "lstm", "gru")
}
#: family -> (seed, batch, time, features, hidden): two consecutive batches, the second
#: started from the first's final state, detached (truncated back-propagation)
STATEFUL_CASES = {family: (33, 2, 4, 3, 4) for family in ("rnn", "lstm", "gru")}
#: case -> (seed, vocab_size, dim, batch, time)
EMBEDDING_CASES = {"a": (34, 7, 3, 4, 6), "b": (35, 50, 5, 1, 1)}


def recurrent_module(torch, family: str, features: int, hidden: int, nonlinearity: str):
    nn = torch.nn
    options = {"batch_first": True, "dtype": torch.float64}
    if family == "rnn":
        return nn.RNN(features, hidden, nonlinearity=nonlinearity, **options)
    return (nn.LSTM if family == "lstm" else nn.GRU)(features, hidden, **options)


def recurrent_weights(torch, module, rng) -> dict:
    """Draw the module's weights from ``rng`` (N(0, 0.5^2), larger than torch's own
    start, so that the gates move away from their middle) and return them by field."""
    fields = {}
    with torch.no_grad():
        for field, name in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"),
                            ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
            param = getattr(module, name)
            value = rng.normal(0.0, 0.5, size=tuple(param.shape))
            param.copy_(torch.tensor(value))
            fields[field] = value
    return fields


def recurrent_pass(torch, module, x, grad, state=None) -> dict:
    """Outputs, final state and gradients of ``sum(out * grad)`` (``grad`` is (batch,
    time, H), or (batch, H) for the last step only) from ``state`` (None: zeros)."""
    module.zero_grad()
    tx = torch.tensor(x, requires_grad=True)
    out, final = module(tx, state)
    seen = out if grad.ndim == 3 else out[:, -1]
    (seen * torch.tensor(grad)).sum().backward()
    h, c = final if isinstance(final, tuple) else (final, None)
    fields = {"out": out.detach().numpy(), "hn": h[0].detach().numpy(), "dx": tx.grad.numpy()}
    if c is not None:
        fields["cn"] = c[0].detach().numpy()
    for field, name in (("dw_ih", "weight_ih_l0"), ("dw_hh", "weight_hh_l0"),
                        ("db_ih", "bias_ih_l0"), ("db_hh", "bias_hh_l0")):
        fields[field] = getattr(module, name).grad.numpy().copy()
    return fields, final


def recurrent(torch) -> dict:
    out = {}
    for family, cases in RECURRENT_CASES.items():
        for case, (seed, batch, steps, features, hidden, act) in cases.items():
            rng = np.random.default_rng(seed)
            module = recurrent_module(torch, family, features, hidden, act)
            fields = recurrent_weights(torch, module, rng)
            x = rng.normal(size=(batch, steps, features))
            grad = rng.normal(size=(batch, steps, hidden))
            grad_last = rng.normal(size=(batch, hidden))
            every, _ = recurrent_pass(torch, module, x, grad)
            last, _ = recurrent_pass(torch, module, x, grad_last)
            fields.update(x=x, grad=grad, grad_last=grad_last, **every,
                          **{f"last_{k}": v for k, v in last.items() if k.startswith("d")})
            if family == "rnn":
                fields["activation"] = np.array(act)
            out.update({f"{family}_{case}_{k}": v for k, v in fields.items()})
    for family, (seed, batch, steps, features, hidden) in STATEFUL_CASES.items():
        rng = np.random.default_rng(seed)
        module = recurrent_module(torch, family, features, hidden, "tanh")
        fields = recurrent_weights(torch, module, rng)
        xs = rng.normal(size=(2, batch, steps, features))
        grads = rng.normal(size=(2, batch, steps, hidden))
        passes, state = [], None
        for x, grad in zip(xs, grads, strict=True):
            result, final = recurrent_pass(torch, module, x, grad, state)
            state = tuple(s.detach() for s in final) if isinstance(final, tuple) else final.detach()
            passes.append(result)
        fields.update(x=xs, grad=grads, **{k: np.stack([p[k] for p in passes]) for k in passes[0]})
        if family == "rnn":
            fields["activation"] = np.array("tanh")
        out.update({f"{family}_s_{k}": v for k, v in fields.items()})
    for case, (seed, vocab, dim, batch, steps) in EMBEDDING_CASES.items():
        rng = np.random.default_rng(seed)
        embedding = torch.nn.Embedding(vocab, dim, dtype=torch.float64)
        W = rng.normal(size=(vocab, dim))
        with torch.no_grad():
            embedding.weight.copy_(torch.tensor(W))
        ids = rng.integers(0, vocab, size=(batch, steps))  # with repeats, and ids unused
        grad = rng.normal(size=(batch, steps, dim))
        y = embedding(torch.tensor(ids))
        (y * torch.tensor(grad)).sum().backward()
        fields = {"ids": ids, "W": W, "grad": grad, "out": y.detach().numpy(),
                  "dW": embedding.weight.grad.numpy()}
        out.update({f"embedding_{case}_{k}": v for k, v in fields.items()})
    return out


#: golden file name -> the function that computes its arrays with torch
FILES = {"torch_blocks": blocks, "torch_conv": conv, "torch_pool": pool,
         "torch_recurrent": recurrent}


def compute(name: str, torch) -> dict[str, np.ndarray]:
    """The arrays of golden file ``name``, versions included, made with ``torch``."""
    arrays = {k: np.asarray(v) for k, v in FILES[name](torch).items()}
    arrays["torch_version"] = np.array(torch.__version__)
    arrays["numpy_version"] = np.array(np.__version__)
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder to write the .npz files into (default: %(default)s)")
    args = parser.parse_args(argv)
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        path = args.out / f"{name}.npz"
        np.savez_compressed(path, **compute(name, torch))
        print(f"{path}  {path.stat().st_size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
