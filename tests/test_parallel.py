"""Helper processes that share the mini-batches of a fit (sklearn_lstm._parallel).

What users rely on: a fit whose batches are shared computes the same losses and
gradients as one process alone (up to the order of floating-point sums), any
helper failure leaves a usable model, and nothing of the sharing outlives the fit
(BLAS threads, the training thread's cores, the helpers' lock).
"""

import mmap
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from contextlib import contextmanager

import _data
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

import sklearn_lstm._base as base_module
import sklearn_lstm._parallel as parallel
from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._engine import Workspace
from sklearn_lstm._validation import Sequences

pytestmark = [
    pytest.mark.skipif(
        os.name != "posix", reason="helper processes run on POSIX systems only"
    ),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


@contextmanager
def no_warnings():
    """Turn warnings into errors, except the expected ConvergenceWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        yield


# ------------------------------------------------------------------ helpers
def random_params(rng, n_features, layer_sizes, n_outputs, dtype=np.float64):
    params, inputs = [], n_features
    for hidden in layer_sizes:
        params += [
            rng.normal(0, 0.5, (inputs, 4 * hidden)),
            rng.normal(0, 0.5, (hidden, 4 * hidden)),
            rng.normal(0, 0.5, 4 * hidden),
        ]
        inputs = hidden
    params += [rng.normal(0, 0.5, (inputs, n_outputs)), rng.normal(0, 0.5, n_outputs)]
    return [p.astype(dtype) for p in params]


@pytest.fixture
def pools():
    """Make HelperPools of one helper; all are closed after the test."""
    made = []

    def make(params, n_outputs, max_share, n_steps, dropout=False, loss="identity"):
        layout = parallel.Layout(
            loss,
            params[0].dtype,
            [p.shape for p in params],
            n_outputs,
            max_share,
            n_steps,
            dropout,
        )
        pool = parallel.helper_pool(2, layout)
        assert pool is not None, "the helpers are busy or could not start"
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


@pytest.fixture
def sharing(monkeypatch):
    """Fits share every batch of at least 2 * MIN_SHARE samples with one helper,
    whatever the machine's cores; returns the count of shares sent to helpers."""
    monkeypatch.setattr(base_module, "n_processes", lambda *args: 2)
    sent = []
    submit = parallel.HelperPool.submit

    def counting_submit(self, helper, *args):
        sent.append(len(args[2]))  # samples of the share
        return submit(self, helper, *args)

    monkeypatch.setattr(parallel.HelperPool, "submit", counting_submit)
    return sent


def alone(monkeypatch):
    monkeypatch.setattr(base_module, "n_processes", lambda *args: 1)


def fitted_arrays(est):
    return [p.copy() for p in est._params()]


# ------------------------------------------------------- gradients of a batch
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("loss", ["identity", "logistic", "softmax"])
def test_shared_batch_equals_whole_batch(pools, ragged, dropout, loss):
    rng = np.random.default_rng(0)
    B, T, F, sizes, n_out = 21, 7, 3, (5, 4), 3
    params = random_params(rng, F, sizes, n_out)
    lengths = rng.integers(1, T + 1, B) if ragged else None
    X = rng.normal(size=(B, T, F))
    if ragged:
        X[np.arange(T) >= lengths[:, None]] = 0.0  # padding is zero
    if loss == "softmax":
        y = np.eye(n_out)[rng.integers(0, n_out, B)]
    elif loss == "logistic":
        y = rng.integers(0, 2, (B, n_out)).astype(float)
    else:
        y = rng.normal(size=(B, n_out))
    w = rng.uniform(0.5, 2.0, B)
    w /= w.sum()
    masks = None
    if dropout:  # some present, one missing: each is cut with its samples
        masks = [
            (rng.choice([0.0, 2.0], (B, F)), None),
            (rng.choice([0.0, 1.25], (B, 5)), rng.choice([0.0, 1.5], (B, 4))),
        ]
    whole_loss, whole = parallel.batch_loss_grad(
        X, y, w, params, lengths, masks, loss, Workspace()
    )
    pool = pools(params, n_out, 11, T, True, loss)
    helper = pool.helpers[0]
    before = helper.batches
    shared_loss, shared = pool.loss_grad(
        Sequences(X, lengths), y, w, params, masks, loss, Workspace()
    )
    assert helper.batches == before + 1  # the helper did take a share
    assert_allclose(shared_loss, whole_loss, rtol=1e-12)
    for a, b in zip(shared, whole):
        assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_small_batches_are_not_shared(pools):
    rng = np.random.default_rng(1)
    params = random_params(rng, 2, (3,), 1)
    pool = pools(params, 1, 20, 4)
    assert pool.shares(2 * parallel.MIN_SHARE - 1) is None
    shares = pool.shares(2 * parallel.MIN_SHARE + 1)
    # Every sample in exactly one share, the shares within one sample of each other.
    assert_array_equal(np.sort(np.concatenate(shares)), np.arange(17))
    assert abs(len(shares[0]) - len(shares[1])) <= 1


def test_helper_error_is_reported_with_its_traceback(pools):
    rng = np.random.default_rng(2)
    params = random_params(rng, 2, (3,), 1)
    pool = pools(params, 1, 8, 4, loss="no such loss")
    helper = pool.helpers[0]
    X, y, w = rng.normal(size=(8, 4, 2)), rng.normal(size=(8, 1)), np.full(8, 0.125)
    pool.submit(helper, X, None, y, w, None, params)
    with pytest.raises(parallel.HelperError, match="KeyError: 'no such loss'"):
        helper.result()
    assert helper.alive()  # an error in a share does not stop the helper


# ---------------------------------------------------------------- estimators
def ragged_problem(cls, n=70, seed=0, ragged=True):
    """Sequences of 3 to 8 steps (6 each without ``ragged``) and their targets."""
    rng = np.random.default_rng(seed)

    def length():
        return int(rng.integers(3, 9)) if ragged else 6

    X = [rng.normal(size=(length(), 2)) for _ in range(n)]
    if cls is LSTMRegressor:
        return X, np.array([x[:, 0].sum() for x in X])
    return X, np.array([int(x[0, 0] > 0) + int(x[-1, 1] > 0) for x in X])


CASES = {
    "regressor": (LSTMRegressor, {}),
    "classifier-dropout": (LSTMClassifier, {"dropout": 0.2, "recurrent_dropout": 0.3}),
    "regressor-2-layers-l2": (
        LSTMRegressor,
        {"hidden_layer_sizes": (5, 4), "alpha": 0.1},
    ),
    "classifier-early-stopping": (
        LSTMClassifier,
        {"early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 2},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_fit_with_helpers_matches_fit_alone(monkeypatch, sharing, case):
    cls, extra = CASES[case]
    X, y = ragged_problem(cls)
    sample_weight = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    params = {"hidden_layer_sizes": 6, "batch_size": 23, "max_iter": 4,
              "random_state": 0, **extra}
    shared = cls(**params).fit(X, y, sample_weight=sample_weight)
    assert sharing, "no batch was shared"
    # 70 samples in batches of 23, 23, 23, 1 (or fewer with early stopping): the
    # last is too small to share and runs alone.
    assert max(sharing) <= 12
    sent = len(sharing)
    alone(monkeypatch)
    single = cls(**params).fit(X, y, sample_weight=sample_weight)
    assert len(sharing) == sent  # nothing shared this time
    assert shared.n_iter_ == single.n_iter_
    assert_allclose(shared.loss_curve_, single.loss_curve_, rtol=1e-9)
    for a, b in zip(fitted_arrays(shared), fitted_arrays(single)):
        assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert_allclose(shared.predict(X[:10]), single.predict(X[:10]), rtol=1e-7)


def test_fit_with_helpers_is_reproducible(sharing):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    params = {"hidden_layer_sizes": 5, "batch_size": 32, "max_iter": 3,
              "random_state": 1, "dropout": 0.1}
    a = LSTMRegressor(**params).fit(X, y)
    b = LSTMRegressor(**params).fit(X, y)
    assert sharing
    for x, z in zip(fitted_arrays(a), fitted_arrays(b)):
        assert_array_equal(x, z)


def test_float32_fit_with_helpers(sharing, monkeypatch):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    X, y = X.astype(np.float32), y.astype(np.float32)
    params = {"hidden_layer_sizes": 5, "batch_size": 32, "max_iter": 3,
              "random_state": 1}
    shared = LSTMRegressor(**params).fit(X, y)
    assert sharing
    alone(monkeypatch)
    single = LSTMRegressor(**params).fit(X, y)
    for a, b in zip(fitted_arrays(shared), fitted_arrays(single)):
        assert a.dtype == np.float32
        assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_nothing_of_the_sharing_outlives_the_fit(sharing):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    blas_before = [lib["num_threads"] for lib in threadpool_info()]
    cores_before = os.sched_getaffinity(0)
    LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=2).fit(X, y)
    assert sharing
    assert [lib["num_threads"] for lib in threadpool_info()] == blas_before
    assert os.sched_getaffinity(0) == cores_before
    assert parallel._helpers_lock.acquire(blocking=False)
    parallel._helpers_lock.release()


def test_an_exception_in_the_fit_gives_the_helpers_back(sharing, monkeypatch):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    cores_before = os.sched_getaffinity(0)
    calls = []

    def failing_step(self, params, grads, loss):
        calls.append(1)
        raise RuntimeError("stop here")

    with monkeypatch.context() as patch:
        patch.setattr(base_module.BaseLSTM, "_step", failing_step)
        with pytest.raises(RuntimeError, match="stop here"):
            LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=2).fit(X, y)
    assert calls and os.sched_getaffinity(0) == cores_before
    shared_before = len(sharing)
    LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=2).fit(X, y)
    assert len(sharing) > shared_before  # the helpers are free and working


def test_a_dead_helper_leaves_the_model_of_training_alone(sharing, monkeypatch):
    X, y = _data.sum_regression(n=96, n_timesteps=5, n_features=2)
    params = {"hidden_layer_sizes": 5, "batch_size": 32, "max_iter": 3,
              "random_state": 0}
    submit = parallel.HelperPool.submit

    def killing_submit(self, helper, *args):
        if len(sharing) == 4:  # in the middle of the second epoch
            helper.process.kill()
            helper.process.wait()
        return submit(self, helper, *args)

    monkeypatch.setattr(parallel.HelperPool, "submit", killing_submit)
    with pytest.warns(UserWarning, match="A helper process failed"):
        shared = LSTMRegressor(**params).fit(X, y)
    assert shared.n_iter_ == 3
    monkeypatch.setattr(parallel.HelperPool, "submit", submit)
    with no_warnings():  # a new helper starts without complaint
        LSTMRegressor(**params).fit(X, y)
    # The batch whose share was lost is computed again in this process, and the
    # rest of the fit runs alone: the model is the one of training alone, up to
    # the order of sums.
    alone(monkeypatch)
    single = LSTMRegressor(**params).fit(X, y)
    for a, b in zip(fitted_arrays(shared), fitted_arrays(single)):
        assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_ctrl_c_is_not_for_the_helpers(sharing):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=1).fit(X, y)
    (helper,) = parallel._helpers[:1]
    os.kill(helper.process.pid, signal.SIGINT)  # as a terminal's Ctrl-C would
    time.sleep(0.2)
    assert helper.alive()
    with no_warnings():
        LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=1).fit(X, y)


