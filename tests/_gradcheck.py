"""Central-difference gradient checking, shared by the engine tests.

Every analytic gradient (every parameter entry and the input X) is compared with
central differences in float64. Tolerance: with step ``eps = 1e-6`` the central
difference ``(f(x + eps) - f(x - eps)) / (2 eps)`` has a truncation error of about
``eps**2 / 6 * |f'''| ~ 1e-13`` for the O(1) third derivatives of these smooth
functions, and a rounding error of about ``u * |f| / eps ~ 1e-16 * 10 / 1e-6 = 1e-9``
(``u`` the float64 unit roundoff, ``|f| <~ 10`` here). Both are far below ``1e-7``,
which we use on ``|analytic - numerical| / max(1, |numerical|)`` per entry; a wrong
or missing term in backpropagation gives errors of order 1e-3 or more.
"""

import numpy as np

from sklearn_lstm._network import Network

EPS = 1e-6
TOL = 1e-7


def make_params(rng, n_features, hidden, n_outputs, scale=0.5, dtype=np.float64):
    """Random engine parameters; scale 0.5 puts gate pre-activations at O(1)."""
    params = []
    n_in = n_features
    for h in hidden:
        params += [
            rng.normal(scale=scale, size=(n_in, 4 * h)),
            rng.normal(scale=scale, size=(h, 4 * h)),
            rng.normal(scale=scale, size=4 * h),
        ]
        n_in = h
    params += [
        rng.normal(scale=scale, size=(n_in, n_outputs)),
        rng.normal(scale=scale, size=n_outputs),
    ]
    return [np.ascontiguousarray(p, dtype=dtype) for p in params]


def numerical_grad(f, arr, eps=EPS):
    """Central differences of the scalar ``f()`` w.r.t. every entry of ``arr``.

    ``arr`` is perturbed in place and restored exactly.
    """
    assert arr.flags.c_contiguous
    grad = np.empty(arr.shape, dtype=np.float64)
    flat = arr.reshape(-1)
    gflat = grad.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        up, down = orig + eps, orig - eps
        flat[k] = up
        f_up = f()
        flat[k] = down
        f_down = f()
        flat[k] = orig
        gflat[k] = (f_up - f_down) / (up - down)  # exact step actually taken
    return grad


def assert_grad_close(analytic, numerical, tol=TOL, what=""):
    assert analytic.shape == numerical.shape, what
    assert np.all(np.isfinite(analytic)), what
    err = np.abs(analytic - numerical) / np.maximum(1.0, np.abs(numerical))
    assert err.max() < tol, f"{what}: max relative error {err.max():.3g}"


def n_lstm_layers(params):
    """LSTM layers of the plain stack whose flat parameters are ``params``."""
    return len(Network.from_shapes([p.shape for p in params]).lstm)


def param_names(params):
    names = []
    for layer in range(n_lstm_layers(params)):
        names += [f"W_{layer}", f"U_{layer}", f"b_{layer}"]
    return names + ["W_out", "b_out"]


def assert_close(actual, desired, rtol, what=""):
    """Relative agreement (for gold tests); entries near zero (cancellation) are
    judged against the array's scale with a much tighter factor."""
    desired = np.asarray(desired)
    scale = np.abs(desired).max()
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=1e-4 * rtol * scale,
                               err_msg=what)


def objective(G, out, valid):
    """sum(G * out), over the valid steps only when out is per step: a scalar
    whose gradient with respect to ``out`` is ``G`` (at valid steps)."""
    if out.ndim == 3:
        return float(np.sum(G[valid] * out[valid]))
    return float(np.sum(G * out))


def torch_head(torch, outputs, h_n, lengths, pooling, linear, bidirectional):
    """The reference of our pooling and output layer in PyTorch: ``linear`` on
    the last state (``h_n``; both directions' for a bidirectional top layer), on
    the mean or max of ``outputs`` (B, T, D) over each sequence's ``lengths``
    valid steps, or on every step."""
    T = outputs.shape[1]
    valid = (torch.arange(T)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    if pooling == "last":
        pooled = torch.cat([h_n[-2], h_n[-1]], dim=1) if bidirectional else h_n[-1]
    elif pooling == "mean":
        pooled = torch.where(valid, outputs, 0.0).sum(dim=1) / lengths[:, None]
    elif pooling == "max":
        pooled = outputs.masked_fill(~valid, -torch.inf).amax(dim=1)
    else:
        return linear(outputs)
    return linear(pooled)


# ---------------------------------------------------- interop references
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def same_weights(a, b):
    """Whether two estimators' live weights are the same arrays, bit for bit."""
    pa, pb = a._params(), b._params()
    return len(pa) == len(pb) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(pa, pb)
    )
