"""The building blocks of issue 9: optimizers, weight decay and clipping, activations,
losses, initialisers, schedules, batch normalisation and class probabilities.

Golden values come from formulas written out here (and, where short enough, numbers
worked out by hand); the ``*_torch`` tests check the same things against PyTorch's numbers
(it is never a dependency of scratchnet): ``[golden]`` against the arrays committed in
tests/golden/torch_blocks.npz, in every run, and ``[torch]`` against the installed torch,
skipped without it. tests/golden/make_torch_golden.py computes both.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import scratchnet as sn
from golden_files import generator
from scratchnet import runs
from scratchnet.data import load_dataset, prepare
from scratchnet.nn.gradcheck import check_network, check_operation

NEW_ACTIVATIONS = ["leaky_relu", "elu", "gelu", "softplus"]
TORCH_BLOCKS = "torch_blocks"


# =======================================================================================
# Optimizers
# =======================================================================================
# the start and the gradients are the golden file's too (the torch comparisons below)
def make_params(W0=None, B0=None):
    """A weight matrix and a bias, named as a network names them (copies of W0 and B0)."""
    start_W, start_B = generator().optimizer_start()
    W0 = start_W if W0 is None else W0
    B0 = start_B if B0 is None else B0
    return [sn.Param(np.array(W0, dtype=np.float64), "layers.0.W"),
            sn.Param(np.array(B0, dtype=np.float64), "layers.0.B")]


def grads_at(t: int) -> list[np.ndarray]:
    """A different, fixed gradient for each step t = 0, 1, 2 (and no zero entries)."""
    return list(generator().optimizer_gradient(t))


def run_steps(optimizer, steps=3, lr=None, params=None, grads=grads_at):
    params = params or make_params()
    lr = optimizer.lr if lr is None else lr
    for t in range(steps):
        for p, g in zip(params, grads(t), strict=True):
            p.grad[...] = g  # what a backward pass does: overwrite in place
        optimizer.step(params, lr)
    return [p.value for p in params]


# -- the same algorithms written out plainly, one array at a time ----------------------
def ref_sgd(p, gs, lr, wd):
    for g in gs:
        p = p - lr * (g + wd * p)
    return p


def ref_nesterov(p, gs, lr, mu, wd):
    buf = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        buf = mu * buf + g
        p = p - lr * (g + mu * buf)
    return p


def ref_momentum(p, gs, lr, mu, wd):
    v = np.zeros_like(p)
    for g in gs:
        v = mu * v + lr * (g + wd * p)
        p = p - v
    return p


def ref_adagrad(p, gs, lr, eps, wd):
    s = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        s = s + g ** 2
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_rmsprop(p, gs, lr, rho, eps, wd):
    a = np.zeros_like(p)
    for g in gs:
        g = g + wd * p
        a = rho * a + (1 - rho) * g ** 2
        p = p - lr * g / (np.sqrt(a) + eps)
    return p


def ref_adam(p, gs, lr, b1, b2, eps, wd, decoupled=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        if decoupled:
            p = p - lr * wd * p
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


# (name, constructor kwargs, reference applied to one array: f(p0, grads, wd) -> p3)
CASES = [
    ("sgd", dict(lr=0.1), lambda p, gs, wd: ref_sgd(p, gs, 0.1, wd)),
    ("sgd_momentum", dict(lr=0.1, momentum=0.8),
     lambda p, gs, wd: ref_momentum(p, gs, 0.1, 0.8, wd)),
    ("nesterov", dict(lr=0.1, momentum=0.8), lambda p, gs, wd: ref_nesterov(p, gs, 0.1, 0.8, wd)),
    ("adagrad", dict(lr=0.05), lambda p, gs, wd: ref_adagrad(p, gs, 0.05, 1e-10, wd)),
    ("rmsprop", dict(lr=0.01, rho=0.85, eps=1e-6),
     lambda p, gs, wd: ref_rmsprop(p, gs, 0.01, 0.85, 1e-6, wd)),
    ("adam", dict(lr=0.02, beta1=0.8, beta2=0.95, eps=1e-7),
     lambda p, gs, wd: ref_adam(p, gs, 0.02, 0.8, 0.95, 1e-7, wd)),
    ("adamw", dict(lr=0.02, beta1=0.8, beta2=0.95, eps=1e-7),
     lambda p, gs, wd: ref_adam(p, gs, 0.02, 0.8, 0.95, 1e-7, wd, decoupled=True)),
]


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("name,kwargs,reference", CASES, ids=[c[0] for c in CASES])
def test_optimizer_three_steps_match_the_written_out_formulas(name, kwargs, reference, wd):
    optimizer = sn.get_optimizer(name, **kwargs, weight_decay=wd)
    W, B = run_steps(optimizer)
    W0, B0 = (p.value for p in make_params())
    gW = [grads_at(t)[0] for t in range(3)]
    gB = [grads_at(t)[1] for t in range(3)]
    np.testing.assert_allclose(W, reference(W0, gW, wd), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(B, reference(B0, gB, 0.0), rtol=1e-12, atol=1e-14)  # no decay
    assert not np.allclose(W, W0)


# -- numbers worked out by hand: one scalar weight, gradient 1 at every step -----------
def scalar_after_3_steps(optimizer):
    p = sn.Param(np.array([[1.0]]), "W")
    for _ in range(3):
        p.grad[...] = 1.0
        optimizer.step([p], optimizer.lr)
    return float(p.value[0, 0])


def test_optimizer_hand_computed_values():
    # Nesterov, lr 0.1, momentum 0.9: velocities 0.1, 0.19, 0.271; steps 0.19, 0.271, 0.3439
    assert scalar_after_3_steps(sn.SGDNesterov(0.1, momentum=0.9)) == pytest.approx(1 - 0.8049)
    # AdaGrad: the sum of squares is t, so the steps are lr / sqrt(t)
    assert scalar_after_3_steps(sn.AdaGrad(0.1)) == pytest.approx(
        1 - 0.1 * (1 + 1 / math.sqrt(2) + 1 / math.sqrt(3)))
    # RMSProp, rho 0.9: the average of squares is 0.1, 0.19, 0.271
    assert scalar_after_3_steps(sn.RMSProp(0.1, rho=0.9)) == pytest.approx(
        1 - 0.1 * (1 / math.sqrt(0.1) + 1 / math.sqrt(0.19) + 1 / math.sqrt(0.271)))
    # Adam: bias correction makes m_hat = v_hat = 1, so every step is lr / (1 + eps)
    step = 0.1 / (1 + 1e-8)
    assert scalar_after_3_steps(sn.Adam(0.1)) == pytest.approx(1 - 3 * step, abs=1e-14)
    # AdamW: the weight shrinks by (1 - lr * wd) before each of those steps
    w = 1.0
    for _ in range(3):
        w = w * (1 - 0.1 * 0.5) - step
    assert scalar_after_3_steps(sn.AdamW(0.1, weight_decay=0.5)) == pytest.approx(w, abs=1e-14)


def test_book_calls_still_work():
    opt = sn.SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear")
    assert opt.schedule(3).rates() == pytest.approx([0.15, 0.1, 0.05])
    assert sn.SGD(0.1).step is not None and sn.SGD(0.1).weight_decay == 0.0


@pytest.mark.parametrize("name", sorted(sn.OPTIMIZERS))
def test_weight_decay_touches_weights_only(name):
    """With zero gradients, only L2 moves anything: W moves, B, gamma and beta do not."""
    params = [sn.Param(np.full((2, 3), 2.0), "layers.0.W"),
              sn.Param(np.full((1, 3), 2.0), "layers.0.B"),
              sn.Param(np.full((1, 3), 2.0), "layers.1.gamma"),
              sn.Param(np.full((1, 3), 2.0), "layers.1.beta")]
    opt = sn.get_optimizer(name, lr=0.1, weight_decay=0.5)
    for _ in range(3):
        for p in params:
            p.grad[...] = 0.0
        opt.step(params, 0.1)
    assert (params[0].value < 2.0).all()
    for p in params[1:]:
        assert np.array_equal(p.value, np.full((1, 3), 2.0)), p.name


def test_clip_norm_golden_values():
    W = sn.Param(np.zeros((2, 2)), "layers.0.W")
    B = sn.Param(np.zeros((1, 2)), "layers.0.B")

    def step(clip_norm):
        W.value[...] = 0.0
        B.value[...] = 0.0
        W.grad[...] = [[3.0, 0.0], [0.0, 0.0]]
        B.grad[...] = [[0.0, -4.0]]  # global norm sqrt(9 + 16) = 5
        opt = sn.SGD(1.0, clip_norm=clip_norm)
        opt.step([W, B], 1.0)
        return opt

    opt = step(1.0)  # scaled by 1/5
    assert opt.last_grad_norm == pytest.approx(5.0)
    np.testing.assert_allclose(W.value, [[-0.6, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(B.value, [[0.0, 0.8]])
    step(10.0)  # under the limit: untouched
    np.testing.assert_allclose(W.value, [[-3.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(B.value, [[0.0, 4.0]])


def test_clip_comes_before_weight_decay():
    W = sn.Param(np.array([[1.0]]), "W")
    W.grad[...] = 10.0
    sn.SGD(1.0, clip_norm=2.0, weight_decay=0.5).step([W], 1.0)
    assert W.value[0, 0] == pytest.approx(1.0 - (2.0 + 0.5 * 1.0))


@pytest.mark.parametrize("name", sorted(sn.OPTIMIZERS))
def test_optimizer_state_round_trips(name):
    """Two steps, save, load into a fresh optimizer, third step: the same as three steps."""
    kwargs = {"lr": 0.05}
    straight = run_steps(sn.get_optimizer(name, **kwargs))
    params = make_params()
    first = sn.get_optimizer(name, **kwargs)
    run_steps(first, steps=2, params=params)
    state = first.state_dict(params)
    saved = first.slots + ((first.step_key,) if first.step_key else ())  # Adam's count
    assert set(state) == {f"{p.name}.{s}" for p in params for s in saved}
    second = sn.get_optimizer(name, **kwargs)
    second.load_state_dict(params, state)
    for p, g in zip(params, grads_at(2), strict=True):
        p.grad[...] = g
    second.step(params, 0.05)
    for a, b in zip(straight, params, strict=True):
        assert np.array_equal(a, b.value)


def test_adam_step_counter_is_saved():
    params = make_params()
    opt = sn.Adam(0.01)
    run_steps(opt, steps=2, params=params)
    state = opt.state_dict(params)
    assert state["layers.0.W.step"].dtype == np.int64 and state["layers.0.W.step"][0] == 2
    bad = dict(state, **{"layers.0.W.m": np.zeros((5, 5))})
    with pytest.raises(sn.ShapeError, match="layers.0.W.m"):
        sn.Adam(0.01).load_state_dict(params, bad)


@pytest.mark.parametrize("make", [
    lambda: sn.Adam(0.01, beta1=1.0),
    lambda: sn.Adam(0.01, beta2=-0.1),
    lambda: sn.RMSProp(0.01, rho=1.5),
    lambda: sn.AdaGrad(0.01, eps=0),
    lambda: sn.SGD(0.1, weight_decay=-0.1),
    lambda: sn.SGD(0.1, clip_norm=0.0),
    lambda: sn.SGDMomentum(0.1, nesterov="yes"),
    lambda: sn.SGD(0.1, decay_kwargs={"step_size": 2}),  # no schedule takes it
    lambda: sn.SGD(0.1, decay_type="step"),  # step_size missing
    lambda: sn.get_optimizer("adam", momentum=0.9),
    lambda: sn.get_optimizer("adamax"),
], ids=["beta1", "beta2", "rho", "eps", "weight_decay", "clip_norm", "nesterov",
        "decay_kwargs", "step_size", "option", "name"])
def test_bad_optimizer_arguments(make):
    with pytest.raises(sn.ConfigError):
        make()


def test_bad_value_is_quoted():
    with pytest.raises(sn.ConfigError, match="-0.5"):
        sn.Adam(0.01, weight_decay=-0.5)


# -- against torch.optim ---------------------------------------------------------------
def steps_like(ref, optimizer) -> list[np.ndarray]:
    """W and B after our ``optimizer`` takes the steps of the reference: its start values
    and its gradients."""
    gW, gB = ref["optimizer_gW"], ref["optimizer_gB"]
    return run_steps(optimizer, steps=len(gW),
                     params=make_params(ref["optimizer_W0"], ref["optimizer_B0"]),
                     grads=lambda t: [gW[t], gB[t]])


#: ours for each case of the generator's OPTIMIZERS (same hyper-parameters, weight decay
#: on W only in both)
TORCH_OPTIMIZERS = {
    "sgd": lambda: sn.SGD(0.1, weight_decay=0.1),
    "sgd_momentum": lambda: sn.SGDMomentum(0.1, momentum=0.8),
    "nesterov": lambda: sn.SGDNesterov(0.1, momentum=0.8, weight_decay=0.05),
    "adagrad": lambda: sn.AdaGrad(0.05, weight_decay=0.1),
    "rmsprop": lambda: sn.RMSProp(0.01, rho=0.9, eps=1e-8, weight_decay=0.1),
    "adam": lambda: sn.Adam(0.02, beta1=0.8, beta2=0.95, eps=1e-7, weight_decay=0.1),
    "adamw": lambda: sn.AdamW(0.02, beta1=0.8, beta2=0.95, eps=1e-7, weight_decay=0.1),
    "adam_defaults": lambda: sn.Adam(),
    "adamw_defaults": lambda: sn.AdamW(),
    "adagrad_defaults": lambda: sn.AdaGrad(),
}


def test_every_torch_optimizer_case_is_compared():
    assert set(TORCH_OPTIMIZERS) == set(generator().OPTIMIZERS)


@pytest.mark.parametrize("name", TORCH_OPTIMIZERS)
def test_optimizer_matches_torch(name, torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    W, B = steps_like(ref, TORCH_OPTIMIZERS[name]())
    np.testing.assert_allclose(W, ref[f"optimizer_{name}_W"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(B, ref[f"optimizer_{name}_B"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("clip", generator().CLIP_NORMS)
def test_clip_norm_matches_torch(clip, torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    W, B = steps_like(ref, sn.SGDMomentum(0.1, momentum=0.9, clip_norm=clip))
    key = generator().clip_key(clip)
    # torch divides by (norm + 1e-6), we by the norm: the same to about 1e-7
    np.testing.assert_allclose(W, ref[f"{key}_W"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(B, ref[f"{key}_B"], rtol=1e-6, atol=1e-8)


# =======================================================================================
# Schedules
# =======================================================================================
def test_step_decay():
    s = sn.get_schedule("step", 0.1, 8, step_size=3, gamma=0.5)
    assert s.rates() == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    floored = sn.get_schedule("step", 0.1, 8, final_lr=0.04, step_size=3, gamma=0.5)
    assert floored.rates() == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.04, 0.04])
    assert isinstance(s, sn.StepDecay) and s.gamma == 0.5


def test_cosine_decay():
    s = sn.get_schedule("cosine", 1.0, 5)  # final_lr defaults to 0
    half = [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    assert s.rates() == pytest.approx(half, abs=1e-15)
    s = sn.get_schedule("cosine", 1.0, 5, final_lr=0.2)
    assert s.rates() == pytest.approx([0.2 + 0.8 * h for h in half])
    assert s(4) == 0.2 and s(0) == 1.0


def test_warmup_then_linear_decay():
    # ramp lr*(e+1)/(W+1) for W = 3 epochs, then linear from lr to final_lr over the other 4
    s = sn.get_schedule("linear", 1.0, 7, final_lr=0.1, warmup_epochs=3)
    assert isinstance(s, sn.Warmup)
    assert s.rates() == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.7, 0.4, 0.1])


@pytest.mark.parametrize("decay,kwargs", [
    ("none", {}), ("exponential", {"final_lr": 0.01}), ("step", {"step_size": 1}),
    ("cosine", {}), ("plateau", {})])
def test_warmup_wraps_any_schedule(decay, kwargs):
    plain = sn.get_schedule(decay, 0.1, 5, **kwargs)
    warm = sn.get_schedule(decay, 0.1, 7, warmup_epochs=2, **kwargs)
    assert warm.rates()[:2] == pytest.approx([0.1 / 3, 0.2 / 3])
    assert warm.rates()[2:] == pytest.approx(plain.rates())


def plateau_rates(schedule, losses):
    changed = [schedule.observe(loss, epoch) for epoch, loss in enumerate(losses)]
    return schedule.rates(), changed


PLATEAU_LOSSES = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85]


def test_reduce_on_plateau_with_scripted_losses():
    s = sn.get_schedule("plateau", 1.0, 10, factor=0.5, patience=2)
    rates, changed = plateau_rates(s, PLATEAU_LOSSES)
    # epochs 2, 3, 4 do not improve on 0.9: the third exceeds patience 2 -> halve from 5;
    # 0.8 after epoch 5 is a new best; 6, 7, 8 do not improve -> halve again from 9
    assert rates == [1.0] * 5 + [0.5] * 4 + [0.25]
    assert changed == [False] * 4 + [True] + [False] * 3 + [True, False]
    assert s.drops == [5, 9]


def test_reduce_on_plateau_threshold_and_floor():
    # 0.9999 is not 1e-4 (relative) better than 1.0: it counts as no improvement
    s = sn.get_schedule("plateau", 1.0, 6, factor=0.1, patience=0, min_lr=0.05)
    rates, changed = plateau_rates(s, [1.0, 0.9999, 0.9999, 0.9999, 0.9999])
    assert rates == pytest.approx([1.0, 1.0, 0.1, 0.05, 0.05, 0.05])
    assert changed == [False, True, True, False, False]  # at the floor: nothing to drop
    # final_lr means min_lr for a plateau
    assert sn.get_schedule("plateau", 1.0, 3, final_lr=0.05).min_lr == 0.05
    with pytest.raises(sn.ConfigError, match="min_lr"):
        sn.get_schedule("plateau", 1.0, 3, final_lr=0.05, min_lr=0.01)


def test_reduce_on_plateau_state_round_trips_through_json():
    s = sn.get_schedule("plateau", 1.0, 10, factor=0.5, patience=2)
    plateau_rates(s, PLATEAU_LOSSES[:7])
    state = json.loads(json.dumps(s.state_dict()))
    t = sn.get_schedule("plateau", 1.0, 10, factor=0.5, patience=2)
    t.load_state_dict(state)
    for epoch in range(7, 10):
        assert s.observe(PLATEAU_LOSSES[epoch], epoch) == t.observe(PLATEAU_LOSSES[epoch], epoch)
    assert s.rates() == t.rates() and t.drops == [5, 9]
    with pytest.raises(sn.ConfigError):
        sn.get_schedule("cosine", 1.0, 3).load_state_dict(state)


def test_warmup_hides_its_epochs_from_plateau():
    s = sn.get_schedule("plateau", 1.0, 12, factor=0.5, patience=0, warmup_epochs=2)
    # losses after epochs 0 and 1 (warm-up) are ignored, except the last one (epoch 1):
    # it is the baseline; epoch 2 does not improve on it -> drop from epoch 3
    for epoch, loss in enumerate([0.1, 1.0, 1.0, 0.5]):
        s.observe(loss, epoch)
    assert s.rates()[:6] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5, 0.5, 0.5])


def test_plateau_matches_torch(torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    losses = ref["plateau_losses"].tolist()
    ours = sn.get_schedule("plateau", 1.0, len(losses) + 1, factor=0.5, patience=2,
                            min_lr=0.2)
    rates = []  # the rate of each epoch, then of the one after the last loss
    for epoch, loss in enumerate(losses):
        rates.append(ours(epoch))
        ours.observe(loss, epoch)
    rates.append(ours(len(losses)))
    assert rates == pytest.approx(ref["plateau_lr"].tolist())


def test_step_and_cosine_match_torch(torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    epochs = len(ref["step_lr"])
    for name, ours in [("step", sn.get_schedule("step", 0.3, epochs, step_size=2, gamma=0.5)),
                       ("cosine", sn.get_schedule("cosine", 0.3, epochs, final_lr=0.01))]:
        assert ours.rates() == pytest.approx(ref[f"{name}_lr"].tolist(), rel=1e-12), name


@pytest.mark.parametrize("decay,kwargs", [
    ("step", {}),  # step_size missing
    ("step", {"step_size": 0}),
    ("step", {"step_size": 2, "gamma": 1.5}),
    ("cosine", {"final_lr": 2.0}),  # above lr
    ("plateau", {"factor": 1.0}),
    ("plateau", {"patience": -1}),
    ("linear", {}),  # final_lr missing
    ("none", {"step_size": 3}),
    ("cosine", {"warmup_epochs": -1}),
    ("cosine", {"gamma": 0.5}),
])
def test_bad_schedule_options(decay, kwargs):
    with pytest.raises(sn.ConfigError):
        sn.get_schedule(decay, 1.0, 5, **kwargs)


# =======================================================================================
# Activations
# =======================================================================================
EDGE = np.array([[-1000.0, -1.0, 0.0, 1.0, 1000.0]])
EXPECTED = {  # f at EDGE, worked out by hand
    "leaky_relu": [-10.0, -0.01, 0.0, 1.0, 1000.0],
    "elu": [-1.0, math.expm1(-1.0), 0.0, 1.0, 1000.0],
    "gelu": [0.0, -0.15880800939172324, 0.0, 0.8411919906082768, 1000.0],
    "softplus": [0.0, math.log1p(math.exp(-1.0)), math.log(2.0), 1 + math.log1p(math.exp(-1.0)),
                 1000.0],
}
EXPECTED_GRAD = {
    "leaky_relu": [0.01, 0.01, 0.01, 1.0, 1.0],
    "elu": [0.0, math.exp(-1.0), 1.0, 1.0, 1.0],
    "softplus": [0.0, 1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-1.0)), 1.0],
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NEW_ACTIVATIONS)
def test_activation_edge_values(name, dtype):
    act = sn.get_activation(name)
    x = EDGE.astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = act.forward(x)
        grad = act.backward(np.ones_like(x))
    assert out.dtype == x.dtype and grad.dtype == x.dtype
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    rtol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out[0], EXPECTED[name], rtol=rtol, atol=1e-30)
    if name in EXPECTED_GRAD:
        np.testing.assert_allclose(grad[0], EXPECTED_GRAD[name], rtol=rtol, atol=1e-30)


def test_activation_options_and_config():
    leaky = sn.get_activation("leaky_relu", negative_slope=0.2)
    assert leaky.forward(np.array([[-2.0, 3.0]])).tolist() == [[-0.4, 3.0]]
    assert leaky.config() == {"negative_slope": 0.2}
    elu = sn.get_activation("elu", alpha=2.0)
    assert elu.forward(np.array([[-1.0]]))[0, 0] == pytest.approx(2 * math.expm1(-1))
    for name in NEW_ACTIVATIONS:
        act = sn.get_activation(name)
        again = sn.get_activation(name, **act.config())
        assert type(again) is type(act) and again.config() == act.config()
    with pytest.raises(sn.ConfigError, match="-0.1"):
        sn.LeakyReLU(-0.1)
    with pytest.raises(sn.ConfigError, match="alpha"):
        sn.get_activation("gelu", alpha=1.0)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_elu_gradient_with_alpha(alpha):
    x = np.random.default_rng(0).uniform(0.1, 2.0, (5, 4)) * np.random.default_rng(1).choice(
        [-1.0, 1.0], (5, 4))
    assert check_operation(sn.ELU(alpha), x)["passed"]
    assert check_operation(sn.LeakyReLU(0.3), x)["passed"]


def test_activations_match_torch(torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    x = ref["activation_x"]
    # torch's are LeakyReLU(0.05), ELU(1.5), GELU(approximate="tanh") and Softplus()
    ours = {"leaky_relu": sn.LeakyReLU(0.05), "elu": sn.ELU(1.5), "gelu": sn.GELU(),
            "softplus": sn.Softplus()}
    for name, activation in ours.items():
        np.testing.assert_allclose(activation.forward(x), ref[f"activation_{name}"],
                                   rtol=1e-12, atol=1e-15, err_msg=name)


# =======================================================================================
# Losses and accuracy
# =======================================================================================
def test_binary_cross_entropy_golden_values():
    z = np.array([[2.0], [-1.0], [0.0]])
    y = np.array([[1.0], [0.0], [1.0]])
    loss = sn.BinaryCrossEntropy()
    s = 1 / (1 + np.exp(-z))
    written_out = float(np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s)))
    by_hand = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) + math.log(2)) / 3
    assert loss.forward(z, y) == pytest.approx(written_out, rel=1e-12)
    assert loss.forward(z, y) == pytest.approx(by_hand, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (s - y) / 3, rtol=1e-12)
    np.testing.assert_allclose(loss.predictions(z), s, rtol=1e-12)
    np.testing.assert_allclose(loss.probabilities(z), np.hstack([1 - s, s]), rtol=1e-12)
    assert loss.task == "classification"


def test_mae_and_huber_golden_values():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [5.0, 1.0]])
    mae = sn.get_loss("mae")
    assert mae.forward(p, y) == 3.0  # (1 + 0 + 2 + 3) / batch of 2
    np.testing.assert_array_equal(mae.backward(), [[0.5, 0.0], [-0.5, 0.5]])

    p = np.array([[0.5, -2.0], [3.0, 0.0]])
    y = np.zeros((2, 2))
    huber = sn.get_loss("huber")
    # 0.5 * 0.5^2 + (2 - 0.5) + (3 - 0.5) + 0 = 4.125, over a batch of 2
    assert huber.forward(p, y) == pytest.approx(2.0625)
    np.testing.assert_allclose(huber.backward(), [[0.25, -0.5], [0.5, 0.0]])
    huber2 = sn.get_loss("huber", delta=2.0)
    # 0.125 + 0.5 * 4 + 2 * (3 - 1) + 0 = 6.125
    assert huber2.forward(p, y) == pytest.approx(3.0625)
    assert huber2.config() == {"delta": 2.0}
    with pytest.raises(sn.ConfigError, match="0"):
        sn.Huber(delta=0)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "mae", "huber"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_at_edge_values(name, dtype):
    z = np.array([[-1000.0], [1000.0], [0.0], [1000.0], [-1000.0]], dtype=dtype)
    y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]], dtype=dtype)
    loss = sn.get_loss(name)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        value = loss.forward(z, y)
        grad = loss.backward()
    assert math.isfinite(value) and np.isfinite(grad).all() and grad.dtype == z.dtype
    if name == "binary_cross_entropy":
        # two confidently wrong rows cost 1000 each, the sure right ones nothing, 0 log 2
        assert value == pytest.approx((2000 + math.log(2)) / 5, rel=1e-6)
        np.testing.assert_allclose(grad[:, 0], [-0.2, 0.2, -0.1, 0.0, 0.0], atol=1e-7)


def test_binary_cross_entropy_refuses_wrong_shapes_and_targets():
    loss = sn.BinaryCrossEntropy()
    with pytest.raises(sn.ShapeError, match=r"\(3, 2\)"):
        loss.forward(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(sn.DataError, match="2.0"):
        loss.forward(np.zeros((2, 1)), np.array([[0.0], [2.0]]))


def test_losses_match_torch(torch_reference):
    ref = torch_reference(TORCH_BLOCKS)
    assert sn.BinaryCrossEntropy().forward(ref["loss_z"], ref["loss_y"]) == pytest.approx(
        float(ref["loss_bce_mean"]), rel=1e-12)
    # ours are sums over the batch divided by its rows
    p, t = ref["loss_p"], ref["loss_t"]
    assert sn.MeanAbsoluteError().forward(p, t) == pytest.approx(
        float(ref["loss_l1_sum"]) / len(p), rel=1e-12)
    for delta, theirs in zip(ref["loss_huber_deltas"], ref["loss_huber_sum"], strict=True):
        assert sn.Huber(float(delta)).forward(p, t) == pytest.approx(theirs / len(p),
                                                                     rel=1e-12), delta


def test_accuracy_for_a_single_logit_column():
    logits = np.array([[2.0], [-1.0], [0.3], [-0.2]])
    targets = np.array([[1.0], [0.0], [0.0], [0.0]])
    # class 1 where the logit is > 0: 1, 0, 1, 0 -> three of four right
    assert sn.accuracy(logits, targets) == 0.75
    # one-hot rows still go by argmax
    assert sn.accuracy(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([[0, 1], [0, 1]])) == 0.5


# =======================================================================================
# Initialisers
# =======================================================================================
@pytest.mark.parametrize("name", ["lecun", "lecun_uniform"])
def test_lecun_variance(name):
    init = sn.get_initializer(name)
    W = init((400, 300), np.random.default_rng(0), np.float64)
    assert init.std(400, 300) == pytest.approx(1 / math.sqrt(400))  # fan_in only
    assert W.std() == pytest.approx(0.05, rel=0.02)
    assert abs(W.mean()) < 0.002
    if name == "lecun_uniform":
        assert np.abs(W).max() <= math.sqrt(3 / 400)
        assert np.abs(W).max() > 0.99 * math.sqrt(3 / 400)


# =======================================================================================
# Batch normalisation
# =======================================================================================
def bn_net(dtype="float64", activation="tanh", loss="softmax_cross_entropy", seed=0, n_in=6):
    return sn.NeuralNetwork([sn.Dense(5, activation, batch_norm=True), sn.Dense(3)], loss,
                            seed=seed, dtype=dtype).build(n_in)


def test_batch_norm_layer_parameters_and_buffers():
    net = bn_net()
    assert [p.name for p in net.params()] == ["layers.0.W", "layers.0.gamma", "layers.0.beta",
                                              "layers.1.W", "layers.1.B"]
    state = net.state_dict()
    assert {"layers.0.running_mean", "layers.0.running_var"} <= set(state)
    np.testing.assert_array_equal(state["layers.0.running_var"], np.ones((1, 5)))
    assert "batch_norm" in net.layers[0].describe()
    with pytest.raises(sn.ConfigError, match="normal"):
        sn.Dense(3, batch_norm=True, bias_init="normal")


def test_batch_norm_training_statistics():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (50, 4)) * np.array([1.0, 10.0, 0.1, 5.0])
    bn = sn.BatchNorm(4, "float64")
    out = bn.forward(x)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    var = x.var(axis=0)
    np.testing.assert_allclose(out.std(axis=0), np.sqrt(var / (var + 1e-5)), rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=2e-4)  # eps shrinks it a little
    # running averages, PyTorch's convention: 0.9 old + 0.1 batch (unbiased variance)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1, keepdims=True))


def test_batch_norm_inference_uses_running_statistics():
    rng = np.random.default_rng(2)
    bn = sn.BatchNorm(3, "float64")
    bn.gamma.value[...] = [[2.0, 1.0, 0.5]]
    bn.beta.value[...] = [[0.0, 1.0, -1.0]]
    bn.running_mean[...] = [[1.0, 2.0, 3.0]]
    bn.running_var[...] = [[4.0, 1.0, 0.25]]
    x = rng.normal(size=(4, 3))
    out = bn.forward(x, inference=True)
    expected = (x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5) \
        * [2.0, 1.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, [[1.0, 2.0, 3.0]])  # not updated
    one_row = bn.forward(x[:1], inference=True)  # a single row is fine at inference
    np.testing.assert_allclose(one_row, expected[:1], rtol=1e-12)
    with pytest.raises(sn.ShapeError, match="at least 2 rows"):
        bn.forward(x[:1])


def test_batch_norm_state_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 6))
    net = bn_net()
    for _ in range(3):  # move the running statistics away from their start
        net.forward(X * rng.uniform(0.5, 2.0), inference=False)
    before = net.predict(X)
    runs.save_arrays(tmp_path / "w.safetensors", net.state_dict())
    arrays, _ = runs.load_arrays(tmp_path / "w.safetensors")
    fresh = bn_net(seed=99)
    assert not np.allclose(fresh.predict(X), before)
    fresh.load_state_dict(arrays)
    np.testing.assert_array_equal(fresh.predict(X), before)
    assert not np.array_equal(arrays["layers.0.running_mean"], np.zeros((1, 5)))


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
def test_batch_norm_gradient_check(activation):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 6))
    y = np.eye(3)[rng.integers(0, 3, 8)]
    net = bn_net(activation=activation)
    before = net.state_dict()
    rows = check_network(net, X, y)
    assert [r["param"] for r in rows][:3] == ["layers.0.W", "layers.0.gamma", "layers.0.beta"]
    assert all(r["passed"] for r in rows), rows
    for name, value in net.state_dict().items():  # the check puts the buffers back
        assert np.array_equal(value, before[name]), name


def test_batch_norm_operation_gradient_check_with_scale_and_shift():
    rng = np.random.default_rng(5)
    bn = sn.BatchNorm(4, "float64")
    bn.gamma.value[...] = rng.uniform(0.5, 2.0, (1, 4))
    bn.beta.value[...] = rng.normal(size=(1, 4))
    result = check_operation(bn, rng.normal(2.0, 3.0, (7, 4)))
    assert result["passed"], result
    assert set(result["params"]) == {"gamma", "beta"}


def batch_norm_like(ref) -> dict[str, np.ndarray]:
    """Our BatchNorm(4) on the reference's inputs: its ``batchnorm_*`` arrays, ours."""
    bn = sn.BatchNorm(4, "float64")
    bn.gamma.value[...] = ref["batchnorm_gamma"]
    bn.beta.value[...] = ref["batchnorm_beta"]
    steps = {k: [] for k in ("y", "dx", "dgamma", "dbeta")}
    for x, dy in zip(ref["batchnorm_x"], ref["batchnorm_dy"], strict=True):
        steps["y"].append(bn.forward(x))
        steps["dx"].append(bn.backward(dy))
        steps["dgamma"].append(bn.gamma.grad[0].copy())
        steps["dbeta"].append(bn.beta.grad[0].copy())
    ours = {f"batchnorm_{k}": np.stack(v) for k, v in steps.items()}
    ours["batchnorm_running_mean"] = bn.running_mean[0]
    ours["batchnorm_running_var"] = bn.running_var[0]
    ours["batchnorm_eval_y"] = bn.forward(ref["batchnorm_eval_x"], inference=True)
    return ours