def test_concurrent_fits_in_threads(sharing):
    # One fit gets the helpers, the other trains alone; both train correctly.
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    models = [LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=3,
                            random_state=0) for _ in range(2)]
    errors = []

    def fit(est):
        try:
            est.fit(X, y)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(est,)) for est in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for a, b in zip(fitted_arrays(models[0]), fitted_arrays(models[1])):
        assert_allclose(a, b, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------- when to share
def test_how_many_processes():
    big = dict(batch_size=64, n_steps=50, layer_sizes=[64], n_features=8)
    assert parallel.n_processes(**big, n_threads=1) == 1  # BLAS held to one thread
    tiny = dict(batch_size=64, n_steps=5, layer_sizes=[8], n_features=1)
    assert parallel.n_processes(**tiny, n_threads=2) == 1  # not worth a hand-over
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    assert parallel.n_processes(**big, n_threads=2) == min(2, n_cores)
    few = dict(big, batch_size=3 * parallel.MIN_SHARE)
    assert parallel.n_processes(**few, n_threads=64) <= 3  # shares of MIN_SHARE



def test_how_many_processes_on_many_cores(monkeypatch):
    monkeypatch.setattr(parallel, "allowed_cpus", lambda: list(range(64)))
    big = dict(batch_size=64, n_steps=50, layer_sizes=[64], n_features=8)
    assert parallel.n_processes(**big, n_threads=64) == 64 // parallel.MIN_SHARE
    assert parallel.n_processes(**big, n_threads=4) == 4
    # 1.4 times the threshold's work in a batch: two shares, not 32.
    wide = dict(batch_size=256, n_steps=10, layer_sizes=[32], n_features=4)
    assert parallel.n_processes(**wide, n_threads=64) == 2


def test_no_helpers_when_blas_is_held_to_one_thread(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BATCH_MACS", 0)
    started = []
    monkeypatch.setattr(parallel, "helper_pool", lambda *a: started.append(a))
    monkeypatch.setattr(base_module, "helper_pool", lambda *a: started.append(a))
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    with threadpool_limits(limits=1, user_api="blas"):
        LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=1).fit(X, y)
    assert started == []


# ------------------------------------------------------- the helper process
def test_helper_loads_neither_scikit_learn_nor_scipy(sharing):
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=1).fit(X, y)
    (helper,) = parallel._helpers[:1]
    maps = f"/proc/{helper.process.pid}/maps"
    if not os.path.exists(maps):
        pytest.skip("needs /proc")
    with open(maps) as f:
        loaded = f.read()
    assert f"{os.sep}numpy{os.sep}" in loaded  # it sees extension modules
    assert f"{os.sep}sklearn{os.sep}" not in loaded
    assert f"{os.sep}scipy{os.sep}" not in loaded


