"""Searches on a Dask cluster: ``with joblib.parallel_backend("dask")``.

Users rely on three things: a search on the cluster gives the scores of the
same search run here, bit for bit (estimators with an int ``n_jobs``, see the
README's "Cores, `n_jobs` and reproducibility"); the workers, one thread each,
do not oversubscribe the cores; and no process of ours outlives the cluster.
"""

import os
import time
import warnings

import joblib
import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_lstm import LSTMClassifier, LSTMRegressor, TextSequenceVectorizer

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

WORDS = "the a cat dog sat ran on under mat tree night day quiet loud".split()


def searches():
    """(name, search, X, y): a grid over 3D input, a randomized search over
    ragged input and a grid over a text Pipeline, each a few seconds long."""
    rng = np.random.RandomState(0)
    params = dict(max_iter=4, batch_size=16, random_state=0)

    X3 = rng.normal(size=(60, 8, 2))
    grid_3d = GridSearchCV(
        LSTMRegressor(**params),
        {"hidden_layer_sizes": [4, 8], "n_jobs": [1, 2]},
        cv=3,
    )

    X_ragged = [rng.normal(size=(k, 2)) for k in rng.randint(4, 16, size=60)]
    y_ragged = np.array(["up" if s[-1, 0] > s[0, 0] else "down" for s in X_ragged])
    randomized = RandomizedSearchCV(
        LSTMClassifier(4, n_jobs=2, **params),
        {"learning_rate_init": loguniform(1e-3, 1e-1), "bidirectional": [False, True]},
        n_iter=3,
        cv=3,
        random_state=0,
    )

    docs = [" ".join(rng.choice(WORDS, size=rng.randint(3, 10))) for _ in range(60)]
    y_text = np.array(["cat" in doc.split() for doc in docs])
    grid_text = GridSearchCV(
        make_pipeline(
            TextSequenceVectorizer(),
            LSTMClassifier(embedding_dim=8, n_jobs=1, **params),
        ),
        {"lstmclassifier__hidden_layer_sizes": [4, 8]},
        cv=3,
    )
    return [
        ("3d", grid_3d, X3, X3[:, :, 0].sum(axis=1)),
        ("ragged", randomized, X_ragged, y_ragged),
        ("text", grid_text, docs, y_text),
    ]


def scores(search):
    """What a search found, without its timings."""
    return {
        key: value
        for key, value in search.cv_results_.items()
        if "test_score" in key or key == "params"
    }


def children(pid):
    """Process ids of the live (not zombie) descendants of ``pid``."""
    psutil = pytest.importorskip("psutil")
    try:
        return [
            p.pid
            for p in psutil.Process(pid).children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE
        ]
    except psutil.NoSuchProcess:
        return []


def alive(pid):
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids, seconds):
    """The pids still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def cluster():
    """A cluster of two worker processes of one thread each; on exit, checks
    that it left no process behind: workers, nor any child of theirs."""
    pytest.importorskip("psutil")
    with warnings.catch_warnings():
        # distributed's own deprecations are not ours to fail on.
        warnings.simplefilter("ignore", DeprecationWarning)
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(local)
    workers = list(client.run(os.getpid).values())
    seen = set(workers)

    def processes():
        """Workers and their children now (remembered for the final check)."""
        now = [pid for w in workers for pid in [w, *children(w)]]
        seen.update(now)
        return now

    try:
        yield client, processes
    finally:
        processes()
        client.close()
        local.close()
    assert wait_gone(sorted(seen), seconds=10) == []


def fit_quietly(search, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, y)


def test_searches_on_dask_equal_sequential_searches(cluster):
    client, processes = cluster
    for name, search, X, y in searches():
        expected = scores(fit_quietly(search, X, y))  # n_jobs=None: here, in turn
        with (
            distributed.get_task_stream(client) as tasks,
            joblib.parallel_backend("dask"),
        ):
            fit_quietly(search, X, y)
        assert tasks.data, f"{name}: the search did not run on the cluster"
        found = scores(search)
        assert found.keys() == expected.keys()
        for key in expected:
            if key == "params":
                assert found[key] == expected[key]
            else:  # bit for bit
                np.testing.assert_array_equal(found[key], expected[key], err_msg=name)
    # Estimators with n_jobs=2 ran on the workers; none left a helper there.
    assert sorted(processes()) == sorted(client.run(os.getpid).values())


def in_a_worker(blas_limit):
    """Run in a worker's task: its BLAS threads, and what a fit with n_jobs=2
    large enough for helpers started."""
    import psutil
    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.RandomState(0)
    X = rng.normal(size=(128, 40, 4))
    with threadpool_limits(blas_limit), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        blas = [lib["num_threads"] for lib in threadpool_info()]
        LSTMRegressor(32, batch_size=64, max_iter=1, n_jobs=2).fit(X, X[:, 0, 0])
    return {"blas": blas, "children": [p.pid for p in psutil.Process().children()]}


def test_workers_use_one_blas_thread_and_start_no_helper(cluster):
    client, _ = cluster
    # On a worker as distributed starts it (OMP/OPENBLAS/MKL_NUM_THREADS=1), an
    # estimator with n_jobs=2 computes both shares in the task's thread: its
    # helpers follow BLAS's thread limit, as in joblib's workers.
    report = client.submit(in_a_worker, None, pure=False).result()
    assert report["blas"] and set(report["blas"]) == {1}
    assert report["children"] == []


def test_helpers_started_in_a_worker_end_with_the_cluster(cluster):
    client, processes = cluster
    # Where a worker may use two BLAS threads, a fit with n_jobs=2 starts a
    # helper, a child of the (daemonic) worker process; the fixture checks
    # that it ends with the cluster.
    report = client.submit(in_a_worker, 2, pure=False).result()
    assert len(report["children"]) == 1
    assert set(report["children"]) <= set(processes())
