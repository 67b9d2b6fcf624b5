"""Optimizers and learning-rate schedules against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.nn.core import Param, packed
from scratchnet.nn.optimizers import OPTIMIZERS
from scratchnet.options import options

GRADS = [[0.5, -1.0], [0.25, 2.0], [-1.5, 0.5]]  # the gradient at steps 1, 2, 3
START = [1.0, -2.0]


def run_steps(optimizer, lr, grads=GRADS, start=START):
    p = Param(np.array([start], dtype=np.float64), "w")
    for g in grads:
        p.grad[...] = [g]
        optimizer.step([p], lr)
    return p


# -- golden values ------------------------------------------------------------------------
def test_sgd_three_steps():
    lr = 0.1
    p = run_steps(sn.SGD(lr), lr)
    # by hand: w -= lr * g each step
    # w0: 1.0 - 0.1*(0.5 + 0.25 - 1.5) = 1.0 + 0.075 = 1.075
    # w1: -2.0 - 0.1*(-1.0 + 2.0 + 0.5) = -2.0 - 0.15 = -2.15
    np.testing.assert_allclose(p.value, [[1.075, -2.15]], rtol=1e-14)


def test_sgd_momentum_three_steps():
    lr, m = 0.1, 0.9
    opt = sn.SGDMomentum(lr, momentum=m)
    p = run_steps(opt, lr)
    # by hand, v = m*v + lr*g; w -= v
    # entry 0: v1 = 0.05;            w = 0.95
    #          v2 = 0.045 + 0.025 = 0.07;     w = 0.88
    #          v3 = 0.063 - 0.15 = -0.087;    w = 0.967
    # entry 1: v1 = -0.1;            w = -1.9
    #          v2 = -0.09 + 0.2 = 0.11;       w = -2.01
    #          v3 = 0.099 + 0.05 = 0.149;     w = -2.159
    np.testing.assert_allclose(p.value, [[0.967, -2.159]], rtol=1e-13)
    np.testing.assert_allclose(opt.state[p]["velocity"], [[-0.087, 0.149]], rtol=1e-13)


def test_momentum_zero_is_sgd():
    a = run_steps(sn.SGDMomentum(0.1, momentum=0.0), 0.1)
    b = run_steps(sn.SGD(0.1), 0.1)
    np.testing.assert_allclose(a.value, b.value, rtol=1e-15)


def test_step_uses_the_learning_rate_it_is_handed():
    p = run_steps(sn.SGD(0.1), 0.01, grads=[[1.0, 1.0]])
    np.testing.assert_allclose(p.value, [[0.99, -2.01]])


def test_state_is_kept_per_parameter():
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    a = Param(np.zeros((2, 2)), "a")
    b = Param(np.zeros((2, 2)), "b")
    a.grad[...] = 1.0
    b.grad[...] = -3.0
    opt.step([a, b], 0.1)
    va, vb = opt.state[a]["velocity"], opt.state[b]["velocity"]
    assert va is not vb
    np.testing.assert_allclose(va, 0.1)
    np.testing.assert_allclose(vb, -0.3)
    a.grad[...] = 0.0
    opt.step([a, b], 0.1)
    np.testing.assert_allclose(opt.state[a]["velocity"], 0.09)  # only momentum left
    np.testing.assert_allclose(opt.state[b]["velocity"], -0.3 * 0.9 - 0.3)


# -- schedules: the notebook's per-epoch formulas -----------------------------------------
def notebook_linear(lr, final_lr, epochs):
    rates, current = [], lr
    for _ in range(epochs):
        rates.append(current)
        current -= (lr - final_lr) / (epochs - 1)
    return rates


def notebook_exponential(lr, final_lr, epochs):
    rates, current = [], lr
    for _ in range(epochs):
        rates.append(current)
        current *= (final_lr / lr) ** (1.0 / (epochs - 1))
    return rates


def test_linear_decay_over_five_epochs():
    sched = sn.LinearDecay(lr=0.15, epochs=5, final_lr=0.05)
    expected = notebook_linear(0.15, 0.05, 5)
    np.testing.assert_allclose(expected, [0.15, 0.125, 0.1, 0.075, 0.05], rtol=1e-12)
    np.testing.assert_allclose([sched(e) for e in range(5)], expected, rtol=1e-12)
    np.testing.assert_allclose(sched.rates(), expected, rtol=1e-12)


def test_exponential_decay_over_five_epochs():
    sched = sn.ExponentialDecay(lr=0.2, epochs=5, final_lr=0.05)
    expected = notebook_exponential(0.2, 0.05, 5)
    # (0.05 / 0.2) ** (1/4) = 0.25 ** 0.25 = 1/sqrt(2)
    np.testing.assert_allclose(expected, [0.2 / 2 ** (e / 2) for e in range(5)], rtol=1e-12)
    np.testing.assert_allclose([sched(e) for e in range(5)], expected, rtol=1e-12)


@pytest.mark.parametrize("decay, final_lr", [("linear", 0.05), ("exponential", 0.05), (None, None)])
def test_optimizer_schedule(decay, final_lr):
    opt = sn.SGDMomentum(0.2, momentum=0.9, final_lr=final_lr, decay_type=decay)
    rates = opt.schedule(5).rates()
    expected = {"linear": notebook_linear(0.2, 0.05, 5),
                "exponential": notebook_exponential(0.2, 0.05, 5),
                None: [0.2] * 5}[decay]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


@pytest.mark.parametrize("cls", [sn.LinearDecay, sn.ExponentialDecay])
def test_one_epoch_uses_lr(cls):
    assert cls(lr=0.3, epochs=1, final_lr=0.1)(0) == 0.3


def test_linear_decay_to_zero_ends_at_zero():
    sched = sn.LinearDecay(lr=0.1, epochs=5, final_lr=0.0)
    assert sched(4) == 0.0
    assert all(r > 0 for r in sched.rates()[:-1])


def test_exponential_decay_to_zero_is_refused():
    with pytest.raises(sn.ConfigError, match="final_lr"):
        sn.ExponentialDecay(lr=0.1, epochs=5, final_lr=0.0)
    with pytest.raises(sn.ConfigError):
        sn.SGD(0.1, final_lr=0, decay_type="exponential")


def test_bad_schedule_arguments():
    with pytest.raises(sn.ConfigError, match="zigzag"):
        sn.SGD(0.1, final_lr=0.01, decay_type="zigzag")
    with pytest.raises(sn.ConfigError, match="final_lr"):
        sn.SGD(0.1, decay_type="linear")  # no final_lr
    with pytest.raises(sn.ConfigError, match="0.5"):
        sn.LinearDecay(lr=0.1, epochs=5, final_lr=0.5)  # decays upwards


# -- every registered optimizer -----------------------------------------------------------
def make_optimizer(name):
    cls = OPTIMIZERS[name]
    return cls(0.05) if "lr" in [o.name for o in options(cls)] else cls()


def quadratic_run(opt, steps, params=None):
    """Minimise sum((w - 3)^2) over two parameters; returns the parameters."""
    if params is None:
        params = [Param(np.array([[0.0, 1.0, -1.0]]), "a"), Param(np.array([[2.0], [5.0]]), "b")]
    for _ in range(steps):
        for p in params:
            p.grad[...] = 2 * (p.value - 3.0)
        opt.step(params, opt.lr)
    return params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_descends(name):
    opt = make_optimizer(name)
    params = quadratic_run(opt, 0)
    before = sum(float(np.sum((p.value - 3) ** 2)) for p in params)
    quadratic_run(opt, 20, params)
    after = sum(float(np.sum((p.value - 3) ** 2)) for p in params)
    assert after < before * 0.9


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_dict_round_trip(name):
    """Saving the state mid-run and loading it into a fresh optimizer continues the run
    bit for bit (what checkpoint resume relies on)."""
    straight = make_optimizer(name)
    expected = quadratic_run(straight, 5)

    first = make_optimizer(name)
    params = quadratic_run(first, 3)
    state = first.state_dict(params)
    assert all(k.split(".")[0] in ("a", "b") for k in state)
    state = {k: np.array(v) for k, v in state.items()}  # as if read back from a file
    second = make_optimizer(name)
    second.load_state_dict(params, state)
    quadratic_run(second, 2, params)
    for p, q in zip(params, expected):
        assert np.array_equal(p.value, q.value), name


def test_momentum_state_dict_names_and_values():
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    p = run_steps(opt, 0.1)
    state = opt.state_dict([p])
    assert list(state) == ["w.velocity"]
    np.testing.assert_allclose(state["w.velocity"], [[-0.087, 0.149]], rtol=1e-13)
    state["w.velocity"][...] = 0  # a copy
    assert opt.state[p]["velocity"][0, 0] != 0


def test_the_blas_updates_agree_with_numpys(monkeypatch):
    """SGD and SGD momentum go through the BLAS library's axpby/axpy where it has them:
    the same steps as NumPy's (bit for bit with OpenBLAS's kernels; to rounding, for a
    library whose axpby fuses the multiply and the add)."""
    from scratchnet.nn import blas
    from scratchnet.nn.core import Param
    from scratchnet.nn.optimizers import SGD, SGDMomentum

    for dtype, rtol in ((np.float32, 1e-5), (np.float64, 1e-13)):
        for make in (lambda: SGD(0.1), lambda: SGDMomentum(0.1, momentum=0.9)):
            runs = []
            for use_blas in (True, False):
                monkeypatch.setattr(blas, "enabled", use_blas)
                rng = np.random.default_rng(0)
                p = Param(np.linspace(-1, 1, 300, dtype=dtype).reshape(20, 15), "W")
                opt = make()
                for step in range(5):
                    p.grad[...] = rng.standard_normal(p.shape)
                    opt.step([p], 0.1)
                runs.append(p.value.copy())
            assert runs[0].dtype == dtype
            np.testing.assert_allclose(runs[0], runs[1], rtol=rtol, atol=rtol)
    monkeypatch.setattr(blas, "enabled", True)
    a = np.ones(4)
    assert not blas.sgd_step(1.0, np.ones(4, np.float32), a)  # mixed dtypes: NumPy's part
    assert not blas.sgd_step(1.0, np.ones(8)[::2], a)  # not contiguous
    np.testing.assert_array_equal(a, 1.0)  # and nothing done


def test_a_prepared_blas_step_follows_replaced_arrays():
    """The BLAS step remembers the arrays of a parameter; a parameter whose arrays are
    replaced (a new value array) is updated in the new one, never the old."""
    from scratchnet.nn import blas
    from scratchnet.nn.core import Param
    from scratchnet.nn.optimizers import SGDMomentum

    p = Param(np.ones((3, 4)), "W")
    opt = SGDMomentum(0.5, momentum=0.9)
    p.grad[...] = 1.0
    opt.step([p], 0.5)
    old = p.value
    p.value = np.ones((3, 4))
    opt.step([p], 0.5)
    np.testing.assert_allclose(old, 0.5)
    np.testing.assert_allclose(p.value, 1 - (0.9 * 0.5 + 0.5))
    assert blas.momentum_step(0.1, 0.9, np.ones(4), np.ones(4), np.ones(4)) in (True, False)


# -- packed parameters: one update of all of a network's parameters ------------------------
def packed_net(dtype="float64"):
    # W, B; W, gamma, beta (batch norm: parameters that are not weights); W, B
    return sn.NeuralNetwork([sn.Dense(7, "tanh"), sn.Dense(5, "tanh", batch_norm=True),
                             sn.Dense(3, "linear")],
                            "softmax_cross_entropy", seed=3, dtype=dtype).build(6)


def test_a_built_network_lays_its_parameters_end_to_end():
    net = packed_net()
    params = net.params()
    flat = packed(params)
    assert flat is not None and flat.value.size == sum(p.value.size for p in params)
    start = 0
    for p in params:  # each parameter is its stretch of the flat arrays, in order
        n = p.value.size
        assert np.shares_memory(p.value, flat.value[start:start + n])
        np.testing.assert_array_equal(p.value.ravel(), flat.value[start:start + n])
        assert np.shares_memory(p.grad, flat.grad[start:start + n])
        start += n
    assert packed(params[1:]) is None  # not the whole flat array
    assert packed(params[::-1]) is None  # another order
    params[0].value = params[0].value.copy()  # an array replaced
    assert packed(params) is None
    copied = __import__("copy").deepcopy(packed_net())  # a copy is packed again
    assert packed(copied.params()) is not None


def unpacked(net):
    for p in net.params():
        p.value, p.grad = p.value.copy(), p.grad.copy()
    return net


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.01, "clip_norm": 0.5}])
def test_a_packed_step_gives_the_numbers_of_one_step_per_parameter(name, options):
    """Packed (one update over the flat arrays) and unpacked (one per parameter), every
    optimizer ends on the same weights and state, bit for bit, and a checkpoint of the
    packed state resumes to the same numbers as running on."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 6)), np.eye(3)[rng.integers(0, 3, 40)]
    runs = []
    for net in (packed_net(), unpacked(packed_net())):
        opt = OPTIMIZERS[name](0.05, **options)
        for i in range(0, 40, 8):
            net.train_batch(X[i:i + 8], Y[i:i + 8])
            opt.step(net.params(), 0.05)
        runs.append((net, opt))
    (a, opt_a), (b, opt_b) = runs
    assert (packed(a.params()) is not None, packed(b.params())) == (True, None)
    for pa, pb in zip(a.params(), b.params()):
        np.testing.assert_array_equal(pa.value, pb.value)
    state_a, state_b = opt_a.state_dict(a.params()), opt_b.state_dict(b.params())
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key])
    # resume from the packed state in a new optimizer: the same next step as running on
    resumed = OPTIMIZERS[name](0.05, **options)
    resumed.load_state_dict(b.params(), state_a)
    for net, opt in ((a, opt_a), (b, resumed)):
        net.train_batch(X[:8], Y[:8])
        opt.step(net.params(), 0.05)
    for pa, pb in zip(a.params(), b.params()):
        np.testing.assert_array_equal(pa.value, pb.value)