def test_helpers_exit_with_the_training_process(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np
        import sklearn_lstm._base as base, sklearn_lstm._parallel as parallel
        from sklearn_lstm import LSTMRegressor
        base.n_processes = lambda *args: 2
        X = np.random.default_rng(0).normal(size=(64, 5, 2))
        LSTMRegressor(hidden_layer_sizes=5, batch_size=32, max_iter=1).fit(
            X, X.sum(axis=(1, 2)))
        print(parallel._helpers[0].process.pid, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"helper {pid} still runs after its training process exited")


# --------------------------------------------------------------- prediction
@pytest.fixture
def sharing_predictions(monkeypatch):
    """Predictions of at least 128 samples go to one helper, whatever the machine;
    returns the sizes of the chunks helpers computed."""
    blas = base_module._blas_threads()[0]
    monkeypatch.setattr(base_module, "_blas_threads", lambda: (blas, 2))
    monkeypatch.setattr(base_module, "n_processes", lambda *args: 2)
    chunks = []
    submit = parallel._Helper.submit

    def counting_submit(self, header, kind=b"B"):
        if kind == b"P":
            chunks.append(header[0])
        return submit(self, header, kind)

    monkeypatch.setattr(parallel._Helper, "submit", counting_submit)
    return chunks


@contextmanager
def one_thread():
    """Predict in this thread alone (the reference)."""
    blas = base_module._blas_threads
    base_module._blas_threads = lambda: (blas()[0], 1)
    try:
        yield
    finally:
        base_module._blas_threads = blas


@pytest.mark.parametrize("ragged", [True, False], ids=["ragged", "full"])
@pytest.mark.parametrize("cls", [LSTMRegressor, LSTMClassifier])
def test_predict_with_helpers_equals_predict_alone(sharing_predictions, cls, ragged):
    X, y = ragged_problem(cls, n=300, ragged=ragged)
    est = cls(hidden_layer_sizes=(5, 4), max_iter=2, random_state=0).fit(X, y)
    predicts = [est.predict] + ([est.predict_proba] if cls is LSTMClassifier else [])
    with one_thread():
        single = [predict(X) for predict in predicts]
    assert not sharing_predictions
    shared = [predict(X) for predict in predicts]
    # The helper computed about half of the samples, for each call.
    assert len(sharing_predictions) == len(predicts)
    assert all(130 <= n <= 150 for n in sharing_predictions)
    for a, b in zip(shared, single):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_predict_goes_on_when_a_helper_dies(sharing_predictions, monkeypatch):
    X, y = ragged_problem(LSTMRegressor, n=300)
    est = LSTMRegressor(hidden_layer_sizes=5, max_iter=2, random_state=0).fit(X, y)
    with one_thread():
        expected = est.predict(X)
    submit = parallel._Helper.submit

    def killing_submit(self, header, kind=b"B"):
        if kind == b"P":
            self.process.kill()
            self.process.wait()
        return submit(self, header, kind)

    monkeypatch.setattr(parallel._Helper, "submit", killing_submit)
    with pytest.warns(UserWarning, match="prediction goes on with threads"):
        got = est.predict(X)
    assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_a_finished_fit_leaves_no_shared_memory(sharing):
    X, y = _data.sum_regression(n=256, n_timesteps=30, n_features=4)
    LSTMRegressor(hidden_layer_sizes=32, batch_size=128, max_iter=1).fit(X, y)
    (helper,) = parallel._helpers[:1]
    # The shared file keeps only the page of message counters ...
    assert os.fstat(helper.file.fileno()).st_size == mmap.PAGESIZE
    # ... and the helper, which dropped its arrays, serves the next fit as before.
    sent = len(sharing)
    LSTMRegressor(hidden_layer_sizes=32, batch_size=128, max_iter=1).fit(X, y)
    assert len(sharing) == sent + 2


def test_no_room_for_the_shared_file_means_training_alone(sharing, monkeypatch):
    # As in a container whose /dev/shm is full: the fit warns and trains alone.
    def full(fd, offset, size):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    X, y = _data.sum_regression(n=64, n_timesteps=5, n_features=2)
    params = {"hidden_layer_sizes": 5, "batch_size": 32, "max_iter": 2,
              "random_state": 0}
    with pytest.warns(UserWarning, match="No space left on device"):
        shared = LSTMRegressor(**params).fit(X, y)
    assert not sharing
    monkeypatch.undo()
    alone(monkeypatch)
    single = LSTMRegressor(**params).fit(X, y)
    for a, b in zip(fitted_arrays(shared), fitted_arrays(single)):
        assert_array_equal(a, b)
