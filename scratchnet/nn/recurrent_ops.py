"""Recurrent operations (the book's chapter 6): a plain RNN, the LSTM and the GRU, each
one :class:`~scratchnet.nn.Operation` over a whole batch of sequences.

A batch of sequences is ``(batch, time, features)``, PyTorch's ``batch_first=True``; the
output is ``(batch, time, H)``, or the last step's ``(batch, H)`` when
``return_sequences`` is False. Parameters, for G gates of H units (PyTorch's gate order,
so its weights copy in gate by gate):

* ``W_x`` (F, G*H): input weights; ``W_h`` (H, G*H): recurrent weights; ``B`` (1, G*H).
* RNN: G = 1, ``h' = act(x W_x + h W_h + B)``.
* LSTM: G = 4, gates ``i, f, g, o``: ``c' = f * c + i * g``, ``h' = o * tanh(c')``, with
  i, f, o sigmoids and g a tanh of ``x W_x + h W_h + B``.
* GRU: G = 3, gates ``r, z, n``, PyTorch's formula (the reset gate applied after the
  recurrent product, hence a second bias ``B_h`` (1, 3H), PyTorch's ``b_hh``)::

      r, z = sigmoid(x W_xr + B_r + h W_hr + B_hr), sigmoid(x W_xz + B_z + h W_hz + B_hz)
      n = tanh(x W_xn + B_n + r * (h W_hn + B_hn));  h' = (1 - z) * n + z * h

Where the work goes: the input projection ``x W_x + B`` of every step is ONE matrix product
before the time loop; the loop holds only what depends on the previous step (the product
``h W_h`` and the gates' arithmetic, in place in preallocated arrays). The backward loop
keeps the gradient of every step's gate pre-activations, so the weight gradients are ONE
product each after it (``x^T dZ`` and ``h^T dZ`` over all steps at once), and so is the
input gradient. Inside, arrays are time-major, (time, batch, ...), so each step reads and
writes contiguous blocks; the arrays a pass keeps are reused by the next pass of the same
shape (a fresh array of tens of MB pays its page faults again on every batch).

Carried state: every pass starts from zeros, unless the operation is ``stateful``. Then a
training pass starts from the final state of the previous training pass (row i of a batch
continues row i of the last one: truncated back-propagation through time over consecutive
windows of the same streams; no gradient flows into the carried state) and leaves its own
final state for the next. Inference passes start from zeros (or, :meth:`RecurrentOp.infer`,
from a state the caller holds) and leave the carried state alone.
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import ShapeError
from .activations import Activation
from .core import Operation, Param


class RecurrentOp(Operation):
    """What the RNN, LSTM and GRU operations share: shapes, the input projection, the
    carried state, and the products before and after the time loops.

    A subclass runs the forward loop (:meth:`_forward_steps`, over the arrays ``z`` (T, B,
    G*H), the input projection, and each state's (T+1, B, H) sequence, step 0 holding the
    initial state) and the backward loop (:meth:`_backward_steps`, returning the gradients
    of the input-side and the recurrent-side pre-activations, (T, B, G*H) each).
    """

    gates = 1
    #: the states carried from step to step (and from batch to batch when stateful)
    states: tuple[str, ...] = ("h",)
    #: which gates are sigmoids (the others are tanh); None: the RNN's one activation
    sigmoid_gates: tuple[bool, ...] | None = None
    CACHES = Operation.CACHES + ("_dz",)

    def __init__(self, W_x: Param, W_h: Param, B: Param, return_sequences: bool = True,
                 stateful: bool = False):
        super().__init__()
        hidden = W_h.value.shape[0]
        gh = self.gates * hidden
        if W_x.value.ndim != 2 or W_h.value.shape != (hidden, gh) or B.value.shape != (1, gh) \
                or W_x.value.shape[1] != gh:
            raise ShapeError(f"{type(self).__name__} expects W_x (F, {self.gates}H), W_h (H, "
                             f"{self.gates}H) and B (1, {self.gates}H), got {W_x.value.shape}, "
                             f"{W_h.value.shape} and {B.value.shape}")
        self.W_x, self.W_h, self.B, self.hidden = W_x, W_h, B, hidden
        if self.sigmoid_gates is not None:
            self._scale, self._shift = _gate_columns(hidden, self.sigmoid_gates,
                                                     W_h.value.dtype)
        self.return_sequences = return_sequences
        self.stateful = stateful
        #: the final state of the last training pass, by state name, each (batch, H);
        #: None: the next pass starts from zeros
        self.carried: dict[str, np.ndarray] | None = None
        self._arrays: dict[str, np.ndarray] = {}  # the last pass's arrays, reused
        self._given: dict[str, np.ndarray] | None = None  # the start of an infer() pass
        self._dz: np.ndarray | None = None  # input-side pre-activation gradients (T, B, G*H)
        self.grad_probe = None  # health's hook (HealthMonitor.arm), called in _steps_back

    def __getstate__(self) -> dict:
        # The arrays of the last pass are working memory, left behind like the caches.
        return {**super().__getstate__(), "_arrays": {}}

    def params(self) -> list[Param]:
        return [self.W_x, self.W_h, self.B]

    def _array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The array ``name`` of the last pass when it has this shape, else a new one."""
        dtype = self.W_h.value.dtype
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype)
        return a

    def _prescaled(self, name: str) -> np.ndarray:
        """The value of parameter ``name`` ("W_x", "W_h", "B", "B_h") with its sigmoid
        gates' columns halved, for this pass.

        Every gate is made by one tanh, ``sigmoid(z) = 0.5 tanh(z / 2) + 0.5``; halving
        the weights and biases of the sigmoid gates once per pass spares a pass over the
        gates at every step, and changes no bit (a product by 0.5 is exact)."""
        value = getattr(self, name).value
        if self.sigmoid_gates is None:
            return value
        out = self._array(f"{name}/2", value.shape)
        np.multiply(value, self._scale, out=out)
        return out

    def _recurrent_T(self) -> np.ndarray:
        """``W_h`` transposed, copied once per backward pass: the steps' products with a
        contiguous (G*H, H) matrix run faster than with the transposed view."""
        W_hT = self._array("W_h.T", self.W_h.value.T.shape)
        np.copyto(W_hT, self.W_h.value.T)
        return W_hT

    # -- forward -------------------------------------------------------------------------
    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        features = self.W_x.value.shape[0]
        if input_.ndim != 3 or input_.shape[2] != features or input_.shape[1] == 0:
            raise ShapeError(f"{type(self).__name__} expects input of shape (batch, time, "
                             f"{features}) with time >= 1, got {input_.shape}")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        batch, steps, features = x.shape
        gh = self.W_h.value.shape[1]
        xt = self._array("x", (steps, batch, features))
        np.copyto(xt, x.transpose(1, 0, 2))
        z = self._array("z", (steps, batch, gh))
        np.matmul(xt.reshape(-1, features), self._prescaled("W_x"), out=z.reshape(-1, gh))
        z += self._prescaled("B")
        start = self._start(batch, inference)
        for name in self.states:
            seq = self._array(name, (steps + 1, batch, self.hidden))
            seq[0] = 0 if start is None else start[name]
        self._forward_steps(steps, inference)
        h = self._arrays["h"]
        if self.stateful and not inference:
            self.carried = {name: self._arrays[name][steps].copy() for name in self.states}
        return h[1:].transpose(1, 0, 2).copy() if self.return_sequences else h[steps].copy()

    def infer(self, input_: np.ndarray, state: dict[str, np.ndarray] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """An inference pass over ``input_`` (batch, time, F) from ``state`` (each of
        :attr:`states` by name, (batch, H), as the layer checked it; None: zeros):
        ``(output, final state)``. The carried training state is left alone."""
        self._given = state
        try:
            output = self.forward(input_, inference=True)
        finally:
            self._given = None
        return output, {name: self._arrays[name][input_.shape[1]].copy() for name in self.states}

    def _start(self, batch: int, inference: bool) -> dict[str, np.ndarray] | None:
        if self._given is not None:
            return self._given
        if not self.stateful or inference or self.carried is None:
            return None
        if (rows := self.carried["h"].shape[0]) != batch:
            raise ShapeError(f"stateful {type(self).__name__} carries the state of {rows} "
                             f"sequences but got a batch of {batch}: every batch of a stateful "
                             f"layer holds the same streams (drop a last partial batch), or "
                             f"call reset_state() first")
        return self.carried

    def _forward_steps(self, steps: int, inference: bool) -> None:
        raise NotImplementedError

    def _steps_back(self, output_grad: np.ndarray, steps: int, dh: np.ndarray):
        """The steps t = T-1, ..., 0 of a backward loop, each after adding to ``dh`` the
        output gradient that reaches step t's state from above; the loop body leaves in
        ``dh`` what reaches the state of step t-1 through the recurrence."""
        dh.fill(0)
        for t in reversed(range(steps)):
            if self.return_sequences:
                dh += output_grad[:, t]
            elif t == steps - 1:
                dh += output_grad
            if self.grad_probe is not None:  # (health's hook; off, one test per step)
                self.grad_probe(t, dh)
            yield t

    # -- backward ------------------------------------------------------------------------
    def _param_grad(self, output_grad: np.ndarray) -> None:
        xt, h = self._arrays["x"], self._arrays["h"]
        steps, _, features = xt.shape
        gh = self.W_h.value.shape[1]
        dz, dz_h = self._backward_steps(output_grad, steps)
        rows = dz.reshape(-1, gh)
        np.matmul(xt.reshape(-1, features).T, rows, out=self.W_x.grad)
        np.matmul(h[:steps].reshape(-1, self.hidden).T, dz_h.reshape(-1, gh), out=self.W_h.grad)
        rows.sum(axis=0, keepdims=True, out=self.B.grad)
        self._dz = dz

    def _backward_steps(self, output_grad: np.ndarray, steps: int):
        raise NotImplementedError

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        steps, batch, gh = self._dz.shape
        dx = np.matmul(self._dz.reshape(-1, gh), self.W_x.value.T)
        return dx.reshape(steps, batch, -1).transpose(1, 0, 2).copy()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.W_x.value.shape[0]}->{self.hidden}, "
                f"return_sequences={self.return_sequences}, stateful={self.stateful})")