def test_batch_norm_matches_torch(torch_reference):
    ref = torch_reference(TORCH_BLOCKS)  # BatchNorm1d(4): momentum 0.1, eps 1e-5
    ours = batch_norm_like(ref)
    for key, tolerance in [("y", dict(rtol=1e-10, atol=1e-12)),
                           ("dx", dict(rtol=1e-9, atol=1e-12)),
                           ("dgamma", dict(rtol=1e-10)), ("dbeta", dict(rtol=1e-10)),
                           ("running_mean", dict(rtol=1e-12)), ("running_var", dict(rtol=1e-12)),
                           ("eval_y", dict(rtol=1e-10, atol=1e-12))]:
        name = f"batchnorm_{key}"
        np.testing.assert_allclose(ours[name], ref[name], err_msg=name, **tolerance)


# =======================================================================================
# Probabilities
# =======================================================================================
def test_predict_proba():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5, 4))
    binary = sn.NeuralNetwork([sn.Dense(3, "elu"), sn.Dense(1)], "binary_cross_entropy", seed=1)
    raw = binary.predict(X, raw=True)
    p = 1 / (1 + np.exp(-raw.astype(np.float64)))
    np.testing.assert_allclose(binary.predict(X), p, rtol=1e-6)
    proba = binary.predict_proba(X)
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba[:, 1:], p, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)

    multi = sn.NeuralNetwork([sn.Dense(3, "gelu"), sn.Dense(4)], "softmax_cross_entropy", seed=1)
    proba = multi.predict_proba(X)
    assert proba.shape == (5, 4)
    np.testing.assert_allclose(proba, multi.predict(X))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)

    regression = sn.NeuralNetwork([sn.Dense(1)], "huber", seed=1)
    with pytest.raises(sn.ConfigError, match="huber"):
        regression.predict_proba(X)


