"""Optimizers and learning-rate schedules against values worked out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.nn.core import FlatParams, Param
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
    for p, q in zip(params, expected, strict=True):
        assert np.array_equal(p.value, q.value), name


def test_momentum_state_dict_names_and_values():
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    p = run_steps(opt, 0.1)
    state = opt.state_dict([p])
    assert list(state) == ["w.velocity"]
    np.testing.assert_allclose(state["w.velocity"], [[-0.087, 0.149]], rtol=1e-13)
    state["w.velocity"][...] = 0  # a copy
    assert opt.state[p]["velocity"][0, 0] != 0


@pytest.mark.parametrize("make", [lambda: sn.SGD(0.1), lambda: sn.SGDMomentum(0.1, momentum=0.9)])
def test_the_fast_updates_agree_with_the_readable_ones(monkeypatch, make):
    """SGD and SGD momentum run through BLAS's axpby where the library has it: the same
    steps as their NumPy ``_update`` (to the last bit where the kernel does not fuse the
    multiply and the add; to rounding where it does)."""
    from scratchnet.nn import blas

    for dtype, rtol in ((np.float32, 1e-5), (np.float64, 1e-13)):
        runs = []
        for fast in (True, False):
            opt = make()
            if not fast:
                monkeypatch.setattr(opt, "_fast_update", lambda param, slots: None)
            rng = np.random.default_rng(0)
            p = Param(np.linspace(-1, 1, 300, dtype=dtype).reshape(20, 15), "W")
            for _ in range(5):
                p.grad[...] = rng.standard_normal(p.shape)
                opt.step([p], 0.1)
            assert (opt._fast[0] is not None) == (fast and blas.axpby(p.grad, p.value)
                                                  is not None)
            runs.append(p.value.copy())
        assert runs[0].dtype == dtype
        np.testing.assert_allclose(runs[0], runs[1], rtol=rtol, atol=rtol)
    a = np.ones(4)
    assert blas.axpby(np.ones(4, np.float32), a) is None  # mixed dtypes
    assert blas.axpby(np.ones(8)[::2], a) is None  # not contiguous
    read_only = np.ones(4)
    read_only.setflags(write=False)
    assert blas.axpby(a, read_only) is None
    step = blas.axpby(np.full(4, 2.0), a)
    if step is not None:
        step(0.5, 3.0)  # a = 0.5 * 2 + 3 * a
        np.testing.assert_array_equal(a, 4.0)


# -- flat parameters: one update of all of a network's parameters ---------------------------
def flat_net(dtype="float64", seed=3):
    # W, B; W, gamma, beta (batch norm: parameters that are not weights); W, B
    return sn.NeuralNetwork([sn.Dense(7, "tanh"), sn.Dense(5, "tanh", batch_norm=True),
                             sn.Dense(3, "linear")],
                            "softmax_cross_entropy", seed=seed, dtype=dtype).build(6)


def test_a_built_network_lays_its_parameters_end_to_end():
    net = flat_net()
    params = net.params()
    assert isinstance(params, FlatParams) and params.flat.value.size == net.n_params
    for p, (start, end) in zip(params, itertools.pairwise(params.offsets), strict=True):
        assert np.shares_memory(p.value, params.flat.value[start:end])
        np.testing.assert_array_equal(p.value.ravel(), params.flat.value[start:end])
        assert np.shares_memory(p.grad, params.flat.grad[start:end])
    # assigning a parameter's value copies into its stretch: the flat arrays stay its own
    first = params[0]
    first.value = np.full(first.shape, 0.25)
    assert np.all(params.flat.value[:first.value.size] == 0.25)
    with pytest.raises(sn.ShapeError, match="expected shape"):
        first.value = np.zeros(3)
    # a parameter lies in one FlatParams only, once; one dtype
    with pytest.raises(sn.ConfigError, match="already lie end to end"):
        FlatParams(params[:2])
    loose = Param(np.zeros(2), "x")
    with pytest.raises(sn.ConfigError, match="twice"):
        FlatParams([loose, loose])
    with pytest.raises(sn.ShapeError, match="one dtype"):
        FlatParams([loose, Param(np.zeros(2, np.float32), "y")])


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copied_network_lays_out_its_own_parameters(how):
    import copy
    import pickle

    net = flat_net()
    net.train_batch(np.ones((4, 6)), np.eye(3)[[0, 1, 2, 0]])
    copied = pickle.loads(pickle.dumps(net)) if how == "pickle" else copy.deepcopy(net)
    params = copied.params()
    assert isinstance(params, FlatParams)
    for p, q in zip(net.params(), params, strict=True):
        np.testing.assert_array_equal(p.value, q.value)
        np.testing.assert_array_equal(p.grad, q.grad)
        assert np.shares_memory(q.value, params.flat.value)
        assert not np.shares_memory(q.value, net.params().flat.value)
    # the layers reach the copy's flat arrays through their Params
    assert copied.layers[0].operations[0].param is params[0]
    assert copy.copy(net).params() is net.params()  # a shallow copy shares them


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.01, "clip_norm": 0.5}])
def test_one_update_over_the_flat_arrays_gives_the_numbers_of_one_per_parameter(name, options):
    """Handed a network's FlatParams, an optimizer updates all of it at once; handed the
    same parameters as a list, one at a time. Every optimizer ends on the same weights
    and state, bit for bit, and a checkpoint of the flat state resumes to the same numbers
    as running on."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 6)), np.eye(3)[rng.integers(0, 3, 40)]
    runs = []
    for whole in (True, False):
        net = flat_net()
        opt = OPTIMIZERS[name](0.05, **options)
        for i in range(0, 40, 8):
            net.train_batch(X[i:i + 8], Y[i:i + 8])
            opt.step(net.params() if whole else list(net.params()), 0.05)
        assert len(opt._slots.segments) == (1 if whole else len(net.params()))
        runs.append((net, opt))
    (a, opt_a), (b, opt_b) = runs
    for pa, pb in zip(a.params(), b.params(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)
    state_a, state_b = opt_a.state_dict(a.params()), opt_b.state_dict(b.params())
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key])
    # resume from the flat state in a new optimizer: the same next step as running on
    resumed = OPTIMIZERS[name](0.05, **options)
    resumed.load_state_dict(list(b.params()), state_a)
    for net, opt in ((a, opt_a), (b, resumed)):
        net.train_batch(X[:8], Y[:8])
        opt.step(list(net.params()) if opt is resumed else net.params(), 0.05)
    for pa, pb in zip(a.params(), b.params(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)


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
    if lib is None or not hasattr(lib, "scipy_cblas_sgemm64_") or \
            blas.axpby(np.ones(2, np.float32), np.ones(2, np.float32)) is None:
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
    for p, q in zip(plain, folded, strict=True):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-5, atol=1e-6)


