"""The backends: where a fit's and a prediction's computations run.

What users rely on, tested through the seam (``SerialBackend``, ``ProcessBackend``
with a ``HelperRuntime``) and through the estimators' ``n_jobs``:

* ``n_jobs`` alone fixes how a mini-batch is cut into shares and in which order
  their results are added, so a fit and its predictions are the same bit for bit
  whether helper processes computed shares or not (BLAS held to one thread, another
  thread holding the helpers, joblib's backends);
* a default estimator starts no process;
* a helper that stops, dies, never starts or exits at once costs a bounded wait and
  a warning, never the model (which stays bitwise the one of an undisturbed fit) nor
  the process (SIGPIPE), and leaves BLAS's limits and the cores as they were;
* helpers are isolated interpreters that run the code this process loaded (not the
  files on disk, the current directory or PYTHONPATH), load neither scikit-learn
  nor SciPy, live in a session of their own, and exit when idle or when the
  training process exits.

Sizes are chosen so that helpers take part (a share of a mini-batch has at least
``MIN_SHARE_MACS`` multiply-adds, a prediction ``MIN_PREDICT_MACS``), and the tests
check that they did: from the helpers' CPU time (``/proc/<pid>/schedstat``) or from
the shares this process computed itself. Next to programs that leave no core free
for the helpers, a runtime rightly computes their shares here instead; the
runtimes of these tests never do (``crowded_seconds=math.inf``), so that the tests
hold on a shared machine, except in the test of that rule.
"""

import ast
import gc
import hashlib
import math
import os
import pickle
import platform
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from contextlib import contextmanager, suppress

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

import sklearn_lstm
from sklearn_lstm import LSTMClassifier, LSTMRegressor, _backend, _processes
from sklearn_lstm._backend import (
    SerialBackend,
    effective_n_jobs,
    make_backend,
    usable_cores,
)
from sklearn_lstm._engine import Workspace, blas_core
from sklearn_lstm._network import Network
from sklearn_lstm._objective import Batch, Sequences, share_loss_grad
from sklearn_lstm._processes import (
    CROWDED_SECONDS,
    MAX_POLL_SECONDS,
    MIN_PREDICT_MACS,
    MIN_SHARE_MACS,
    REPLY_FLOOR_SECONDS,
    RUNTIME,
    SESSION_SECONDS,
    WAKE_SAMPLES,
    HelperRuntime,
    ProcessBackend,
    _cores_to_spare,
    _Helper,
    _runnable,
    _Wakes,
    blas_threads,
)

pytestmark = [
    pytest.mark.skipif(
        os.name != "posix", reason="helper processes run on POSIX systems only"
    ),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

#: Helpers take part only when this process may use two cores and BLAS two threads.
requires_helpers = pytest.mark.skipif(
    os.name != "posix" or min(usable_cores(), blas_threads()) < 2,
    reason="helpers take part only with two cores and two BLAS threads",
)
#: Process states, CPU times and memory maps are read from /proc.
requires_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/schedstat"), reason="needs Linux's /proc"
)

PACKAGE_DIR = os.path.dirname(os.path.abspath(sklearn_lstm.__file__))
#: Scripts run in other processes import the package that this one imported.
IMPORT_THIS_PACKAGE = (
    f"import sys; sys.path.insert(0, {os.path.dirname(PACKAGE_DIR)!r})\n"
)


# ---------------------------------------------------------------- processes
def proc_state(pid):
    """The state letter of process ``pid`` (``"Z"`` for a zombie), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def running(pid):
    return proc_state(pid) not in (None, "Z", "X")


def wait_until(condition, seconds, step=0.01):
    """Poll ``condition`` for at most ``seconds``; the seconds it took, or None."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            return None
        time.sleep(step)


def gone_within(pid, seconds):
    """Wait for process ``pid`` to end; the seconds it took, or None."""
    return wait_until(lambda: not running(pid), seconds)


def children():
    """Running child processes of this process."""
    me, pids = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] not in ("Z", "X"):
            pids.add(int(entry))
    return pids