def test_packed_state_follows_a_reset_and_a_loaded_checkpoint():
    """The flat slots are worked out again when the state is replaced (the trainer's
    restart, load_state_dict): the velocity a step uses is always the one in ``state``."""
    net = packed_net()
    p = net.params()
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    for q in p:
        q.grad[...] = 1.0
    opt.step(p, 0.1)
    assert all(np.all(opt.state[q]["velocity"] == 0.1) for q in p)
    opt.state = {}  # a fresh start: the velocity begins at zero again
    before = [q.value.copy() for q in p]
    opt.step(p, 0.1)
    for q, old in zip(p, before):
        np.testing.assert_allclose(q.value, old - 0.1)
    opt.load_state_dict(p, {f"{q.name}.velocity": np.full(q.shape, 2.0) for q in p})
    before = [q.value.copy() for q in p]
    opt.step(p, 0.1)
    for q, old in zip(p, before):
        np.testing.assert_allclose(q.value, old - (0.9 * 2.0 + 0.1))
        np.testing.assert_allclose(opt.state[q]["velocity"], 0.9 * 2.0 + 0.1)


def test_the_folded_momentum_experiment_trains_the_same_network():
    """benchmarks/fused_momentum.py times a Trainer whose first layer writes its velocity in
    the gradient's product: it must be the same training (to rounding), or the timing
    measures something else."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fused_momentum.py"
    spec = importlib.util.spec_from_file_location("fused_momentum", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from scratchnet.nn import blas
    lib = blas.library()
    if lib is None or not hasattr(lib, "scipy_cblas_sgemm64_") or "f" not in \
            blas._library_functions():
        pytest.skip("NumPy is not linked to the OpenBLAS of its wheels")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((180, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 180)]

    def network():
        return sn.NeuralNetwork([sn.Dense(32, "tanh"), sn.Dense(10, "linear")],
                                "softmax_cross_entropy", seed=1).build(784)
    trainers = []
    for fold in (False, True):
        trainer = sn.Trainer(network(), sn.SGDMomentum(bench.LR, momentum=bench.MOMENTUM))
        if fold:
            bench.folded(trainer, bench.sgemm())
        trainer.fit(X, Y, epochs=1, batch_size=bench.BATCH, seed=0, restart=False)
        trainers.append(trainer)
    plain, folded = (t.net.params() for t in trainers)
    assert not np.array_equal(plain[0].value, network().params()[0].value)  # it trained
    for p, q in zip(plain, folded):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-5, atol=1e-6)


def test_packed_adam_shares_its_step_counter_and_falls_back_when_steps_differ():
    net = packed_net()
    p = net.params()
    opt = sn.Adam(0.01)
    for q in p:
        q.grad[...] = 0.5
    opt.step(p, 0.01)
    opt.step(p, 0.01)
    assert all(opt.state[q]["step"] is opt.state[p[0]]["step"] for q in p)
    assert int(opt.state[p[0]]["step"][0]) == 2
    assert all(opt.state_dict(p)[f"{q.name}.step"][0] == 2 for q in p)
    # a checkpoint whose parameters took different numbers of steps: one update each,
    # each with its own count (the first parameter's bias correction at t = 1)
    state = opt.state_dict(p)
    state[f"{p[0].name}.step"][...] = 0
    resumed = sn.Adam(0.01)
    resumed.load_state_dict(p, state)
    resumed.step(p, 0.01)
    assert [int(resumed.state[q]["step"][0]) for q in p] == [1] + [3] * (len(p) - 1)


def test_packed_steps_follow_every_change_to_the_state_and_the_parameter_list():
    """Against one update per parameter, bit for bit: a reordered or partial list after a
    packed step (Adam's shared counter must not count each parameter's step), a cleared
    state, a slot replaced or deleted in place."""
    import copy

    def steps(net, opt, plan):
        p = net.params()
        for change in plan:
            for q in p:
                q.grad[...] = np.linspace(-1, 1, q.value.size).reshape(q.shape)
            change(opt, p)
        return [q.value.copy() for q in p], {k: v.copy() for k, v in opt.state_dict(p).items()}

    plans = {
        "reversed": [lambda o, p: o.step(p, 0.1), lambda o, p: o.step(p[::-1], 0.1),
                     lambda o, p: o.step(p, 0.1)],
        "subset": [lambda o, p: o.step(p, 0.1), lambda o, p: o.step(p[2:], 0.1),
                   lambda o, p: o.step(p, 0.1)],
        "cleared": [lambda o, p: o.step(p, 0.1), lambda o, p: (o.state.clear(), o.step(p, 0.1))],
        "replaced": [lambda o, p: o.step(p, 0.1), lambda o, p: (
            o.state[p[0]].update({k: np.zeros_like(a) for k, a in o.state[p[0]].items()
                                  if a.shape == p[0].shape}), o.step(p, 0.1))],
        "deleted": [lambda o, p: o.step(p, 0.1), lambda o, p: (o.state.pop(p[1]),
                                                               o.step(p, 0.1))],
    }
    for name in ("adam", "sgd_momentum", "rmsprop"):
        for label, plan in plans.items():
            a = steps(packed_net(), OPTIMIZERS[name](0.1), plan)
            b = steps(unpacked(packed_net()), OPTIMIZERS[name](0.1), plan)
            for x, y in zip(a[0], b[0]):
                np.testing.assert_array_equal(x, y, err_msg=f"{name}, {label}")
            assert a[1].keys() == b[1].keys(), (name, label)
            for key in a[1]:
                np.testing.assert_array_equal(a[1][key], b[1][key], err_msg=f"{name} {label} {key}")
    # a shallow copy shares the Params: the network's arrays stay the ones a user holds
    net = packed_net()
    held = net.params()[0].value
    copy.copy(net)
    assert net.params()[0].value is held


def test_a_pickled_network_and_optimizer_come_back_packed_without_the_flat_copies():
    import pickle

    net = packed_net()
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    net.train_batch(np.ones((4, 6)), np.eye(3)[[0, 1, 2, 0]])
    opt.step(net.params(), 0.1)
    net2, opt2 = pickle.loads(pickle.dumps((net, opt)))
    assert packed(net2.params()) is not None
    assert opt2._flat is None  # worked out again at the next step, not pickled twice
    for q in net2.params():
        np.testing.assert_array_equal(q.value, net.params()[net2.params().index(q)].value)