def test_a_loose_list_of_params_is_packed_once_and_keeps_its_state():
    a, b = Param(np.zeros((2, 2)), "a"), Param(np.ones(3), "b")
    held = a.value
    opt = sn.SGDMomentum(0.5, momentum=0.9)
    a.grad[...], b.grad[...] = 1.0, 2.0
    opt.step([a, b], 0.5)
    assert a.value is not held and np.shares_memory(a.value, opt._slots.params.flat.value)
    np.testing.assert_allclose(a.value, -0.5)
    a.value = np.ones((2, 2))  # copied in: the next step moves the new value
    opt.step([a, b], 0.5)  # another list of the same parameters: the same state
    np.testing.assert_allclose(a.value, 1 - (0.9 * 0.5 + 0.5))
    np.testing.assert_allclose(opt.state[b]["velocity"], 0.9 * 1.0 + 1.0)
    opt.state[b]["velocity"][...] = 0.0  # the views are the state the next step uses
    opt.step([a, b], 0.5)
    np.testing.assert_allclose(b.value, 1 - 1.0 - 1.9 - 1.0)  # v: 1, 1.9, then 0 + 1


def test_handed_other_parameters_it_keeps_the_state_of_those_it_held():
    net = flat_net()
    p = net.params()
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    for q in p:
        q.grad[...] = 1.0
    opt.step(p, 0.1)
    opt.step(p[2:], 0.1)  # a subset: its velocities go on, each parameter updated alone
    assert all(np.all(opt.state[q]["velocity"] == np.float64(0.1) * 0.9 + 0.1) for q in p[2:])
    assert set(opt.state) == set(p[2:])
    before = [q.value.copy() for q in p]
    opt.step(p, 0.1)  # the first two start at zero again; the rest go on
    for i, (q, old) in enumerate(zip(p, before, strict=True)):
        v = 0.1 if i < 2 else (0.1 * 0.9 + 0.1) * 0.9 + 0.1
        np.testing.assert_allclose(q.value, old - v)
    opt.reset()
    assert not opt.state and opt.steps_taken == 0


def test_adam_counts_the_steps_of_all_its_parameters_once():
    net = flat_net()
    p = net.params()
    opt = sn.Adam(0.01)
    for q in p:
        q.grad[...] = 0.5
    opt.step(p, 0.01)
    opt.step(list(p), 0.01)
    assert opt.steps_taken == 2
    state = opt.state_dict(p)
    assert all(state[f"{q.name}.step"].tolist() == [2] for q in p)
    assert state[f"{p[0].name}.step"].dtype == np.int64
    resumed = sn.Adam(0.01)
    resumed.load_state_dict(p, state)
    assert resumed.steps_taken == 2
    state[f"{p[0].name}.step"][...] = 0  # parameters that took different numbers of steps
    with pytest.raises(sn.ShapeError, match="counts differ"):
        sn.Adam(0.01).load_state_dict(p, state)
    state[f"{p[0].name}.step"] = np.array([2, 2])
    with pytest.raises(sn.ShapeError, match=r"expected shape \(1,\)"):
        sn.Adam(0.01).load_state_dict(p, state)


def test_a_pickled_network_and_optimizer_go_on_as_the_originals_without_double_arrays():
    import pickle

    net = flat_net()
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    X, Y = np.ones((4, 6)), np.eye(3)[[0, 1, 2, 0]]
    net.train_batch(X, Y)
    opt.step(net.params(), 0.1)
    blob = pickle.dumps((net, opt))
    net2, opt2 = pickle.loads(blob)
    assert opt2._slots.params is net2.params()
    for n, o in ((net, opt), (net2, opt2)):
        n.train_batch(X, Y)
        o.step(n.params(), 0.1)
    for q, r in zip(net.params(), net2.params(), strict=True):
        np.testing.assert_array_equal(q.value, r.value)
    # each parameter's arrays once (value, gradient), the velocity once
    arrays = net.params().flat.value.nbytes * 3
    assert len(blob) < arrays + 20_000