# =======================================================================================
# Training with the new blocks
# =======================================================================================
@pytest.fixture(scope="module")
def digits():
    return prepare(load_dataset("digits"), validation=0.2, seed=0)


def test_adam_trains_digits(digits):
    net = sn.NeuralNetwork([sn.Dense(32, "gelu", weight_init="lecun"), sn.Dense(10)],
                           "softmax_cross_entropy", seed=0)
    trainer = sn.Trainer(net, sn.Adam(0.005, weight_decay=1e-4, clip_norm=5.0,
                                      decay_type="cosine", final_lr=0.0005,
                                      decay_kwargs={"warmup_epochs": 1}))
    history = trainer.fit(digits.X_train, digits.Y_train, digits.X_val, digits.Y_val,
                          epochs=6, eval_every=1, batch_size=32, seed=0)
    assert history[-1]["accuracy"] > 0.9
    # one warm-up epoch at half the rate, then cosine from 0.005 down to 0.0005
    assert [r["lr"] for r in history][:2] == pytest.approx([0.0025, 0.005])
    assert history[-1]["lr"] == pytest.approx(0.0005)


def test_binary_cross_entropy_trains_digits(digits):
    """Even against odd digits, one logit, batch-normalised hidden layer, AdamW."""
    def odd(Y):
        return (Y.argmax(axis=1) % 2).astype(np.float32).reshape(-1, 1)

    net = sn.NeuralNetwork([sn.Dense(32, "leaky_relu", batch_norm=True), sn.Dense(1)],
                           "binary_cross_entropy", seed=0)
    trainer = sn.Trainer(net, sn.AdamW(0.01))
    history = trainer.fit(digits.X_train, odd(digits.Y_train), digits.X_val, odd(digits.Y_val),
                          epochs=5, eval_every=5, batch_size=30, seed=0)
    assert history[-1]["accuracy"] > 0.9
    assert "mae" not in history[-1]
    proba = net.predict_proba(digits.X_val[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)


class _StopAfter(sn.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch):
        if epoch + 1 == self.epoch:
            trainer.stop_requested = True


def test_resume_is_bit_identical_with_adam_plateau_and_batch_norm(digits, tmp_path):
    """Adam's moments and step counts, the plateau schedule's reductions and the running
    statistics all go through a checkpoint file and come back exactly."""
    X, Y = digits.X_train[:400], digits.Y_train[:400]
    Xv, Yv = digits.X_val[:200], digits.Y_val[:200]

    def setup():
        net = sn.NeuralNetwork([sn.Dense(16, "softplus", batch_norm=True), sn.Dense(10)],
                               "softmax_cross_entropy", seed=3)
        # patience 0 and a 50% threshold: the rate halves after nearly every evaluation
        opt = sn.Adam(0.01, decay_type="plateau",
                      decay_kwargs={"factor": 0.5, "patience": 0, "threshold": 0.5})
        return net, sn.Trainer(net, opt)

    fit = dict(epochs=6, eval_every=1, batch_size=50, seed=2)
    net, trainer = setup()
    straight = trainer.fit(X, Y, Xv, Yv, **fit)
    lrs = [r["lr"] for r in straight]
    assert lrs[0] == 0.01 and lrs[-1] < 0.01  # the plateau schedule did act

    net2, trainer2 = setup()
    trainer2.fit(X, Y, Xv, Yv, callbacks=[_StopAfter(3)], **fit)
    meta, arrays = trainer2.checkpoint()
    assert meta["schedule"]["drops"]  # a reduction happened before the interruption
    runs.save_arrays(tmp_path / "checkpoint.safetensors", arrays, meta)
    arrays, meta = runs.load_arrays(tmp_path / "checkpoint.safetensors")

    net3, trainer3 = setup()
    resumed = trainer3.fit(X, Y, Xv, Yv, resume=(meta, arrays), **fit)
    assert [r["lr"] for r in resumed] == lrs
    for name, value in net.state_dict().items():
        assert np.array_equal(value, net3.state_dict()[name]), name