def _gate_columns(hidden: int, sigmoid: tuple[bool, ...], dtype) -> np.ndarray:
    """(2, G*H): a scale, 0.5 on the sigmoid gates' columns and 1 on the tanh gates', and a
    shift, 0.5 and 0. Then ``tanh(z * scale) * scale + shift`` makes every gate at once:
    ``sigmoid(z) = 0.5 tanh(z / 2) + 0.5`` (which never overflows, unlike exp)."""
    cols = np.array([[0.5, 0.5] if s else [1.0, 0.0] for s in sigmoid], dtype).T
    return np.repeat(cols, hidden, axis=1)


class RNNOp(RecurrentOp):
    """``h' = act(x W_x + h W_h + B)``: one gate, any activation of the registry (each
    step keeps its own copy of the activation, whose backward pass it reuses)."""

    def __init__(self, W_x: Param, W_h: Param, B: Param, activation: Activation, **options):
        super().__init__(W_x, W_h, B, **options)
        self.activation = activation
        self._steps: list[Activation] = []

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_steps": []}

    def _forward_steps(self, steps: int, inference: bool) -> None:
        z, h = self._arrays["z"], self._arrays["h"]
        rec = self._array("rec", h.shape[1:])
        if len(self._steps) != steps:
            self._steps = [copy.copy(self.activation) for _ in range(steps)]
        W_h = self.W_h.value
        for t in range(steps):
            np.matmul(h[t], W_h, out=rec)
            z[t] += rec
            np.copyto(h[t + 1], self._steps[t].forward(z[t], inference))

    def _backward_steps(self, output_grad: np.ndarray, steps: int):
        dz = self._array("dz", self._arrays["z"].shape)
        dh = self._array("dh", dz.shape[1:])
        W_hT = self._recurrent_T()
        for t in self._steps_back(output_grad, steps, dh):
            np.copyto(dz[t], self._steps[t].backward(dh))
            np.matmul(dz[t], W_hT, out=dh)
        return dz, dz