def cpu_seconds(pids):
    """CPU time the processes ``pids`` have run, in seconds (nanosecond counts)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as file:
                total += int(file.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # reaped
            pass
    return total / 1e9


def settled_cpu_seconds(pids):
    """:func:`cpu_seconds` once helpers that just answered have gone to sleep (a
    waiting process polls for MAX_POLL_SECONDS at most)."""
    time.sleep(0.05)
    return cpu_seconds(pids)


def blas_limits():
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}


def assert_blas_limits_as(before):
    after = blas_limits()
    assert {path: after.get(path) for path in before} == before


@contextmanager
def recording():
    """Record every warning but ConvergenceWarning: yields the list of messages."""
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    messages += [
        str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)
    ]


# ------------------------------------------------------------- the seam's data
def problem(loss, dtype, ragged, dropout, B=64, T=32, F=3, sizes=(32, 16), n_out=3,
            seed=0, bidirectional=False, pooling="last"):
    """A network, its parameters and a mini-batch (as the estimators make them)."""
    rng = np.random.default_rng(seed)
    network = Network.stack(
        F, sizes, n_out, bidirectional=bidirectional, pooling=pooling
    )
    params = network.init(np.random.RandomState(seed), dtype)
    X = rng.normal(size=(B, T, F))
    lengths = None
    if ragged:
        lengths = rng.integers(1, T + 1, B)
        lengths[0] = T
        X[np.arange(T) >= lengths[:, None]] = 0.0  # padding is zero
    if loss == "softmax":
        y = np.eye(n_out)[rng.integers(0, n_out, B)]
    elif loss == "logistic":
        y = rng.integers(0, 2, (B, n_out)).astype(float)
    else:
        y = rng.normal(size=(B, n_out))
    weights = rng.uniform(0.5, 2.0, B)
    weights /= weights.sum()
    masks = None
    if dropout:  # inverted dropout; the first layer's recurrence has none
        def mask(shape, rate):
            return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype)

        (x0, _), (x1, h1) = network.mask_shapes(B)
        masks = [(mask(x0, 0.2), None), (mask(x1, 0.3), mask(h1, 0.25))]
    if pooling == "none":  # one target per step, weights zero at padding
        y = np.repeat(y[:, np.newaxis], T, axis=1)
        steps = np.arange(T) < (T if lengths is None else lengths[:, None])
        weights = np.where(steps, weights[:, None], 0.0)
        weights /= weights.sum()
    batch = Batch(
        Sequences(X.astype(dtype), lengths), y.astype(dtype), weights.astype(dtype),
        masks,
    )
    return network, params, batch


def to_predict(dtype, ragged, n=600, T=32, F=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F))
    lengths = None
    if ragged:
        lengths = rng.integers(1, T + 1, n)
        lengths[0] = T
        X[np.arange(T) >= lengths[:, None]] = 0.0
    return Sequences(X.astype(dtype), lengths)


def one_thread(op, *args, n_shares=2):
    """``op`` of a serial backend of ``n_shares`` computed with BLAS on one thread,
    as every share of a process backend is, wherever it runs."""
    with threadpool_limits(limits=1):
        return getattr(SerialBackend(n_shares), op)(*args, Workspace())


class CountingBackend(ProcessBackend):
    """A process backend that counts the shares this process computed itself."""

    here = 0

    def compute(self, task, workspace):
        self.here += 1
        return super().compute(task, workspace)


def one_batch_of_two_shares(runtime, ragged=True):
    """Run one batch of two shares in a session of ``runtime``; its result must
    be serial's bit for bit. Returns the warnings and how many shares this
    process computed."""
    network, params, batch = problem("identity", np.float64, ragged, False)
    B, T = batch.X.values.shape[:2]
    expected = one_thread("loss_grad", network, params, batch, "identity")
    backend = CountingBackend(2, runtime=runtime)
    with recording() as messages:
        with backend.session(network, "fit", B, T):
            got = backend.loss_grad(network, params, batch, "identity", Workspace())
    assert_same(got, expected)
    return messages, backend.here


def assert_same(got, expected):
    """Bitwise equality of a (loss, gradients) pair or of arrays."""
    if isinstance(got, tuple):
        assert got[0] == expected[0]
        got, expected = got[1], expected[1]
    if isinstance(got, np.ndarray):
        got, expected = [got], [expected]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert_array_equal(a, b, strict=True)


def helper_runtime(**params):
    """A runtime of a test's own, whose helpers take part however busy other
    programs keep the machine (see the module's docstring)."""
    return HelperRuntime(crowded_seconds=math.inf, **params)


@pytest.fixture(autouse=True)
def estimators_helpers_take_part(monkeypatch):
    """The estimators' runtime too, during each test (see the module's docstring)."""
    monkeypatch.setattr(RUNTIME, "crowded_seconds", math.inf)


@pytest.fixture(scope="module")
def runtime():
    """A runtime of this module's own, its helpers ended after the module."""
    runtime = helper_runtime()
    yield runtime
    runtime.close_all()


# ----------------------------------------------------- the estimators' data
T, F, H, BATCH = 32, 2, 32, 64
FIT = {"hidden_layer_sizes": H, "batch_size": BATCH, "max_iter": 5,
       "random_state": 0, "dropout": 0.1}


def sequences(n, seed):
    """Sequences of 22 to T steps, a few of them T long."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(T - 10, T + 1, n)
    lengths[::16] = T
    return [rng.uniform(-1, 1, (length, F)) for length in lengths]


def regression(n=256, seed=0):
    X = sequences(n, seed)
    return X, np.array([x[:, 0].sum() for x in X])


def classification(n=256, seed=0):
    X = sequences(n, seed)
    return X, np.array([int(x[0, 0] > 0) + int(x[-1, 1] > 0) for x in X])


#: Enough samples that a prediction is shared with helpers.
X_PREDICT = sequences(600, seed=1)


def model_arrays(est):
    """Everything a fit produced: the public weights and the loss curve."""
    arrays = [layer[name] for layer in est.lstm_coefs_
              for name in ("kernel", "recurrent_kernel", "bias")]
    return arrays + list(est.coefs_) + list(est.intercepts_) + [
        np.array(est.loss_curve_)
    ]


def predictions(est, X=X_PREDICT):
    if hasattr(est, "predict_proba"):
        return [est.predict(X), est.predict_proba(X)]
    return [est.predict(X)]


@pytest.fixture(scope="module")
def reference():
    """An undisturbed n_jobs=2 fit: its arrays and its predictions."""
    X, y = regression()
    est = LSTMRegressor(**FIT, n_jobs=2).fit(X, y)
    return model_arrays(est), predictions(est)


@pytest.fixture
def warm():
    """The estimators' runtime has a live helper (started through the seam);
    returns its pids."""
    network = Network.stack(F, [H], 1)
    backend = ProcessBackend(2)
    assert backend.n_helpers(network, "fit", BATCH, T) == 1
    with recording() as messages:
        with backend.session(network, "fit", BATCH, T):
            pass
    assert not messages
    pids = RUNTIME.pids()
    assert pids and all(running(pid) for pid in pids)
    return pids


def sabotaged(cls, at_step, action):
    """``cls`` calling ``action()`` after the gradient step ``at_step`` of a fit
    (between two mini-batches, while the fit's helpers wait for the next one)."""

    class Sabotaged(cls):
        def _step(self, params, grads, loss):
            super()._step(params, grads, loss)
            self.steps_done_ = getattr(self, "steps_done_", 0) + 1
            if self.steps_done_ == at_step:
                action()

    return Sabotaged


def assert_as_undisturbed(est, blas, reference):
    """BLAS limits as before, and the model and predictions of the undisturbed
    reference fit, bit for bit."""
    assert_blas_limits_as(blas)
    arrays, expected = reference
    assert_same(model_arrays(est), arrays)
    assert_same(predictions(est), expected)


def timed_fit(est, X, y):
    with recording() as messages:
        start = time.monotonic()
        est.fit(X, y)
        seconds = time.monotonic() - start
    return messages, seconds


def script(source):
    return IMPORT_THIS_PACKAGE + textwrap.dedent(source)


def run_script(source, *args, cwd=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-c", script(source), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )


def dump_data(path):
    """The estimators' data for a script (a pickle of X, y, X_PREDICT, FIT)."""
    X, y = regression()
    with open(path, "wb") as file:
        pickle.dump((X, y, X_PREDICT, FIT), file)
    return path


# ======================================================= 1. the serial backend
@pytest.mark.parametrize("n_samples", [1, 2, 7, 23, 64])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_shares_are_interleaved_and_cover_every_sample_once(k, n_samples):
    shares = SerialBackend(k).shares(n_samples)
    assert len(shares) == min(k, n_samples)  # none empty
    for j, share in enumerate(shares):
        assert_array_equal(share, np.arange(j, n_samples, len(shares)))
    assert_array_equal(np.sort(np.concatenate(shares)), np.arange(n_samples))


@pytest.mark.parametrize("loss", ["identity", "logistic", "softmax"])
@pytest.mark.parametrize("k", [2, 3, 5, 40])
def test_serial_shares_add_up_to_the_whole_batch(k, loss):
    network, params, batch = problem(loss, np.float64, True, True, B=23, T=7,
                                     sizes=(5, 4))
    whole_loss, whole = SerialBackend(1).loss_grad(
        network, params, batch, loss, Workspace()
    )
    shared_loss, shared = SerialBackend(k).loss_grad(
        network, params, batch, loss, Workspace()
    )
    assert_allclose(shared_loss, whole_loss, rtol=1e-12)
    for a, b in zip(shared, whole):
        assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def test_serial_shares_are_added_in_their_order():
    network, params, batch = problem("softmax", np.float64, True, True, B=23, T=7,
                                     sizes=(5, 4))
    backend = SerialBackend(4)
    results = [share_loss_grad(network, params, batch.take(idx), "softmax")
               for idx in backend.shares(len(batch))]

    def added(order):
        loss, grads = results[order[0]][0], [g.copy() for g in results[order[0]][1]]
        for j in order[1:]:
            loss += results[j][0]
            for acc, grad in zip(grads, results[j][1]):
                acc += grad
        return loss, grads

    in_order = added([0, 1, 2, 3])
    assert_same(backend.loss_grad(network, params, batch, "softmax", Workspace()),
                in_order)
    # The comparison can tell orders apart: another order changes some bits.
    reverse = added([3, 2, 1, 0])
    assert reverse[0] != in_order[0] or not all(
        np.array_equal(a, b) for a, b in zip(reverse[1], in_order[1])
    )


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
def test_serial_prediction_chunks_cover_every_sample_once(ragged):
    network, params, _ = problem("identity", np.float64, False, False)
    X = to_predict(np.float64, ragged, n=300)
    whole = SerialBackend(1).outputs(network, params, X, Workspace())
    backend = SerialBackend(2)
    chunks = backend.chunks(network, X)
    assert len(chunks) == 2  # 300 samples: at least 64 a share
    assert_array_equal(
        np.sort(np.concatenate([np.arange(300)[c] for c in chunks])), np.arange(300)
    )
    shared = backend.outputs(network, params, X, Workspace())
    assert_allclose(shared, whole, rtol=1e-12, atol=1e-14)


def test_effective_n_jobs():
    cores = joblib.cpu_count()  # what n_jobs=-1 means for scikit-learn too
    assert effective_n_jobs(None) == 1
    assert effective_n_jobs(1) == 1
    assert effective_n_jobs(3) == 3
    assert effective_n_jobs(-1) == cores
    assert effective_n_jobs(-2) == max(1, cores - 1)
    assert effective_n_jobs(-1000) == 1
    with pytest.raises(ValueError, match="n_jobs == 0"):
        effective_n_jobs(0)
    assert effective_n_jobs(np.int64(2)) == 2
    for bad in (1.5, "2", True):  # set after fit, which validates parameters
        with pytest.raises(ValueError, match="'n_jobs' parameter must be an int "
                                             f"or None. Got {bad!r}"):
            effective_n_jobs(bad)
    assert type(make_backend(None)) is SerialBackend
    backend = make_backend(1)
    assert isinstance(backend, ProcessBackend) and backend.n_shares == 1
    backend = make_backend(2)
    assert isinstance(backend, ProcessBackend) and backend.n_shares == 2
    assert backend.runtime is RUNTIME


@requires_proc
def test_minus_one_counts_cores_as_joblib_does(monkeypatch):
    # Beside the affinity, joblib counts a container's CPU quota (cgroups) and
    # LOKY_MAX_CPU_COUNT: the cores a process may use, not the host's.
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert effective_n_jobs(-1) == 1
    X, y = regression()
    params = {**FIT, "max_iter": 2}
    before, pids = children(), RUNTIME.pids()
    cpu = settled_cpu_seconds(pids)
    est = LSTMRegressor(**params, n_jobs=-1).fit(X, y)
    assert children() <= before and RUNTIME.pids() == pids
    assert settled_cpu_seconds(pids) - cpu < 0.0005  # no helper computed
    one = LSTMRegressor(**params, n_jobs=1).fit(X, y)
    assert_same(model_arrays(est), model_arrays(one))


ONE_CORE = """
    import os
    from sklearn_lstm._backend import effective_n_jobs

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(effective_n_jobs(-1))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity")
def test_minus_one_counts_the_cores_this_process_may_run_on():
    result = run_script(ONE_CORE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]


# ============================================ 2. helpers compute the same bits
@requires_helpers
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["identity", "logistic", "softmax"])
def test_helpers_compute_the_loss_and_gradients_of_serial(
    runtime, loss, dtype, ragged, dropout
):
    network, params, batch = problem(loss, dtype, ragged, dropout)
    B, T = batch.X.values.shape[:2]
    expected = one_thread("loss_grad", network, params, batch, loss)
    backend = CountingBackend(2, runtime=runtime)
    assert backend.n_helpers(network, "fit", B, T) == 1
    with recording() as messages:
        with backend.session(network, "fit", B, T):
            got = backend.loss_grad(network, params, batch, loss, Workspace())
            # A second batch in the same session, as in a fit.
            again = backend.loss_grad(network, params, batch, loss, Workspace())
    assert not messages
    assert backend.here == 2  # of 4 shares: the helper computed the others
    assert got[1][0].dtype == dtype
    assert_same(got, expected)
    assert_same(again, expected)


@requires_helpers
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_helpers_compute_the_outputs_of_serial(runtime, dtype, ragged):
    network, params, _ = problem("identity", dtype, False, False)
    X = to_predict(dtype, ragged)
    n_samples, n_steps = X.values.shape[:2]
    assert network.step_macs() * n_steps * n_samples >= MIN_PREDICT_MACS
    expected = one_thread("outputs", network, params, X)
    backend = CountingBackend(2, runtime=runtime)
    n_chunks = len(backend.chunks(network, X))
    with recording() as messages:
        with backend.session(network, "predict", n_samples, n_steps):
            got = backend.outputs(network, params, X, Workspace())
    assert not messages
    assert backend.here < n_chunks  # the helper computed some chunks
    assert got.dtype == dtype
    assert_same(got, expected)


@requires_helpers
@pytest.mark.parametrize(
    "bidirectional, pooling",
    [(True, "last"), (False, "mean"), (True, "max"), (True, "none")],
)
def test_helpers_compute_every_network_shape_like_serial(
    runtime, bidirectional, pooling
):
    shape = {"bidirectional": bidirectional, "pooling": pooling}
    network, params, batch = problem("softmax", np.float64, True, True, **shape)
    B, T = batch.X.values.shape[:2]
    expected = one_thread("loss_grad", network, params, batch, "softmax")
    X = to_predict(np.float64, True)
    n_samples, n_steps = X.values.shape[:2]
    expected_out = one_thread("outputs", network, params, X)
    backend = CountingBackend(2, runtime=runtime)
    with recording() as messages:
        with backend.session(network, "fit", B, T):
            got = backend.loss_grad(network, params, batch, "softmax", Workspace())
        here = backend.here
        with backend.session(network, "predict", n_samples, n_steps):
            got_out = backend.outputs(network, params, X, Workspace())
    assert not messages
    assert here == 1 and backend.here < 1 + len(backend.chunks(network, X))
    assert_same(got, expected)
    assert_same(got_out, expected_out)


# ================================================================ 3. estimators
@requires_proc
def test_estimators_by_default_start_no_process():
    X, y = regression()
    Xc, yc = classification()
    network = Network.stack(F, [H], 1)
    # At these sizes, n_jobs=2 would share the work with helpers.
    assert network.step_macs() * T * BATCH / 2 >= MIN_SHARE_MACS
    before, pids = children(), RUNTIME.pids()
    cpu = settled_cpu_seconds(pids)
    for n_jobs in (None, 1):
        params = {**FIT, "max_iter": 2, "n_jobs": n_jobs}
        LSTMRegressor(**params).fit(X, y).predict(X_PREDICT)
        LSTMClassifier(**params).fit(Xc, yc).predict_proba(X_PREDICT)
    assert children() <= before
    assert RUNTIME.pids() == pids
    # Helpers alive from other tests did nothing.
    assert settled_cpu_seconds(pids) - cpu < 0.0005


@requires_helpers
@requires_proc
@pytest.mark.parametrize("cls", [LSTMRegressor, LSTMClassifier])
def test_n_jobs_results_do_not_depend_on_helpers(warm, cls):
    X, y = regression() if cls is LSTMRegressor else classification()
    cpu = settled_cpu_seconds(warm)
    shared = cls(**FIT, n_jobs=2).fit(X, y)
    fit_cpu = settled_cpu_seconds(warm)
    shared_predictions = predictions(shared)
    predict_cpu = settled_cpu_seconds(warm)
    assert RUNTIME.pids() == warm
    assert fit_cpu - cpu > 0.01  # the helper computed shares of the fit ...
    assert predict_cpu - fit_cpu > 0.002  # ... and of the predictions
    with threadpool_limits(limits=1):  # no helper then
        alone = cls(**FIT, n_jobs=2).fit(X, y)
        alone_predictions = predictions(alone)
        shared_predictions_alone = predictions(shared)
    assert settled_cpu_seconds(warm) - predict_cpu < 0.0005
    assert RUNTIME.pids() == warm
    assert_same(model_arrays(alone), model_arrays(shared))
    assert_same(alone_predictions, shared_predictions)
    assert_same(shared_predictions_alone, shared_predictions)


@pytest.mark.skipif(
    min([lib["num_threads"] for lib in threadpool_info()] or [1]) < 2,
    reason="BLAS runs on one thread here anyway",
)
@pytest.mark.parametrize("n_jobs", [None, 1, 2])
@pytest.mark.parametrize("size", ["wide inputs", "wide layer"])
def test_results_do_not_depend_on_blas_threads(n_jobs, size):
    # What GridSearchCV's loky workers (BLAS on one thread) and this process give.
    # Wide inputs: with 64 features and 16 units, the products of the backward
    # pass have 81 columns, which two BLAS threads cut unevenly, and the last
    # bits of their sums change with the cut. A wide layer: OpenBLAS's threaded
    # float64 product of the backward pass (170 x 680 by 680 x 64) rounds
    # differently; so do its dot products of 10^5 entries (the norm for gradient
    # clipping, the L2 penalty).
    rng = np.random.RandomState(0)
    if size == "wide inputs":
        X = rng.normal(size=(96, 12, 64))
        params = {"hidden_layer_sizes": 16}
    else:
        X = rng.normal(size=(128, 12, 2))
        params = {"hidden_layer_sizes": 170, "alpha": 1e-2, "max_grad_norm": 1e-3}
    y = X[:, :, 0].sum(axis=1)
    params = {**FIT, **params, "max_iter": 2, "n_jobs": n_jobs}
    with recording():
        free = LSTMRegressor(**params).fit(X, y)
        with threadpool_limits(limits=1):
            limited = LSTMRegressor(**params).fit(X, y)
    assert_same(model_arrays(limited), model_arrays(free))
    assert_same(free.predict(X), limited.predict(X))


@pytest.mark.skipif(
    min([lib["num_threads"] for lib in threadpool_info()] or [1]) < 2,
    reason="BLAS runs on one thread here anyway",
)
def test_default_fits_in_other_threads_give_the_same_model():
    # GridSearchCV's threading backend: fits in threads started for them, two at
    # once. OpenBLAS 0.3.31 does not apply threadpoolctl's limit set from such a
    # thread; the wide layer makes its threaded products round differently.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(128, 12, 2))
    y = X[:, :, 0].sum(axis=1)
    params = {**FIT, "hidden_layer_sizes": 170, "max_iter": 2, "n_jobs": None}
    rates = (1e-3, 1e-2)
    with recording():
        expected = [model_arrays(LSTMRegressor(**params, learning_rate_init=rate)
                                 .fit(X, y)) for rate in rates]
        models = [None, None]

        def fit(i):
            est = LSTMRegressor(**params, learning_rate_init=rates[i])
            models[i] = model_arrays(est.fit(X, y))

        for concurrent in (False, True):
            threads = [threading.Thread(target=fit, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
                if not concurrent:
                    thread.join()
            for thread in threads:
                thread.join()
            for got, want in zip(models, expected):
                assert_same(got, want)
    assert blas_threads() >= 2  # the limits of before are back


@requires_helpers
@requires_proc
def test_two_threads_fitting_at_once(warm, reference):
    X, y = regression()
    blas, cpu = blas_limits(), cpu_seconds(warm)
    barrier = threading.Barrier(2)
    models, errors = [None, None], []

    def fit(i):
        try:
            cores = os.sched_getaffinity(0)
            barrier.wait(timeout=10)
            models[i] = LSTMRegressor(**FIT, n_jobs=2).fit(X, y)
            assert os.sched_getaffinity(0) == cores
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(2)]
    with recording() as messages:  # from either thread
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors and all(models)
    assert not messages, messages
    assert cpu_seconds(warm) - cpu > 0.01  # one of them had the helper
    assert_blas_limits_as(blas)
    arrays, expected = reference
    for est in models:
        assert_same(model_arrays(est), arrays)
        assert_same(predictions(est), expected)


def fingerprint(est, X, y):
    """A "score" that digests the fitted model's bits: equal for equal models."""
    digest = hashlib.sha256(b"".join(a.tobytes() for a in model_arrays(est)))
    return float(int.from_bytes(digest.digest()[:6], "big"))  # exact in a mean


@requires_helpers
@requires_proc
@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_grid_search_scores_do_not_depend_on_joblib(warm, n_jobs):
    X, y = regression()
    est = LSTMRegressor(**{**FIT, "max_iter": 2}, n_jobs=n_jobs)
    if n_jobs is None:
        # The default layer of 100 units, in float64: products that OpenBLAS
        # rounds differently on two threads than in loky's workers (one).
        est.set_params(hidden_layer_sizes=(100,), dropout=0.0)
    grid = {"learning_rate_init": [1e-3, 1e-2]}

    def scores(**params):
        # The mean R2 score, and (R2 being blind to the last bits of a few
        # weights) the fingerprint of each fold's model.
        search = GridSearchCV(est, grid, cv=2, refit=False,
                              scoring={"r2": "r2", "model": fingerprint}, **params)
        results = search.fit(X, y).cv_results_
        return [results[key] for key in ("mean_test_r2", "split0_test_model",
                                         "split1_test_model")]

    cpu = settled_cpu_seconds(warm)
    expected = scores(n_jobs=1)
    assert np.isfinite(expected[0]).all()
    helped = settled_cpu_seconds(warm) - cpu
    assert helped > 0.01 if n_jobs == 2 else helped < 0.0005
    assert_same(scores(n_jobs=2), expected)  # loky's processes
    with joblib.parallel_backend("threading"):
        assert_same(scores(n_jobs=2), expected)


# ==================================================================== 4. faults
@requires_helpers
@requires_proc
def test_a_stopped_helper_is_given_up(warm, reference):
    X, y = regression()
    blas, stopped = blas_limits(), []

    def stop():
        pid = RUNTIME.pids()[0]  # the fit's helper
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        assert wait_until(lambda: proc_state(pid) == "T", 5) is not None
        watchdog.start()

    def unstop():  # were the wait not bounded, the fit would end late, not never
        for pid in stopped:
            if running(pid):
                os.kill(pid, signal.SIGKILL)

    watchdog = threading.Timer(15, unstop)
    est = sabotaged(LSTMRegressor, 6, stop)(**FIT, n_jobs=2)
    try:
        messages, seconds = timed_fit(est, X, y)
    finally:
        watchdog.cancel()
        unstop()
    assert stopped == warm[:1]
    assert len(messages) == 1, messages
    assert re.search(r"n_jobs=2: a helper process did not answer a share in time "
                     r"\(1\.0 s\)", messages[0])
    assert seconds < 2 * REPLY_FLOOR_SECONDS + 3  # the fit itself takes ~0.3 s
    assert not running(stopped[0])  # ended
    assert_as_undisturbed(est, blas, reference)


@requires_helpers
@requires_proc
def test_a_killed_helper_costs_nothing_but_a_warning(warm, reference):
    X, y = regression()
    blas, killed = blas_limits(), []

    def kill():
        pid = RUNTIME.pids()[0]  # the fit's helper
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        assert gone_within(pid, 5) is not None

    est = sabotaged(LSTMRegressor, 6, kill)(**FIT, n_jobs=2)
    messages, seconds = timed_fit(est, X, y)
    assert killed == warm[:1]
    assert len(messages) == 1, messages
    assert re.search(r"n_jobs=2: a helper process (exited|cannot be sent a share)",
                     messages[0])
    assert seconds < 3
    assert_as_undisturbed(est, blas, reference)
    # The next fit starts another helper, without a word, and gets the same model.
    again = LSTMRegressor(**FIT, n_jobs=2)
    messages, seconds = timed_fit(again, X, y)
    assert not messages, messages
    assert RUNTIME.pids() and killed[0] not in RUNTIME.pids()
    assert seconds < 10
    assert_same(model_arrays(again), reference[0])


@requires_helpers
@requires_proc
def test_a_helper_lost_in_a_long_prediction_leaves_no_chunk_out(runtime):
    # Long sequences make chunks of few samples, so a prediction takes several
    # rounds of this process and the helper; the helper dies in the first.
    network, params, _ = problem("identity", np.float64, False, False)
    X = to_predict(np.float64, False, n=600, T=400)
    n_samples, n_steps = X.values.shape[:2]
    expected = one_thread("outputs", network, params, X)
    killed = []

    class Killing(ProcessBackend):
        def compute(self, task, workspace):
            if not killed:  # the helper has the round's other chunk
                (pid,) = self.runtime.pids()
                os.kill(pid, signal.SIGKILL)
                assert gone_within(pid, 5) is not None
                killed.append(pid)
            return super().compute(task, workspace)

    backend = Killing(2, runtime=runtime)
    assert len(backend.chunks(network, X)) >= 4  # rounds after the first
    with recording() as messages:
        with backend.session(network, "predict", n_samples, n_steps):
            got = backend.outputs(network, params, X, Workspace())
    assert killed
    assert len(messages) == 1 and "a helper process exited" in messages[0]
    assert_same(got, expected)


KILL_WITH_SIGPIPE_DEFAULT = """
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as some programs do
    import os, pickle, sys, time
    import numpy as np
    from sklearn_lstm import LSTMRegressor
    from sklearn_lstm._processes import RUNTIME

    with open(sys.argv[1], "rb") as file:
        X, y, X_predict, params = pickle.load(file)
    killed = []

    def state(pid):
        try:
            with open(f"/proc/{pid}/stat") as file:
                return file.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:  # reaped already
            return None

    class Sabotaged(LSTMRegressor):
        def _step(self, *args):
            super()._step(*args)
            self.steps_done_ = getattr(self, "steps_done_", 0) + 1
            if self.steps_done_ == 6:
                (pid,) = RUNTIME.pids()
                os.kill(pid, signal.SIGKILL)
                while state(pid) not in ("Z", None):  # dead: socket closed
                    time.sleep(0.01)
                killed.append(pid)

    RUNTIME.crowded_seconds = float("inf")  # takes part however busy the machine
    est = Sabotaged(**params, n_jobs=2).fit(X, y)
    assert killed, "no helper took part"
    np.save(sys.argv[2], est.predict(X_predict))
    print("done")
"""


@requires_helpers
@requires_proc
def test_a_killed_helper_with_sigpipe_default(tmp_path, reference):
    data = dump_data(tmp_path / "data.pkl")
    out = tmp_path / "predictions.npy"
    start = time.monotonic()
    result = run_script(KILL_WITH_SIGPIPE_DEFAULT, data, out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["done"]
    assert "n_jobs=2: a helper process" in result.stderr
    assert time.monotonic() - start < 30
    assert_same(np.load(out), reference[1][0])


NEVER_READY = "#!/bin/sh\nexec sleep 30\n"


@requires_helpers
@requires_proc
@pytest.mark.parametrize(
    "executable, reason",
    [(NEVER_READY, r"did not report ready in time"),
     ("false", r"exited \(code 1\)")],
    ids=["never-ready", "exits-at-once"],
)
def test_helpers_that_cannot_start(tmp_path, executable, reason):
    if executable.startswith("#!"):
        path = tmp_path / "python"
        path.write_text(executable)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        executable = str(path)
    else:
        executable = shutil.which(executable)
        if executable is None:
            pytest.skip("no false(1)")
    runtime = helper_runtime(executable=executable, start_seconds=1.0)
    network, params, batch = problem("logistic", np.float64, True, True)
    X = to_predict(np.float64, True, n=300)
    B, T = batch.X.values.shape[:2]
    expected = (one_thread("loss_grad", network, params, batch, "logistic"),
                one_thread("outputs", network, params, X))
    blas, before = blas_limits(), children()
    try:
        backend = CountingBackend(2, runtime=runtime)
        assert backend.n_helpers(network, "fit", B, T) == 1
        with recording() as messages:
            start = time.monotonic()
            with backend.session(network, "fit", B, T):
                seconds = time.monotonic() - start
                got = (backend.loss_grad(network, params, batch, "logistic",
                                         Workspace()),
                       backend.outputs(network, params, X, Workspace()))
        assert seconds < runtime.start_seconds + 2
        assert len(messages) == 1, messages
        assert re.search(r"n_jobs=2: helper processes could not start: " + reason,
                         messages[0])
        assert backend.here == 2 + len(backend.chunks(network, X))  # all here
        assert_same(got[0], expected[0])
        assert_same(got[1], expected[1])
        assert runtime.pids() == []
        assert children() <= before  # the process that did not serve is ended
        assert_blas_limits_as(blas)
        # No helper starts again, and nothing more is said about it.
        with recording() as messages:
            with backend.session(network, "fit", B, T):
                again = backend.loss_grad(network, params, batch, "logistic",
                                          Workspace())
        assert not messages and runtime.pids() == []
        assert_same(again, expected[0])
    finally:
        runtime.close_all(kill=True)


# ================================================================= 5. isolation
TRAP = """
import os
open(os.path.join({marks!r}, "{name}-%d" % os.getpid()), "w").close()
raise ImportError("{name}.py of " + {where!r} + " was imported")
"""

FIT_IN_TRAPS = """
    import os, pickle, sys, warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn_lstm import LSTMRegressor
    from sklearn_lstm._processes import RUNTIME

    data, traps, path = sys.argv[1:]
    with open(data, "rb") as file:
        X, y, X_predict, params = pickle.load(file)
    # Helpers start with the first fit, here, with PYTHONPATH on a directory of
    # traps: they inherit both.
    os.chdir(traps)
    os.environ["PYTHONPATH"] = path
    warnings.simplefilter("error")
    warnings.simplefilter("ignore", ConvergenceWarning)
    LSTMRegressor(**params, n_jobs=2).fit(X, y)
    print(*RUNTIME.pids())
"""


def make_traps(tmp_path):
    """Modules that leave a mark when imported: in ``traps`` (the helpers'
    current directory) and ``path`` (on their PYTHONPATH)."""
    marks, traps, path = (tmp_path / name for name in ("marks", "traps", "path"))
    for directory in (marks, traps, path):
        directory.mkdir()
    for where, names in ((traps, ("json", "numpy", "pickle", "socket")),
                         (path, ("sitecustomize", "json", "struct", "hashlib"))):
        for name in names:
            (where / f"{name}.py").write_text(
                TRAP.format(marks=str(marks), name=name, where=str(where))
            )
    return marks, traps, path


@requires_helpers
@requires_proc
def test_helpers_ignore_the_current_directory_and_pythonpath(tmp_path):
    marks, traps, path = make_traps(tmp_path)
    data = dump_data(tmp_path / "data.pkl")
    program = tmp_path / "program"  # run from its own directory: not the traps
    program.mkdir()
    (program / "fit.py").write_text(script(FIT_IN_TRAPS))
    result = subprocess.run(
        [sys.executable, str(program / "fit.py"), data, traps, path],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pids = [int(pid) for pid in result.stdout.split()]
    assert pids, "no helper took part"
    assert sorted(os.listdir(marks)) == []
    # The helpers exited with their training process.
    for pid in pids:
        assert gone_within(pid, 10) is not None
    # The traps are armed: an interpreter that is not isolated walks into them.
    env = {**os.environ, "PYTHONPATH": str(path)}
    subprocess.run([sys.executable, "-c", "import numpy"], cwd=traps, env=env,
                   capture_output=True, timeout=60)
    assert {name.split("-")[0] for name in os.listdir(marks)} >= {
        "sitecustomize", "numpy"
    }


@requires_helpers
def test_a_path_object_in_sys_path_changes_nothing(tmp_path, reference):
    runtime = helper_runtime()
    sys.path.insert(0, tmp_path)  # a pathlib.Path, as some programs add
    try:
        messages, here = one_batch_of_two_shares(runtime)
        assert not messages
        assert here == 1 and runtime.pids()
        # The estimators' runtime, starting a helper now, as well.
        RUNTIME.close_all()
        X, y = regression()
        est = LSTMRegressor(**FIT, n_jobs=2)
        messages, _ = timed_fit(est, X, y)
        assert not messages and RUNTIME.pids()
        assert_same(model_arrays(est), reference[0])
    finally:
        sys.path.remove(tmp_path)
        runtime.close_all()


# ======================================================= 6. cores and BLAS
@requires_helpers
@requires_proc
def test_the_fit_leaves_cores_and_blas_alone(warm):
    X, y = regression()
    cores, blas = os.sched_getaffinity(0), blas_limits()
    seen_cores, seen_blas = [], []

    def look():
        seen_cores.append(os.sched_getaffinity(0))
        seen_blas.append(min(lib["num_threads"] for lib in threadpool_info()
                             if lib["user_api"] == "blas"))

    class Watched(LSTMRegressor):
        def _step(self, params, grads, loss):
            super()._step(params, grads, loss)
            look()

    cpu = cpu_seconds(warm)
    Watched(**FIT, n_jobs=2).fit(X, y)
    assert cpu_seconds(warm) - cpu > 0.01  # with the helper
    assert len(seen_cores) == 20 and all(seen == cores for seen in seen_cores)
    assert set(seen_blas) == {1}  # BLAS on one thread while helpers compute ...
    assert os.sched_getaffinity(0) == cores
    assert_blas_limits_as(blas)  # ... and as before afterwards
    for pid in warm:  # helpers are not pinned either
        assert os.sched_getaffinity(pid) == cores


@contextmanager
def every_core_busy():
    """A process that never sleeps on every core of the machine, until the
    machine is judged busy (``_cores_to_spare``) and for the ``with`` body."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(os.cpu_count())]
    try:
        assert wait_until(lambda: not _cores_to_spare(), 5) is not None
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def require_free_cores(n, seconds=10.0):
    """Skip the test unless, within ``seconds``, ``n`` cores besides this test's
    are free of other programs for a tenth of a second: what the test checks
    happens only then (on a shared machine, other programs may hold them)."""

    def free():  # where the machine cannot be read, as the runtime: free
        for _ in range(10):
            running = _runnable()  # this test's thread counts
            if running is not None and running > os.cpu_count() - n:
                return False
            time.sleep(0.01)
        return True

    if wait_until(free, seconds) is None:
        pytest.skip(f"needs {n} core(s) free besides this test's: other "
                    f"programs kept them busy for {seconds:g} s")


@requires_proc
def test_waits_do_not_poll_while_processes_wait_for_cores():
    # Polling would take a core from the process waited for (or from another
    # program): with a busy process on every core, a wait sleeps at once.
    require_free_cores(0)
    with every_core_busy():
        pass
    assert wait_until(_cores_to_spare, 5) is not None


def test_a_wait_polls_as_long_as_waking_typically_takes():
    # Polling burns a core; sleeping loses the time this process takes to wake.
    # A wait polls for what a wake-up typically costs (the median of the last
    # ones, robust to a rare slow one), never longer than a share, nor than
    # MAX_POLL_SECONDS.
    wakes = _Wakes()
    assert wakes.poll_seconds(1.0) == 0.0  # nothing seen: sleep, and learn
    asleep = time.monotonic() - 1.0  # since before each message was sent
    for late in [1e-4, 3e-4, 2e-4, 0.5, 1e-4]:  # one very late wake-up
        wakes.see(time.monotonic() - late, asleep)
    assert 2e-4 <= wakes.poll_seconds(1.0) < 3e-4  # the median, 2e-4 late
    assert wakes.poll_seconds(1e-4) == 1e-4  # shares of 0.1 ms: 0.1 ms
    for _ in range(WAKE_SAMPLES):  # only the last ones count: waking got slower
        wakes.see(time.monotonic() - 0.03, asleep)
    assert wakes.poll_seconds(1.0) == MAX_POLL_SECONDS
    # A message sent before the process slept did not wake it, and one that
    # woke it on a crowded machine measured the crowd: nothing learnt.
    samples = list(wakes.samples)
    wakes.see(asleep - 1e-3, asleep)
    wakes.see(time.monotonic() - 1e-4, asleep, crowded=True)
    assert list(wakes.samples) == samples
    assert wakes.poll_seconds(1.0) == MAX_POLL_SECONDS


@requires_helpers
def test_waits_learn_how_late_this_process_wakes(warm, monkeypatch):
    # The helper notes when it sends each answer: a training process that slept
    # waiting for one learns how late it woke, and from then on polls that long.
    # Here its own share is one sample and the helper's sixty-four, so that it
    # waits, and it has seen no wake-up yet, so that it sleeps at once. (Five
    # times: a wake-up at a moment a kernel thread crowds the machine is not
    # learnt.)
    require_free_cores(1)  # wake-ups on a crowded machine teach nothing
    wakes = _Wakes()
    monkeypatch.setattr(_processes, "_wakes", wakes)
    network, params, batch = problem("softmax", np.float64, False, False)
    tasks = [("loss_grad", (network, params, batch.take(np.arange(n)), "softmax"))
             for n in (1, len(batch))]
    backend = ProcessBackend(2)
    answers = []
    with backend.session(network, "fit", len(batch), 32):
        assert backend.free_helpers()
        for _ in range(5):
            backend.run(tasks, lambda j, result: answers.append(j), Workspace())
    assert answers == [0, 1] * 5
    assert 1 <= len(wakes.samples) <= 5
    assert all(0 < late < 1.0 for late in wakes.samples)
    assert wakes.poll_seconds(1.0) == min(wakes.typical, MAX_POLL_SECONDS)


@requires_helpers
@requires_proc
def test_next_to_busy_processes_shares_are_computed_here(warm, monkeypatch):
    # A helper that would wait for a core makes every mini-batch wait for it:
    # with a busy process on every core, this process computes the shares one
    # after the other (the same results), the helper sleeps. Kernel threads'
    # moments do not count: the machine must stay busy for CROWDED_SECONDS.
    monkeypatch.setattr(RUNTIME, "crowded_seconds", CROWDED_SECONDS)  # the rule
    require_free_cores(1)  # for the quiet fits
    X, y = regression()
    # 120 epochs, about a second and a half: no early end by tol.
    params = {**FIT, "n_jobs": 2, "max_iter": 120, "n_iter_no_change": 120}
    blas = blas_limits()
    cpu = settled_cpu_seconds(warm)
    quiet = LSTMRegressor(**params).fit(X, y)
    helper_cpu = settled_cpu_seconds(warm) - cpu
    assert helper_cpu > 5 * CROWDED_SECONDS  # on a quiet machine it takes part
    with every_core_busy():
        cpu = settled_cpu_seconds(warm)
        busy = LSTMRegressor(**params)
        messages, _ = timed_fit(busy, X, y)
        busy_cpu = settled_cpu_seconds(warm) - cpu
    assert not messages, messages
    assert busy_cpu < 2 * CROWDED_SECONDS  # shares until it judged, then none
    assert RUNTIME.pids() == warm
    assert_blas_limits_as(blas)
    assert_same(model_arrays(busy), model_arrays(quiet))
    assert_same(predictions(busy), predictions(quiet))
    # Once the machine is free again, the helper takes part again.
    assert wait_until(_cores_to_spare, 5) is not None
    cpu = settled_cpu_seconds(warm)
    LSTMRegressor(**params).fit(X, y)
    assert settled_cpu_seconds(warm) - cpu > helper_cpu / 2


# ============================================================ 7. idle helpers
def one_silent_session_with_a_helper(runtime):
    """Run one batch of two shares in a session of ``runtime``: a helper computes
    one, without a warning, and the result is serial's bit for bit. Returns the
    helper's pid."""
    messages, here = one_batch_of_two_shares(runtime, ragged=False)
    assert not messages
    assert here == 1  # the helper computed the other share
    (pid,) = runtime.pids()
    return pid


@requires_helpers
@requires_proc
def test_idle_helpers_exit_and_are_replaced_silently():
    runtime = helper_runtime(idle_seconds=0.5)
    try:
        pids = []
        for _ in range(2):
            pid = one_silent_session_with_a_helper(runtime)
            pids.append(pid)
            seconds = gone_within(pid, 5)
            assert seconds is not None and seconds < 2.5
        assert pids[0] != pids[1]
    finally:
        runtime.close_all()


@requires_helpers
@requires_proc
def test_a_helper_that_exits_when_idle_leaves_no_zombie():
    # Nothing of the package runs after the session, yet the helper that exits
    # is reaped at once: no "<defunct>" entry stays in the process table.
    runtime = helper_runtime(idle_seconds=0.5)
    try:
        pid = one_silent_session_with_a_helper(runtime)
        (helper,) = runtime._helpers
        seconds = wait_until(lambda: proc_state(pid) is None, 5)
        assert seconds is not None, f"state {proc_state(pid)!r} after 5 s"
        # and the thread that waited for it has ended
        ended = wait_until(lambda: helper._watcher not in sys._current_frames(), 5)
        assert ended is not None
    finally:
        runtime.close_all()


def test_a_helper_stopped_between_sessions_is_replaced():
    # SIGSTOP while the helper waits for work (a debugger, a job-control stop):
    # the next session gives it up within SESSION_SECONDS, with a warning, and
    # starts another.
    runtime = helper_runtime()
    try:
        pids = [one_silent_session_with_a_helper(runtime)]
        os.kill(pids[0], signal.SIGSTOP)
        start = time.monotonic()
        messages, here = one_batch_of_two_shares(runtime, ragged=False)
        assert time.monotonic() - start < SESSION_SECONDS + 3
        assert len(messages) == 1, messages
        assert re.search(r"n_jobs=2: a helper process did not answer the start of "
                         r"a session in time \(stopped\?\)\. It was ended", messages[0])
        assert here == 1  # the new one computed the other share
        pids += runtime.pids()
        assert pids[0] != pids[1]
        assert gone_within(pids[0], 5) is not None  # the stopped one was ended
        assert runtime.start_failed is None
    finally:
        for pid in runtime.pids():
            os.kill(pid, signal.SIGCONT)
        runtime.close_all()


# ============================================================ 8. code upgrades
UPGRADE = """
    import importlib.util, os, pickle, sys, warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    copy, data, out = sys.argv[1:]
    sys.path.insert(0, copy)
    import sklearn_lstm
    from sklearn_lstm import LSTMRegressor
    from sklearn_lstm._processes import RUNTIME

    assert sklearn_lstm.__file__.startswith(copy), sklearn_lstm.__file__
    warnings.simplefilter("error")
    warnings.simplefilter("ignore", ConvergenceWarning)
    with open(data, "rb") as file:
        X, y, X_predict, params = pickle.load(file)
    before = LSTMRegressor(**params, n_jobs=2).fit(X, y)
    first = RUNTIME.pids()
    RUNTIME.close_all()

    # An upgrade on disk: squared_error now computes garbage.
    path = os.path.join(os.path.dirname(sklearn_lstm.__file__), "_losses.py")
    with open(path, "a") as file:
        file.write(
            "\\n\\ndef squared_error(y, z, weights):\\n"
            "    return 123.0, np.full_like(z, 1e3)\\n\\n\\n"
            "LOSS_FUNCTIONS['identity'] = squared_error\\n"
        )
    spec = importlib.util.spec_from_file_location("upgraded", path)
    upgraded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upgraded)
    z = np.zeros((2, 1))
    assert upgraded.LOSS_FUNCTIONS["identity"](z, z, np.full(2, 0.5))[0] == 123.0

    after = LSTMRegressor(**params, n_jobs=2).fit(X, y)
    second = RUNTIME.pids()
    np.savez(out, before=before.predict(X_predict), after=after.predict(X_predict),
             first=first, second=second)
"""


@requires_helpers
def test_helpers_run_the_code_this_process_loaded(tmp_path, reference):
    copy = tmp_path / "copy"
    shutil.copytree(PACKAGE_DIR, copy / "sklearn_lstm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    data = dump_data(tmp_path / "data.pkl")
    out = tmp_path / "out.npz"
    result = run_script(UPGRADE, copy, data, out)
    assert result.returncode == 0, result.stderr
    with np.load(out) as saved:
        first, second = list(saved["first"]), list(saved["second"])
        before, after = saved["before"], saved["after"]
    assert first and second and not set(first) & set(second)  # a new helper
    assert_same(after, before)
    assert_same(before, reference[1][0])


@requires_helpers
def test_a_helper_on_other_blas_kernels_is_refused(monkeypatch):
    # OpenBLAS picks its kernels when it loads: a helper started after
    # OPENBLAS_CORETYPE changed would round otherwise than this process.
    core = blas_core()
    if not core or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs NumPy's OpenBLAS on x86-64")
    other = "Nehalem" if core != "Nehalem" else "Sandybridge"  # any x86-64 runs them
    monkeypatch.setenv("OPENBLAS_CORETYPE", other)
    runtime = helper_runtime()
    try:
        messages, here = one_batch_of_two_shares(runtime)
        assert len(messages) == 1, messages
        assert f"on {other} kernels while this process runs it on {core}" in (
            messages[0])
        assert here == 2 and not runtime.pids()
    finally:
        runtime.close_all()


# =================================================== 9. what helpers are
@requires_helpers
@requires_proc
def test_helpers_load_neither_scikit_learn_nor_scipy(warm):
    for pid in warm:
        with open(f"/proc/{pid}/maps") as file:
            maps = file.read()
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read().split(b"\0")
        assert argv[1] == b"-I"  # isolated
        assert f"{os.sep}numpy{os.sep}" in maps  # NumPy's extensions are listed
        for name in ("sklearn", "scikit_learn.libs", "scipy", "scipy.libs"):
            assert f"{os.sep}{name}{os.sep}" not in maps, name


KILLED_TRAINING = """
    import pickle, sys, time
    from sklearn_lstm import LSTMRegressor
    from sklearn_lstm._processes import RUNTIME

    with open(sys.argv[1], "rb") as file:
        X, y, X_predict, params = pickle.load(file)
    LSTMRegressor(**{**params, "max_iter": 1}, n_jobs=2).fit(X, y)
    print(*RUNTIME.pids(), flush=True)
    time.sleep(60)
"""


@requires_helpers
@requires_proc
def test_helpers_exit_when_the_training_process_is_killed(tmp_path):
    data = dump_data(tmp_path / "data.pkl")
    with subprocess.Popen(
        [sys.executable, "-c", script(KILLED_TRAINING), str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as process:
        try:
            assert select.select([process.stdout], [], [], 60)[0]
            pids = [int(pid) for pid in process.stdout.readline().split()]
        finally:
            process.kill()
    assert pids, "no helper took part"
    for pid in pids:  # no atexit ran: the closed socket tells them
        assert gone_within(pid, 5) is not None


FORKED_CHILD = """
    import gc, os, pickle, sys, warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn_lstm import LSTMRegressor
    from sklearn_lstm._processes import RUNTIME

    warnings.simplefilter("always")  # ResourceWarning included
    warnings.simplefilter("ignore", ConvergenceWarning)
    with open(sys.argv[1], "rb") as file:
        X, y, X_predict, params = pickle.load(file)

    def fit():
        est = LSTMRegressor(**params, n_jobs=2).fit(X, y)
        return est.predict(X_predict)

    with warnings.catch_warnings(record=True) as caught:
        first = fit()
        parents = RUNTIME.pids()
        pid = os.fork()
        if pid == 0:  # the child: a fit of its own, then report
            try:
                gc.collect()
                same = np.array_equal(fit(), first)
                report = (same, RUNTIME.pids(), [str(w.message) for w in caught])
                RUNTIME.close_all()
            except BaseException as exc:
                report = repr(exc)
            with open(sys.argv[2], "wb") as file:
                pickle.dump(report, file)
            os._exit(0)
        os.waitpid(pid, 0)
        again = fit()
    with open(sys.argv[2], "rb") as file:
        child = pickle.load(file)
    print(repr((parents, RUNTIME.pids(), np.array_equal(again, first), child,
                [str(w.message) for w in caught])))
"""


@requires_helpers
@requires_proc
def test_a_forked_child_leaves_the_parents_helpers_alone(tmp_path):
    # multiprocessing's "fork" start method does this: the child gets copies
    # of the parent's helper objects, which it must neither use nor end.
    data = dump_data(tmp_path / "data.pkl")
    result = run_script(FORKED_CHILD, data, tmp_path / "child.pkl")
    assert result.returncode == 0, result.stderr
    parents, parents_after, parent_same, child, parent_warnings = (
        ast.literal_eval(result.stdout)
    )
    assert not isinstance(child, str), child
    child_same, childs, child_warnings = child
    assert parents, "no helper took part"
    assert child_same and parent_same
    # The child started helpers of its own, and the parent still has its own.
    assert childs and not set(childs) & set(parents)
    assert parents_after == parents
    # Not even a ResourceWarning for the parent's socket, file or process.
    assert child_warnings == [] and parent_warnings == []
    assert result.stderr == ""


# ====================================================================== 10. Ctrl-C
@requires_helpers
@requires_proc
def test_ctrl_c_is_not_for_the_helpers(runtime):
    network, params, batch = problem("identity", np.float64, False, False)
    B, T = batch.X.values.shape[:2]
    expected = one_thread("loss_grad", network, params, batch, "identity")

    def session():
        backend = CountingBackend(2, runtime=runtime)
        with recording() as messages:
            with backend.session(network, "fit", B, T):
                got = backend.loss_grad(network, params, batch, "identity",
                                        Workspace())
        assert not messages and backend.here == 1
        assert_same(got, expected)

    session()
    (pid,) = runtime.pids()
    # A terminal's Ctrl-C goes to its foreground process group: not theirs.
    assert os.getsid(pid) != os.getsid(0)
    assert os.getpgid(pid) != os.getpgid(0)
    os.kill(pid, signal.SIGINT)  # even sent to it, it is ignored
    time.sleep(0.2)
    assert running(pid)
    session()
    assert runtime.pids() == [pid]


class Interrupted(Exception):
    """What a user's signal handler raises (Ctrl-C's KeyboardInterrupt, a
    SIGALRM timeout)."""


def interrupting_setters(monkeypatch, at_call):
    """Make OpenBLAS's thread-count setters raise :class:`Interrupted` right
    after their call number ``at_call`` (counting from 1) has changed the
    count: where a signal handler's exception lands when the signal comes
    during the call."""
    calls = [0]
    pairs = _backend._local_setters()
    if not pairs:
        pytest.skip("no OpenBLAS with openblas_set_num_threads_local")

    def interrupting(setter):
        def call(count):
            result = setter(count)
            calls[0] += 1
            if calls[0] == at_call:
                raise Interrupted
            return result
        return call

    wrapped = [(interrupting(setter), lib) for setter, lib in pairs]
    monkeypatch.setattr(_backend, "_local_setters", lambda: wrapped)
    return calls


@pytest.mark.parametrize("at_call", [1, 2, 3, 4])
def test_an_interruption_while_blas_is_held_or_given_back(monkeypatch, at_call):
    # Calls 1-2 hold BLAS to one thread (one per OpenBLAS), the next give the
    # counts back: an exception after any of them still gives them back.
    before = blas_limits()
    calls = interrupting_setters(monkeypatch, at_call)
    with pytest.raises(Interrupted):
        with _backend.blas_on_one_thread():
            pass
    assert calls[0] >= at_call
    assert_blas_limits_as(before)
    assert blas_threads() == min(before.values())
    monkeypatch.undo()
    with _backend.blas_on_one_thread():  # and counting starts afresh
        assert blas_threads() == min(before.values())
    assert_blas_limits_as(before)


def ctrl_c_at_random_moments(call, seconds, longest):
    """Run ``call()`` over and over for ``seconds``, each time with a signal
    (SIGALRM) at a random moment within ``longest`` seconds whose handler raises
    :class:`Interrupted`, as Ctrl-C raises KeyboardInterrupt; after each run,
    BLAS's limits must be as before. Returns how many runs were interrupted."""
    before = blas_limits()
    rng = np.random.default_rng(0)

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    interrupted = 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                signal.setitimer(signal.ITIMER_REAL, rng.uniform(0, longest))
                call()
                signal.setitimer(signal.ITIMER_REAL, 0)
            except Interrupted:
                interrupted += 1
            while True:  # a signal due just now lands here, not in the checks
                try:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    break
                except Interrupted:
                    pass
            assert_blas_limits_as(before)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return interrupted


def test_ctrl_c_in_predictions_leaves_blas_as_it_was():
    X, y = regression(n=64)
    est = LSTMRegressor(**{**FIT, "max_iter": 1}).fit(X, y)
    small = X[:4]
    interrupted = ctrl_c_at_random_moments(lambda: est.predict(small), 2.0, 0.002)
    assert interrupted > 20
    assert_same(predictions(est, small), predictions(est.fit(X, y), small))


@requires_helpers
@requires_proc
def test_ctrl_c_at_random_moments_of_shared_work(warm):
    # Starts, handshakes, shares and ends of sessions, interrupted anywhere: the
    # next fit is undisturbed (its helpers replaced if need be) and BLAS's
    # limits are as before after each.
    X, y = regression()
    est = LSTMRegressor(**FIT, n_jobs=2).fit(X, y)
    expected = predictions(est)
    interrupted = ctrl_c_at_random_moments(lambda: est.predict(X_PREDICT), 3.0, 0.05)
    assert interrupted > 10
    with recording() as messages:
        assert_same(predictions(est), expected)
        assert_same(predictions(LSTMRegressor(**FIT, n_jobs=2).fit(X, y)), expected)
    assert not messages, messages
    assert RUNTIME.start_failed is None


@requires_helpers
@requires_proc
def test_ctrl_c_while_a_session_starts(warm):
    # The helper is stopped, so the prediction waits for it to answer the start
    # of the session; Ctrl-C comes then. What the helper has read is unknown: it
    # is ended (had it resumed, its answer could have been read later as the
    # answer to something else), and the next predictions start another.
    X, y = regression()
    est = LSTMRegressor(**FIT, n_jobs=2).fit(X, y)
    expected = predictions(est)
    (pid,) = RUNTIME.pids()
    os.kill(pid, signal.SIGSTOP)

    def ctrl_c_then_resume():
        time.sleep(0.3)
        # To the main thread, as a terminal's Ctrl-C comes (raise_signal would
        # send it to this thread, and the main thread would see it only once
        # something woke it).
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.2)
        with suppress(ProcessLookupError):  # ended and reaped
            os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=ctrl_c_then_resume)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            predictions(est)
            time.sleep(1)  # should the prediction end first, Ctrl-C lands here
    finally:
        thread.join()
        if running(pid):
            os.kill(pid, signal.SIGCONT)
    assert gone_within(pid, 5) is not None
    with recording() as messages:
        for _ in range(3):
            assert_same(predictions(est), expected)
    assert not messages, messages
    assert RUNTIME.start_failed is None
    assert pid not in RUNTIME.pids()


def interrupt_wait_ready_once(monkeypatch, after_report):
    """Make the next wait for a helper's ready report raise KeyboardInterrupt,
    before or ``after_report`` was read."""
    wait_ready = _Helper.wait_ready

    def interrupted(helper, deadline):
        if after_report:
            wait_ready(helper, deadline)
        monkeypatch.setattr(_Helper, "wait_ready", wait_ready)
        raise KeyboardInterrupt

    monkeypatch.setattr(_Helper, "wait_ready", interrupted)


@requires_helpers
@requires_proc
@pytest.mark.parametrize("where", ["in Popen", "before its code was sent"])
def test_ctrl_c_right_after_a_helper_process_started(monkeypatch, where):
    # Interrupted once the helper's process exists: inside Popen (while it
    # waits for the process to run the interpreter), or before the helper was
    # sent its code. The helper is ended and reaped at once, not left running
    # until it sees its socket closed (with Popen warning that it still runs).
    runtime = helper_runtime()
    started = []
    if where == "in Popen":
        execute_child = subprocess.Popen._execute_child

        def interrupted(process, *args, **kwargs):
            execute_child(process, *args, **kwargs)
            if not started:
                started.append(process.pid)
                raise KeyboardInterrupt

        monkeypatch.setattr(subprocess.Popen, "_execute_child", interrupted)
    else:
        send = _processes._send

        def interrupted(sock, kind, payload=b""):
            if kind == b"C" and not started:
                started.append(runtime._helpers[-1].pid)
                raise KeyboardInterrupt
            return send(sock, kind, payload)

        monkeypatch.setattr(_processes, "_send", interrupted)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KeyboardInterrupt):
                one_batch_of_two_shares(runtime)
            assert proc_state(started[0]) is None
            assert runtime.pids() == [] and runtime.start_failed is None
            gc.collect()
        assert not [w for w in caught if "still running" in str(w.message)]
        messages, here = one_batch_of_two_shares(runtime)
        assert not messages and here == 1
    finally:
        runtime.close_all()


@requires_helpers
@requires_proc
def test_ctrl_c_right_after_a_helper_reported_ready(monkeypatch):
    # Interrupted between reading the helper's report and noting it: the helper
    # is ended, and nothing says later that helpers could not start.
    runtime = helper_runtime()
    interrupt_wait_ready_once(monkeypatch, after_report=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            one_batch_of_two_shares(runtime)
        assert runtime.pids() == [] and runtime.start_failed is None
        start = time.monotonic()
        messages, here = one_batch_of_two_shares(runtime)
        assert not messages and here == 1
        assert time.monotonic() - start < 5
    finally:
        runtime.close_all()


def test_a_child_forked_while_another_thread_fits_gives_blas_back():
    # multiprocessing's "fork" start method in a program that fits in a thread:
    # the child has no such thread, and must not keep BLAS on one thread.
    before = blas_limits()
    if min(before.values()) < 2:
        pytest.skip("needs BLAS on two threads or more")
    held, done = threading.Event(), threading.Event()

    def fit():
        with _backend.blas_on_one_thread():
            held.set()
            done.wait(10)

    thread = threading.Thread(target=fit)
    thread.start()
    try:
        assert held.wait(10)
        read, write = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            pid = os.fork()
        if pid == 0:  # the child
            try:
                os.write(write, repr(blas_limits()).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            childs = ast.literal_eval(pipe.read())
        os.waitpid(pid, 0)
    finally:
        done.set()
        thread.join()
    assert childs == before
    assert_blas_limits_as(before)


@requires_helpers
@requires_proc
def test_ctrl_c_twice_while_waiting_for_a_share(monkeypatch):
    # The first Ctrl-C lands while this process waits for the helper's share
    # (its answer stays unread), the second while the helper is being ended.
    # Neither that answer nor a half-ended helper may reach the next session.
    runtime = helper_runtime()
    result, close = _Helper.result, _Helper.close
    interruptions = []

    def interrupted_wait(helper, wait, poll=0.0):
        monkeypatch.setattr(_Helper, "result", result)
        interruptions.append(helper.pid)
        raise KeyboardInterrupt

    def interrupted_close(helper, kill=False):
        monkeypatch.setattr(_Helper, "close", close)
        interruptions.append("close")
        raise KeyboardInterrupt

    try:
        one_silent_session_with_a_helper(runtime)
        monkeypatch.setattr(_Helper, "result", interrupted_wait)
        monkeypatch.setattr(_Helper, "close", interrupted_close)
        with pytest.raises(KeyboardInterrupt):
            one_batch_of_two_shares(runtime)
        assert interruptions[1:] == ["close"]
        for _ in range(2):
            messages, here = one_batch_of_two_shares(runtime)
            assert not messages and here == 1
        assert interruptions[0] not in runtime.pids()
        assert gone_within(interruptions[0], 5) is not None
        assert runtime.start_failed is None
    finally:
        runtime.close_all()


def interrupt_ending_helpers(monkeypatch, times):
    """Make the next ``times`` ends of helpers raise KeyboardInterrupt part way
    (after the kill of a helper ended by force, before its files are closed)."""
    close_files, calls = _Helper._close_files, []

    def interrupted(helper):
        calls.append(helper.pid)
        if len(calls) == times:
            monkeypatch.setattr(_Helper, "_close_files", close_files)
        raise KeyboardInterrupt

    monkeypatch.setattr(_Helper, "_close_files", interrupted)
    return calls


@requires_helpers
@requires_proc
def test_ctrl_c_twice_while_a_stopped_helper_is_ended(monkeypatch):
    # The stopped helper does not answer the start of the session and is ended;
    # Ctrl-C lands there, and again while the runtime ends its helpers after
    # the first. The helper must neither stay stopped for ever (an orphan) nor
    # be taken later for a helper that cannot start.
    runtime = helper_runtime()
    try:
        pid = one_silent_session_with_a_helper(runtime)
        os.kill(pid, signal.SIGSTOP)
        calls = interrupt_ending_helpers(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            one_batch_of_two_shares(runtime)
        assert calls == [pid, pid]
        assert gone_within(pid, 5) is not None
        messages, here = one_batch_of_two_shares(runtime)
        assert here == 1 and runtime.start_failed is None
        assert pid not in runtime.pids()
    finally:
        runtime.close_all()


@requires_helpers
@requires_proc
def test_ctrl_c_twice_while_a_helper_starts(monkeypatch):
    # The first Ctrl-C lands while waiting for a new helper's report, the second
    # while that helper is being ended: the next session ends it for good and
    # starts another, without taking it for a helper that cannot start.
    runtime = helper_runtime()
    interrupt_wait_ready_once(monkeypatch, after_report=False)
    calls = interrupt_ending_helpers(monkeypatch, 1)
    try:
        with pytest.raises(KeyboardInterrupt):
            one_batch_of_two_shares(runtime)
        assert len(calls) == 1
        messages, here = one_batch_of_two_shares(runtime)
        assert not messages and here == 1
        assert runtime.start_failed is None
        assert calls[0] not in runtime.pids()
        assert gone_within(calls[0], 5) is not None
    finally:
        runtime.close_all()


@requires_helpers
@requires_proc
def test_ending_a_helper_never_waits_on_its_popen_lock():
    # subprocess.Popen takes a lock to reap its process, outside its try: an
    # interruption right after leaves the lock held for good, and Popen.wait()
    # would then block for ever. A stopped helper is ended by force without it.
    runtime = helper_runtime()
    try:
        pid = one_silent_session_with_a_helper(runtime)
        (helper,) = runtime._helpers
        assert helper.process._waitpid_lock.acquire(blocking=False)
        os.kill(pid, signal.SIGSTOP)
        done = []
        thread = threading.Thread(
            target=lambda: done.append(one_batch_of_two_shares(runtime)),
            daemon=True,
        )
        thread.start()
        thread.join(30)
        assert done, "the session waited for ever to reap the stopped helper"
        messages, here = done[0]
        assert any("did not answer the start of a session" in m for m in messages)
        assert here == 1 and proc_state(pid) is None  # replaced, and reaped
    finally:
        runtime.close_all()