class LSTMOp(RecurrentOp):
    """The LSTM (Hochreiter & Schmidhuber 1997, with a forget gate): gates ``i, f, g, o``."""

    gates = 4
    states = ("h", "c")
    sigmoid_gates = (True, True, False, True)

    def __init__(self, W_x: Param, W_h: Param, B: Param, **options):
        super().__init__(W_x, W_h, B, **options)
        # the derivative of every gate from its value a: (1 - a) * (a + e), e = 1 on the
        # tanh gate g (1 - a^2) and 0 on the sigmoids (a (1 - a))
        self._tanh_cols = (self._shift == 0).astype(W_h.value.dtype)

    def _forward_steps(self, steps: int, inference: bool) -> None:
        a, H = self._arrays, self.hidden
        z, h, c = a["z"], a["h"], a["c"]  # z becomes the gates' values, step by step
        tanh_c = self._array("tanh_c", c[1:].shape)
        rec, ig = self._array("rec", z.shape[1:]), self._array("ig", h.shape[1:])
        scale, shift = self._scale, self._shift
        W_h = self._prescaled("W_h")
        for t in range(steps):
            zt = z[t]  # the gates' pre-activations, the sigmoids' halved
            np.matmul(h[t], W_h, out=rec)
            zt += rec
            np.tanh(zt, out=zt)
            zt *= scale
            zt += shift
            i, f, g, o = zt[:, :H], zt[:, H:2 * H], zt[:, 2 * H:3 * H], zt[:, 3 * H:]
            np.multiply(f, c[t], out=c[t + 1])
            np.multiply(i, g, out=ig)
            c[t + 1] += ig
            np.tanh(c[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=h[t + 1])

    def _backward_steps(self, output_grad: np.ndarray, steps: int):
        a, H = self._arrays, self.hidden
        gates, c, tanh_c = a["z"], a["c"], a["tanh_c"]
        dz = self._array("dz", gates.shape)
        dh, dc = self._array("dh", c.shape[1:]), self._array("dc", c.shape[1:])
        tmp, deriv = self._array("tmp", c.shape[1:]), self._array("deriv", gates.shape[1:])
        dc.fill(0)
        W_hT, e = self._recurrent_T(), self._tanh_cols
        for t in self._steps_back(output_grad, steps, dh):
            at, d, tc = gates[t], dz[t], tanh_c[t]
            i, f, g, o = at[:, :H], at[:, H:2 * H], at[:, 2 * H:3 * H], at[:, 3 * H:]
            np.multiply(dh, tc, out=d[:, 3 * H:])  # dL/do
            np.multiply(tc, tc, out=tmp)  # h = o tanh(c): dL/dc += dh o (1 - tanh(c)^2)
            np.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            np.multiply(dc, g, out=d[:, :H])  # dL/di
            np.multiply(dc, c[t], out=d[:, H:2 * H])  # dL/df
            np.multiply(dc, i, out=d[:, 2 * H:3 * H])  # dL/dg
            dc *= f  # what reaches the previous step's cell
            np.subtract(1, at, out=deriv)
            d *= deriv
            np.add(at, e, out=deriv)
            d *= deriv  # now the pre-activations' gradient
            np.matmul(d, W_hT, out=dh)
        return dz, dz


class GRUOp(RecurrentOp):
    """The GRU (Cho et al. 2014) in PyTorch's form: gates ``r, z, n``, the reset gate
    applied to ``h W_hn + B_hn``, so it has a second bias ``B_h`` (1, 3H)."""

    gates = 3
    sigmoid_gates = (True, True, False)

    def __init__(self, W_x: Param, W_h: Param, B: Param, B_h: Param, **options):
        super().__init__(W_x, W_h, B, **options)
        if B_h.value.shape != B.value.shape:
            raise ShapeError(f"GRUOp expects B_h of shape {B.value.shape}, got {B_h.value.shape}")
        self.B_h = B_h

    def params(self) -> list[Param]:
        return super().params() + [self.B_h]

    def _forward_steps(self, steps: int, inference: bool) -> None:
        a, H = self._arrays, self.hidden
        z, h = a["z"], a["h"]  # z becomes the gates' values r, z, n, step by step
        hn = self._array("hn", h[1:].shape)  # h W_hn + B_hn of every step
        rec = self._array("rec", z.shape[1:])
        W_h, B_h = self._prescaled("W_h"), self._prescaled("B_h")
        for t in range(steps):
            zt = z[t]  # r's and z's pre-activations halved (the sigmoids)
            np.matmul(h[t], W_h, out=rec)
            rec += B_h
            rz = zt[:, :2 * H]
            rz += rec[:, :2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            r, update, n = zt[:, :H], zt[:, H:2 * H], zt[:, 2 * H:]
            np.copyto(hn[t], rec[:, 2 * H:])
            rn = rec[:, 2 * H:]
            rn *= r
            n += rn
            np.tanh(n, out=n)
            # h' = (1 - z) n + z h = n + z (h - n)
            np.subtract(h[t], n, out=h[t + 1])
            h[t + 1] *= update
            h[t + 1] += n

    def _backward_steps(self, output_grad: np.ndarray, steps: int):
        a, H = self._arrays, self.hidden
        gates, h, hn = a["z"], a["h"], a["hn"]
        dz = self._array("dz", gates.shape)  # input side: x W_x + B
        dz_h = self._array("dz_h", gates.shape)  # recurrent side: h W_h + B_h
        dh, tmp = self._array("dh", h.shape[1:]), self._array("tmp", h.shape[1:])
        dh_rec = self._array("dh_rec", h.shape[1:])
        W_hT = self._recurrent_T()
        for t in self._steps_back(output_grad, steps, dh):
            at, dx_t, dh_t = gates[t], dz[t], dz_h[t]
            r, update, n = at[:, :H], at[:, H:2 * H], at[:, 2 * H:]
            dan, dar, daz = dx_t[:, 2 * H:], dh_t[:, :H], dh_t[:, H:2 * H]
            np.subtract(1, update, out=dan)  # n's pre-activation: dh (1 - z) (1 - n^2)
            dan *= dh
            np.multiply(n, n, out=tmp)
            np.subtract(1, tmp, out=tmp)
            dan *= tmp
            np.subtract(h[t], n, out=daz)  # z's: dh (h - n) z (1 - z)
            daz *= dh
            np.subtract(1, update, out=tmp)
            tmp *= update
            daz *= tmp
            np.multiply(dan, hn[t], out=dar)  # r's: dan (h W_hn + B_hn) r (1 - r)
            np.subtract(1, r, out=tmp)
            tmp *= r
            dar *= tmp
            np.multiply(dan, r, out=dh_t[:, 2 * H:])  # h W_hn + B_hn: dan r
            np.matmul(dh_t, W_hT, out=dh_rec)
            dh *= update
            dh += dh_rec
        dz[:, :, :2 * H] = dz_h[:, :, :2 * H]  # r and z see x and h through one sum
        return dz, dz_h

    def _param_grad(self, output_grad: np.ndarray) -> None:
        super()._param_grad(output_grad)
        gh = self.B_h.value.shape[1]
        self._arrays["dz_h"].reshape(-1, gh).sum(axis=0, keepdims=True, out=self.B_h.grad)
