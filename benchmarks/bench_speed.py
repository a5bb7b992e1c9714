"""Training and prediction speed of sklearn_lstm against PyTorch, side by side.

What is measured, through the public estimator ``LSTMRegressor`` on one side and
``torch.nn.LSTM(batch_first=True)`` + ``nn.Linear`` on the last step on the other
(section 7: other models; Adam with our default hyperparameters, MSE loss,
float32, the same batch size, shuffled mini-batches). Ours runs with two values
of its ``n_jobs`` parameter:

* ``n_jobs=None`` (the default): everything in the calling process, on one core
  (BLAS on one thread, so that results do not depend on the machine);
* ``n_jobs=-1``: every mini-batch is cut into as many shares as the process may
  use cores. When a share is large enough (``MIN_SHARE_MACS`` multiply-adds in
  its forward products; see ``sklearn_lstm/_processes.py``), this process
  computes one share and helper processes the others, each on its own core with
  BLAS on one thread, and the gradients are added; below that, the calling
  process computes the shares one after the other, BLAS on one thread too (our
  estimators always do). Which happens on each workload is printed under
  the training table.

Torch runs on all the cores (``torch.set_num_threads(n_cores)``).

1. Seconds per training epoch on four workloads W1..W4: ours with ``n_jobs=-1``,
   ours with ``n_jobs=None``, torch, and the ratios of each of ours to torch,
   with their geometric means and worst ratios. Each configuration gets a
   1-epoch warm-up, then ``fit`` runs a few epochs and the time is divided by
   the number of epochs; the best of a few repeats is kept, the repeats of the
   three interleaved so that background load hits all alike. When our estimator
   has a ``max_grad_norm`` parameter, torch clips its gradients to our default
   norm with ``torch.nn.utils.clip_grad_norm_``, so that both do the same work.
2. W2's floor (ours with ``n_jobs=-1``): its matrix-multiply FLOPs per epoch
   divided by this machine's float32 GEMM rate (large square numpy sgemm, all
   cores), and ours / floor, torch / floor, and what our time is made of: our
   engine alone (forward and backward of the share of each batch that the
   calling process computes, without the optimizer and the rest of the fit) and
   the matrix products it makes, at its shapes, alone. These and the GEMM are
   timed in the same interleaved rounds as W2's training, best of them, so that
   all are measured in the same state of the machine, whose speed drifts by tens
   of percent over minutes.
3. Prediction throughput (samples/s) on each workload's full data set, right
   after training, ours with ``n_jobs=-1`` and ``n_jobs=None``: ``predict``
   against torch's forward pass under ``torch.no_grad()``. A prediction is shared
   with helper processes only when it is large enough (``MIN_PREDICT_MACS``).
4. float64 / float32 time per epoch for ours with ``n_jobs=-1``.
5. Peak memory of a 1-epoch fit on long sequences (T=1000), each measured in a
   fresh subprocess as the growth of the peak RSS over the RSS after imports and
   data creation, ours with ``n_jobs=-1`` (its helper processes included); ours
   at two batch sizes and two data-set sizes shows that the peak grows with the
   batch, not with the data set.
6. ``benchmarks/speed.png``: time per epoch against T and against H, ours with
   ``n_jobs=-1`` and torch (skipped with ``--no-plot``).
7. Other models at W2's size, timed like section 1 (best of fewer repeats) and
   side by side with torch's equivalent:

   * ``W2-bi``: a two-layer bidirectional ``LSTMClassifier`` (two classes), against
     ``nn.LSTM(num_layers=2, bidirectional=True)`` + ``nn.Linear`` on
     ``cat(h_n[-2], h_n[-1])`` + ``BCEWithLogitsLoss``;
   * ``W2-steps``: ``LSTMRegressor(pooling="none")``, one target per step,
     against ``nn.LSTM`` + ``nn.Linear`` on every step + MSE over all steps;
   * ``W2-bicost``: what a bidirectional layer costs, a one-layer bidirectional
     classifier (``W2-bi1``) against the same unidirectional one (``W2-uni1``),
     the two timed in the same rounds, for ours and torch each.

How: every configuration (ours float32 with each ``n_jobs``, torch, ours float64)
of every workload runs in a fresh worker process of its own, driven by this
script through JSON lines on its stdin and stdout; the helper processes of a
worker with ``n_jobs=-1`` start in its warm-up and serve its later fits, as they
would in a user's process. The speed of a NumPy program depends on the history
of its process: once large arrays have been freed, glibc keeps more memory
instead of returning it to the system, and later temporaries skip their page
faults. Fresh, separate processes measure each library as a user's new process
would see it, whatever ran before in this script and whatever the other library
does to the allocator. Each timed call follows a short idle pause: the BLAS and
OpenMP threads of the worker that ran last keep spinning for a while after their
work, and would slow down the next worker on the same cores.

Run from the repository root::

    python benchmarks/bench_speed.py                  # full run, a few minutes
    python benchmarks/bench_speed.py --quick          # tiny sizes, smoke test
    python benchmarks/bench_speed.py --only W1,W2 --no-plot
    python benchmarks/bench_speed.py --only W2-bi,W2-steps,W2-bicost  # 7 alone

Timings depend on whatever else runs on the machine; the load average is printed
at the start and the end. Without PyTorch our numbers are printed alone
(``pip install torch==2.13.0`` for the comparison).

sklearn and sklearn_lstm are imported where they are used, so that the torch
workers start without them.
"""

import argparse
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve()
N_THREADS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
)
TORCH_PIN = "torch==2.13.0"


# What a workload's model predicts (section 7 times the last two):
# one value per sequence from its last step, with ours LSTMRegressor and torch MSE;
REGRESSION = "regression"
# one of two classes per sequence from its last step, ours LSTMClassifier and torch
# BCEWithLogitsLoss on one logit;
CLASSIFICATION = "classification"
# one value per step (ours LSTMRegressor with pooling="none"), torch's Linear on
# every step and MSE over all steps.
STEPS = "steps"


@dataclass(frozen=True)
class Workload:
    name: str
    n_samples: int
    n_timesteps: int
    n_features: int
    n_hidden: int  # per layer and direction
    batch_size: int
    n_layers: int = 1
    bidirectional: bool = False
    task: str = REGRESSION

    def describe(self):
        shape = (
            f"N={self.n_samples} T={self.n_timesteps} F={self.n_features} "
            f"H={self.n_hidden} B={self.batch_size}"
        )
        if (self.n_layers, self.bidirectional, self.task) == (1, False, REGRESSION):
            return shape
        layers = f"{self.n_layers} layer" + "s" * (self.n_layers > 1)
        kind = "bidirectional" if self.bidirectional else "unidirectional"
        return f"{shape}, {layers} {kind}, {self.task}"


WORKLOADS = (
    Workload("W1", 4096, 20, 4, 32, 128),
    Workload("W2", 2048, 50, 8, 64, 64),
    Workload("W3", 1024, 100, 16, 128, 32),
    Workload("W4", 512, 200, 1, 32, 32),
)
FLOOR_WORKLOAD = "W2"

# Section 7: other models at W2's size. Each entry is timed on its own, the
# workloads of an entry interleaved in the same rounds: "W2-bicost" sets a
# one-layer bidirectional classifier beside the same unidirectional one.
_W2 = WORKLOADS[1]
VARIANTS = {
    "W2-bi": (
        replace(_W2, name="W2-bi", n_layers=2, bidirectional=True, task=CLASSIFICATION),
    ),
    "W2-steps": (replace(_W2, name="W2-steps", task=STEPS),),
    "W2-bicost": (
        replace(_W2, name="W2-uni1", task=CLASSIFICATION),
        replace(_W2, name="W2-bi1", bidirectional=True, task=CLASSIFICATION),
    ),
}

# Long sequences for the memory measurement, at these (n_samples, batch_size).
MEMORY_BASE = Workload("mem", 256, 1000, 4, 64, 32)
MEMORY_CASES = ((256, 32), (256, 128), (1024, 32))

# The plot's sweeps: T at the base H, then H at the base T.
SWEEP_BASE = Workload("sweep", 1024, 50, 8, 64, 64)
SWEEP_T = (10, 25, 50, 100, 200)
SWEEP_H = (16, 32, 64, 128, 256)

# The configurations timed on each workload: name -> (library, dtype, n_jobs).
# n_jobs=-1 shares each mini-batch among the cores (helper processes, when the
# shares are large enough); None, the default, computes it in the calling process
# on one core. torch ignores n_jobs.
OURS = "ours n_jobs=-1"
OURS_SERIAL = "ours n_jobs=None"
TORCH = "torch"
OURS_F64 = "ours float64 n_jobs=-1"
CONFIGS = {
    OURS: ("ours", "float32", -1),
    OURS_SERIAL: ("ours", "float32", None),
    TORCH: ("torch", "float32", None),
    OURS_F64: ("ours", "float64", -1),
}
# The n_jobs of ours in the sections that time one setting only (floor, float64,
# memory, sweeps): the one that puts every core to the whole of the work, the
# element-wise part included, where n_jobs=None spreads only the matrix products.
SHARED_N_JOBS = -1


@dataclass(frozen=True)
class Timing:
    epochs: int  # epochs per timed fit
    repeats: int  # best of this many interleaved repeats
    # Idle seconds before each timed call, for the thread pools of the worker that
    # ran last to stop spinning: they would steal the cores from the next one.
    pause: float


@dataclass(frozen=True)
class Settings:
    timing: Timing = Timing(epochs=3, repeats=5, pause=0.3)
    sweep: Timing = Timing(epochs=2, repeats=3, pause=0.3)
    # Section 7: fewer repeats, for W2-bi alone takes as long as W1-W4 together.
    variants: Timing = Timing(epochs=3, repeats=3, pause=0.3)
    gemm_size: int = 2048
    quick: bool = False


QUICK = Settings(
    timing=Timing(epochs=1, repeats=2, pause=0.0),
    sweep=Timing(epochs=1, repeats=1, pause=0.0),
    variants=Timing(epochs=1, repeats=2, pause=0.0),
    gemm_size=512,
    quick=True,
)


def quick_sizes(workloads, variants):
    """Tiny versions of the workloads, variants, memory cases and sweeps, for
    ``--quick``."""

    def tiny(w):
        return replace(w, n_samples=128, n_timesteps=min(w.n_timesteps, 12))

    small = [tiny(w) for w in workloads]
    variants = {name: tuple(map(tiny, group)) for name, group in variants.items()}
    memory = (replace(MEMORY_BASE, n_timesteps=50), ((64, 8), (64, 32), (256, 8)))
    sweeps = (
        replace(SWEEP_BASE, n_samples=64, n_hidden=16, n_timesteps=10),
        (5, 20),
        (8, 32),
    )
    return small, variants, memory, sweeps


# --------------------------------------------------------------------- helpers
def make_data(workload, dtype="float32", seed=0):
    """Random sequences X (N, T, F) of the given dtype and targets: y (N,) of
    that dtype, (N, T) for one target per step, class labels 0 and 1 (N,) for
    classification."""
    rng = np.random.default_rng(seed)
    n, steps = workload.n_samples, workload.n_timesteps
    X = rng.standard_normal((n, steps, workload.n_features), dtype=np.float32)
    if workload.task == CLASSIFICATION:
        return X.astype(dtype, copy=False), rng.integers(0, 2, n)
    shape = (n, steps) if workload.task == STEPS else n
    y = rng.standard_normal(shape, dtype=np.float32)
    return X.astype(dtype, copy=False), y.astype(dtype, copy=False)


def seconds(fn):
    """Wall-clock seconds of one call of fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_interleaved(runners, repeats, warmups=None, pause=0.0):
    """Lowest result of each runner over ``repeats`` interleaved rounds.

    ``runners`` maps names to zero-argument callables returning seconds; each of
    ``warmups`` (default: the runners themselves) is called once first, untimed.
    Every call comes after ``pause`` idle seconds.
    """
    for warmup in (warmups or runners).values():
        time.sleep(pause)
        warmup()
    best = dict.fromkeys(runners, math.inf)
    for _ in range(repeats):
        for name, run in runners.items():
            time.sleep(pause)
            best[name] = min(best[name], run())
    return best


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ratio(a, b):
    return None if a is None or b is None else a / b


def fmt_s(x):
    return "n/a" if x is None else f"{x:.4f}" if x < 1 else f"{x:.3f}"


def fmt_rate(n, s):
    """n items in s seconds, as items per second."""
    return "n/a" if s is None else f"{n / s:,.0f}"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}"


def print_table(headers, rows):
    """A markdown table with right-aligned columns."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]

    def line(row):
        padded = (c.rjust(w) for c, w in zip(row, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))
    print()


_START = time.perf_counter()


def progress(message):
    elapsed = time.perf_counter() - _START
    print(f"... {elapsed:4.0f} s: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the models
def our_defaults():
    return load_ours()().get_params()


def adam_settings():
    """Our Adam hyperparameters, for torch.optim.Adam."""
    p = our_defaults()
    return {
        "lr": p["learning_rate_init"],
        "betas": (p["beta_1"], p["beta_2"]),
        "eps": p["epsilon"],
    }


def load_ours(task=REGRESSION):
    from sklearn_lstm import LSTMClassifier, LSTMRegressor

    return LSTMClassifier if task == CLASSIFICATION else LSTMRegressor


def fit_ours(X, y, workload, epochs, n_jobs=None):
    from sklearn.exceptions import ConvergenceWarning

    w = workload
    est = load_ours(w.task)(
        hidden_layer_sizes=(w.n_hidden,) * w.n_layers,
        bidirectional=w.bidirectional,
        pooling="none" if w.task == STEPS else "last",
        n_jobs=n_jobs,
        batch_size=workload.batch_size,
        max_iter=epochs,
        alpha=0.0,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def load_torch():
    import torch

    torch.set_num_threads(N_THREADS)
    return torch


def make_torch_model(torch, workload):
    """``nn.LSTM(batch_first=True)`` and a ``Linear`` with one output on what
    ours reads: the last step (``cat(h_n[-2], h_n[-1])`` when bidirectional:
    the forward direction's last step, the backward one's first) or every step."""
    nn = torch.nn
    w = workload
    directions = 2 if w.bidirectional else 1

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(
                w.n_features,
                w.n_hidden,
                num_layers=w.n_layers,
                bidirectional=w.bidirectional,
                batch_first=True,
            )
            self.head = nn.Linear(directions * w.n_hidden, 1)

        def forward(self, x):
            out, (h_n, _) = self.lstm(x)  # (B, T, directions * H)
            if w.task == STEPS:
                return self.head(out)[:, :, 0]  # (B, T)
            if w.bidirectional:
                return self.head(torch.cat((h_n[-2], h_n[-1]), dim=1))
            return self.head(out[:, -1])

    return LSTMNet()


def fit_torch(torch, X, y, workload, epochs, max_grad_norm, adam):
    """Train like our fit: Adam, shuffled mini-batches, optional clipping."""
    torch.manual_seed(0)
    model = make_torch_model(torch, workload)
    optimizer = torch.optim.Adam(model.parameters(), **adam)
    if workload.task == CLASSIFICATION:
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        loss_fn = torch.nn.MSELoss()  # the mean over samples and steps
    n_samples, batch_size = X.shape[0], workload.batch_size
    for _ in range(epochs):
        order = torch.randperm(n_samples)
        for start in range(0, n_samples, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
    return model


# ------------------------------------------------------------------- backends
class Backend:
    """Timed tasks of one library in one dtype, run inside a worker process.

    Keeps the data set and the fitted model of the latest workload, so that
    repeated requests on it time only the work itself.
    """

    def __init__(self, dtype, n_jobs):
        self.dtype, self.n_jobs = dtype, n_jobs
        self._data, self._model = {}, {}

    def data(self, workload):
        if workload not in self._data:
            self._data = {workload: self.make_data(workload)}
        return self._data[workload]

    def train(self, workload, epochs):
        """Seconds per epoch of a fit of ``epochs`` epochs."""
        X, y = self.data(workload)
        return seconds(lambda: self.fit(X, y, workload, epochs)) / epochs

    def predict(self, workload):
        """Seconds to predict the full data set (after a 1-epoch fit, untimed)."""
        X, y = self.data(workload)
        if workload not in self._model:
            self._model = {workload: self.fit(X, y, workload, epochs=1)}
        model = self._model[workload]
        return seconds(lambda: self.forward(model, X))


class OursBackend(Backend):
    def __init__(self, dtype, clip, adam, n_jobs):
        super().__init__(dtype, n_jobs)
        load_ours()  # import now, not inside the first measurement

    def make_data(self, workload):
        return make_data(workload, self.dtype)

    def fit(self, X, y, workload, epochs):
        return fit_ours(X, y, workload, epochs, self.n_jobs)

    @staticmethod
    def forward(model, X):
        return model.predict(X)


class TorchBackend(Backend):
    def __init__(self, dtype, clip, adam, n_jobs=None):
        super().__init__(dtype, n_jobs)  # n_jobs: ours only
        self.torch = load_torch()
        self.clip, self.adam = clip, adam

    def make_data(self, workload):
        X, y = make_data(workload, self.dtype)
        if workload.task != STEPS:  # (N, 1), as the model's output
            y = y.astype(self.dtype, copy=False).reshape(-1, 1)
        return self.torch.from_numpy(X), self.torch.from_numpy(y)

    def fit(self, X, y, workload, epochs):
        return fit_torch(self.torch, X, y, workload, epochs, self.clip, self.adam)

    def forward(self, model, X):
        with self.torch.no_grad():
            return model(X)


BACKENDS = {"ours": OursBackend, "torch": TorchBackend}


def make_backend(spec):
    args = spec["dtype"], spec["clip"], spec["adam"], spec["n_jobs"]
    return BACKENDS[spec["impl"]](*args)


def serve(spec):
    """Worker process: answer one JSON request per line of stdin."""
    backend = make_backend(spec)
    for line in sys.stdin:
        request = json.loads(line)
        task = request.pop("task")
        if "workload" in request:
            request["workload"] = Workload(**request["workload"])
        print(json.dumps(getattr(backend, task)(**request)), flush=True)


def worker_spec(impl, dtype, clip, n_jobs=None):
    return {
        "impl": impl,
        "dtype": dtype,
        "clip": clip,
        "adam": adam_settings(),
        "n_jobs": n_jobs,
    }


class Worker:
    """A fresh subprocess running one backend (``serve``)."""

    def __init__(self, spec):
        self.spec = spec
        self._proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--_worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, task, **kwargs):
        if "workload" in kwargs:
            kwargs["workload"] = dataclasses.asdict(kwargs["workload"])
        self._proc.stdin.write(json.dumps({"task": task, **kwargs}) + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.spec['impl']} worker died; see above")
        return json.loads(answer)

    def close(self):
        """Ask the worker to exit (``wait`` for it)."""
        self._proc.stdin.close()

    def wait(self):
        self._proc.wait()


@contextmanager
def fresh_workers(configs, clip):
    """One new worker per configuration ``{name: (library, dtype, n_jobs)}``."""
    workers = {
        name: Worker(worker_spec(impl, dtype, clip, n_jobs))
        for name, (impl, dtype, n_jobs) in configs.items()
    }
    try:
        yield workers
    finally:
        for worker in workers.values():
            worker.close()
        for worker in workers.values():  # exiting concurrently
            worker.wait()


# ------------------------------------------------------------------- measures
def best_times(workers, timing, warmup, timed):
    """Best seconds per worker of the ``timed`` request, after ``warmup`` once."""
    runners = {name: partial(w.call, **timed) for name, w in workers.items()}
    warmups = {name: partial(w.call, **warmup) for name, w in workers.items()}
    return best_interleaved(runners, timing.repeats, warmups, timing.pause)


def measure(workload, configs, clip, timing, predict=True, gemm_size=None):
    """Seconds per epoch of each configuration, and seconds to predict.

    Returns ``(train, predict)``: dicts keyed by configuration name; ``predict``
    covers the float32 ones, timed in the same workers right after training. With
    ``gemm_size``, ``train["gemm"]`` is the best time of that square float32
    matmul in this process, and ``train["products"]`` and ``train["engine"]``
    the seconds per epoch of our matrix products alone (:func:`products_timer`)
    and of our engine alone (:func:`engine_timer`) with ``n_jobs=-1``, all timed
    in the same rounds as the training.
    """
    with fresh_workers(configs, clip) as workers:
        runners = train_calls(workers, workload, timing.epochs)
        warmups = train_calls(workers, workload, epochs=1)
        if gemm_size is not None:
            runners["gemm"] = warmups["gemm"] = sgemm_timer(gemm_size)
            runners["products"] = warmups["products"] = products_timer(workload)
            runners["engine"] = warmups["engine"] = engine_timer(workload)
        train = best_interleaved(runners, timing.repeats, warmups, timing.pause)
        times = {}
        if predict:
            float32 = {n: w for n, w in workers.items() if configs[n][1] == "float32"}
            request = {"task": "predict", "workload": workload}
            times = best_times(float32, timing, warmup=request, timed=request)
    return train, times


def train_calls(workers, workload, epochs):
    """For each worker, a call timing its fit of ``epochs`` epochs on ``workload``."""
    return {
        name: partial(w.call, task="train", workload=workload, epochs=epochs)
        for name, w in workers.items()
    }


def measure_together(workloads, configs, clip, timing):
    """Seconds per epoch of each configuration on each workload, all of them
    interleaved in the same rounds, each in a fresh worker of its own:
    ``{workload name: {configuration name: seconds}}``."""
    pairs = {(w.name, name): c for w in workloads for name, c in configs.items()}
    with fresh_workers(pairs, clip) as workers:
        runners, warmups = {}, {}
        for w in workloads:
            mine = {key: worker for key, worker in workers.items() if key[0] == w.name}
            runners |= train_calls(mine, w, timing.epochs)
            warmups |= train_calls(mine, w, epochs=1)
        train = best_interleaved(runners, timing.repeats, warmups, timing.pause)
    return {w.name: {name: train[w.name, name] for name in configs} for w in workloads}


def sgemm_timer(n, repeats=3):
    """A callable timing an (n, n) @ (n, n) float32 numpy matmul: best of
    ``repeats``, in seconds."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return lambda: min(seconds(lambda: a @ b) for _ in range(repeats))


def products_timer(workload, repeats=3):
    """A callable giving the seconds per epoch of the matrix products alone that
    the calling process of our fit with ``n_jobs=-1`` makes (see
    :func:`process_share`), with BLAS on one thread, as an int ``n_jobs``
    computes every share.

    The products of a share are those of the engine, at its shapes: per step the
    gates ``[U | W | b]^T [h; x; 1]`` forward and ``U dz`` backward, and the
    weight gradients in one product per span of steps. No element-wise work, no
    copies: what the engine would take if everything but its matrix products
    were free.
    """
    from sklearn_lstm._engine import _span_steps

    w = workload
    T, F, H = w.n_timesteps, w.n_features, w.n_hidden
    share = process_share(w)
    B = share.samples
    K = H + F + 1
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    M, columns, z = rand(4 * H, K), rand(T + 1, K, B), rand(4 * H, B)
    U_back, dz, dh = rand(H, 4 * H), rand(4 * H, B), rand(H, B)
    span = _span_steps(T, H, B, 4)
    spans = [span] * (T // span) + ([T % span] if T % span else [])
    dz_span, HX_span, dM = rand(4 * H, span * B), rand(span * B, K), rand(4 * H, K)

    def one_share():
        for t in range(T):
            np.dot(M, columns[t], z)
        for _ in range(T - 1):
            np.dot(U_back, dz, dh)
        for n in spans:
            np.matmul(dz_span[:, : n * B], HX_span[: n * B], dM)

    return epoch_timer(w, share, one_share, repeats)


def engine_timer(workload, repeats=3):
    """A callable giving the seconds per epoch of the engine's work alone in the
    calling process of our fit with ``n_jobs=-1``: forward, loss and backward
    (``share_loss_grad``) of its shares of every batch, timed like
    :func:`products_timer`. No optimizer step, no batch gathering, no messages
    to the helper processes."""
    from sklearn_lstm._engine import Workspace
    from sklearn_lstm._network import Network
    from sklearn_lstm._objective import Batch, Sequences, share_loss_grad

    w = workload
    T, F = w.n_timesteps, w.n_features
    share = process_share(w)
    B = share.samples
    network = Network.stack(F, [w.n_hidden], 1)
    params = network.init(np.random.RandomState(0), np.float32)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, T, F), dtype=np.float32)
    y = rng.standard_normal((B, 1), dtype=np.float32)
    # Weights divided by the sum over the whole batch, as the fit passes them.
    weights = np.full(B, 1.0 / w.batch_size, dtype=np.float32)
    batch = Batch(Sequences(X, None), y, weights, None)
    workspace = Workspace()

    def one_share():
        share_loss_grad(network, params, batch, "identity", workspace)

    return epoch_timer(w, share, one_share, repeats)


def epoch_timer(workload, share, one_share, repeats):
    """A callable timing ``one_share()`` (best of ``repeats``) times the shares
    that the calling process computes in each batch of an epoch of
    ``workload``, with BLAS on one thread as in that fit."""
    from threadpoolctl import threadpool_limits

    n_batches = -(-workload.n_samples // workload.batch_size)

    def timer():
        # An int n_jobs computes every share with BLAS on one thread, helpers or
        # not (sklearn_lstm/_backend.py).
        with threadpool_limits(limits=1, user_api="blas"):
            best = min(seconds(one_share) for _ in range(repeats))
        return n_batches * share.rounds * best

    return timer


@dataclass(frozen=True)
class Share:
    """How our fit with ``n_jobs=-1`` computes each batch of a workload."""

    shares: int  # the batch is cut into this many shares
    samples: int  # of the largest share
    helpers: int  # helper processes that compute shares (0: all in this process)

    @property
    def rounds(self):
        """Shares the calling process computes per batch: one per round of
        ``helpers + 1`` shares computed side by side."""
        return -(-self.shares // (self.helpers + 1))

    def describe(self):
        if self.helpers:
            helpers = f"{self.helpers} helper process" + "es" * (self.helpers > 1)
            return (
                f"{self.shares} shares of {self.samples} samples, this process and "
                f"{helpers}, one core each"
            )
        if self.shares > 1:
            return f"{self.shares} shares of {self.samples} samples, one by one here"
        return "the whole batch here"


def process_share(workload):
    """How our fit with ``n_jobs=-1`` cuts each batch of ``workload`` and who
    computes the shares, as ``sklearn_lstm._backend`` and ``_processes`` decide."""
    from sklearn_lstm._backend import effective_n_jobs
    from sklearn_lstm._network import Network
    from sklearn_lstm._processes import ProcessBackend

    w = workload
    n_shares = effective_n_jobs(SHARED_N_JOBS)
    shares = min(n_shares, w.batch_size)  # no empty shares
    helpers = 0
    if n_shares > 1:  # one share needs no helper
        network = Network.stack(
            w.n_features,
            [w.n_hidden] * w.n_layers,
            1,  # one output: a regression, two classes, one value per step
            bidirectional=w.bidirectional,
            pooling="none" if w.task == STEPS else "last",
        )
        backend = ProcessBackend(n_shares)
        helpers = backend.n_helpers(network, "fit", w.batch_size, w.n_timesteps)
    return Share(shares, -(-w.batch_size // shares), min(helpers, shares - 1))


def lstm_matmul_flops(workload):
    """Matrix-multiply FLOPs of one training epoch of a one-layer LSTM.

    Forward: input projection 2NT*F*4H, recurrence 2NT*H*4H. Backward: kernel
    gradient 2NT*F*4H, recurrent-kernel gradient 2NT*H*4H, and the gradient through
    the recurrence 2NT*4H*H; the first layer needs no input gradient and the dense
    head is negligible.
    """
    w = workload
    per_unit = 2 * w.n_samples * w.n_timesteps * 4 * w.n_hidden
    return per_unit * (2 * w.n_features + 3 * w.n_hidden)


# ---------------------------------------------------------------------- memory
def rss_mib():
    """Current resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mib():
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def helper_peak_rss_mib():
    """Sum of the peak RSS of our helper processes (Linux), whole processes.

    A fit with ``n_jobs`` > 1 that shares its batches with helper processes
    (``sklearn_lstm._processes``) started them, so all their memory counts,
    interpreter and NumPy included; pages they share with this process
    (libraries, their memory files) count twice. The helpers outlive the fit
    (until they have been idle a while), so their peaks can be read after it.
    """
    from sklearn_lstm._processes import RUNTIME

    total = 0.0
    for pid in RUNTIME.pids():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 2**10
    return total


def memory_child(spec, workload):
    """Fresh subprocess: print the peak RSS growth of one 1-epoch fit, as JSON."""
    backend = make_backend(spec)
    X, y = backend.data(workload)
    reset = reset_peak_rss()  # forget the peaks of the imports and data creation
    baseline = rss_mib()
    backend.fit(X, y, workload, epochs=1)
    helpers = helper_peak_rss_mib() if spec["impl"] == "ours" else 0.0
    growth = peak_rss_mib() - baseline + helpers
    result = {"growth_mib": growth, "helpers_mib": helpers, "peak_reset": reset}
    print(json.dumps(result))


def measure_memory(impl, workload, clip):
    """Peak RSS growth (MiB) of a 1-epoch float32 fit, in a fresh subprocess;
    ours with ``n_jobs=-1``."""
    n_jobs = SHARED_N_JOBS if impl == "ours" else None
    spec = worker_spec(impl, "float32", clip, n_jobs)
    child = {"spec": spec, "workload": workload.__dict__}
    cmd = [sys.executable, str(SCRIPT), "--_memory-child", json.dumps(child)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- report
def git_state():
    def git(*args):
        return subprocess.run(
            ["git", *args],
            cwd=SCRIPT.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        dirty = " with uncommitted changes" if git("status", "--porcelain") else ""
        return git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    # OpenBLAS's kernels follow the processor (e.g. SkylakeX with AVX-512,
    # Haswell with AVX2), and with them the engine's speed (see _engine.py).
    described = [
        f"{i['internal_api']} {i.get('version')} ("
        + (f"{i['architecture']} kernels, " if i.get("architecture") else "")
        + f"{i['num_threads']} threads)"
        for i in infos
    ]
    return ", ".join(described) or "unknown"


def load_average():
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds():
    """CPU seconds used so far by the whole machine and by this run (us and our
    finished subprocesses); the machine's is None without /proc/stat."""
    ours = sum(
        r.ru_utime + r.ru_stime
        for r in map(
            resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
    )
    try:
        with open("/proc/stat") as f:
            user, nice, system, _, _, irq, softirq = map(int, f.readline().split()[1:8])
    except (OSError, ValueError):
        return None, ours
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK"), ours


def others_cpu_share(before, after, wall):
    """Share of the machine's cores that other processes used between two
    ``cpu_seconds()`` readings ``wall`` seconds apart; None if unknown."""
    if before[0] is None or after[0] is None:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(others, 0.0) / (wall * N_THREADS)


def torch_version():
    """The installed torch's version, without importing it; None if absent."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def print_header(torch, settings, clip):
    import sklearn

    import sklearn_lstm

    print("# sklearn-lstm vs PyTorch: training and prediction speed\n")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print(
        f"machine: {platform.system()} {platform.machine()}, {cpu_model()}, "
        f"{N_THREADS} usable cores"
    )
    print(f"load average at start (1/5/15 min): {load_average()}")
    if os.getloadavg()[0] > 0.5 * N_THREADS:
        print("WARNING: the machine is busy; the timings below will be noisy")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(f"sklearn_lstm {sklearn_lstm.__version__} (git {git_state()})")
    print(f"BLAS libraries loaded: {blas_description()}")
    if torch is None:
        print(f"torch: NOT INSTALLED, our numbers alone (pip install {TORCH_PIN})")
    else:
        note = "" if torch.startswith("2.13.") else f" (the target is {TORCH_PIN})"
        print(f"torch {torch}{note}, torch.set_num_threads({N_THREADS})")
    if clip is None:
        print("gradient clipping: none (no max_grad_norm parameter in ours, or None)")
    else:
        torch_clip = f", torch clip_grad_norm_(max_norm={clip})" if torch else ""
        print(f"gradient clipping: ours max_grad_norm={clip} (its default){torch_clip}")
    print(
        f"ours: LSTMRegressor (section 7: the estimators it names) with n_jobs=-1 "
        f"({effective_n_jobs_here()} shares per batch) and with n_jobs=None (the "
        "default, one process)"
    )
    print("each configuration of each workload runs in a fresh worker process")
    t = settings.timing
    print(
        f"timing: {t.epochs} epoch(s) per fit after a 1-epoch warm-up, best of "
        f"{t.repeats} interleaved repeats, {t.pause} s idle before each call"
        + ("; --quick: TINY SIZES, NOT REPRESENTATIVE" if settings.quick else "")
    )
    print()


# Ours in the two-setting tables: (configuration, short label).
OURS_SETTINGS = ((OURS, "n_jobs=-1"), (OURS_SERIAL, "n_jobs=None"))


def print_ratio_summary(workloads, times, what):
    """Geometric mean and worst of ours / torch for each ``n_jobs`` setting;
    ``times[name][config]`` in seconds, ``what`` names the ratio."""
    for config, label in OURS_SETTINGS:
        ratios = [
            (ratio(times[w.name][config], times[w.name].get(TORCH)), w.name)
            for w in workloads
        ]
        ratios = [(r, name) for r, name in ratios if r is not None]
        if not ratios:
            continue
        worst, worst_name = max(ratios)
        mean = geometric_mean([r for r, _ in ratios])
        print(
            f"ours {label}: geometric mean of {what} {mean:.2f}; "
            f"worst {worst:.2f} ({worst_name})"
        )
    print()


def report_training(workloads, results):
    print(
        "## 1. Training time per epoch (float32), ours with n_jobs=-1 and n_jobs=None\n"
    )
    print_training(workloads, {w.name: results[w.name][0] for w in workloads})


def print_training(workloads, times):
    """The table of seconds per epoch ``times[name][config]`` and ours / torch,
    their summary, and what n_jobs=-1 did on each workload."""
    rows = []
    for w in workloads:
        train = times[w.name]
        theirs = train.get(TORCH)
        ours = [train[config] for config, _ in OURS_SETTINGS]
        rows.append(
            [w.name, w.describe(), *map(fmt_s, ours), fmt_s(theirs)]
            + [fmt_ratio(ratio(t, theirs)) for t in ours]
        )
    headers = [
        "workload",
        "shape",
        "n_jobs=-1 s/epoch",
        "n_jobs=None s/epoch",
        "torch s/epoch",
        "-1/torch",
        "None/torch",
    ]
    print_table(headers, rows)
    print_ratio_summary(workloads, times, "ours/torch")
    # What n_jobs=-1 did on each workload: the ratios depend on it.
    print(f"n_jobs=-1 on {effective_n_jobs_here()} usable cores, per batch:")
    for w in workloads:
        print(f"- {w.name}: {process_share(w).describe()}")
    print()


def report_variants(variants, times, timing):
    """Section 7: ``variants`` as in :data:`VARIANTS`, ``times[name][config]``."""
    print(
        "## 7. Other models at W2's size: training time per epoch (float32), ours "
        "with n_jobs=-1 and n_jobs=None\n"
    )
    print(
        f"{timing.epochs} epoch(s) per fit after a 1-epoch warm-up, best of "
        f"{timing.repeats} interleaved repeats; the workloads of an entry of "
        "--only (W2-bicost: W2-uni1 and W2-bi1) in the same rounds\n"
    )
    workloads = [w for group in variants.values() for w in group]
    for w in workloads:
        print(f"- {w.name}: {describe_models(w)}")
    print()
    print_training(workloads, times)
    if "W2-bicost" not in variants:
        return
    uni, bi = (w.name for w in variants["W2-bicost"])
    print(f"What a bidirectional layer costs: {bi} / {uni}, timed in the same rounds\n")
    configs = [*OURS_SETTINGS, (TORCH, "torch")]
    headers = ["ratio"] + [label for config, label in configs if config in times[bi]]
    row = [f"{bi} / {uni}"] + [
        fmt_ratio(times[bi][config] / times[uni][config])
        for config, _ in configs
        if config in times[bi]
    ]
    print_table(headers, [row])


def describe_models(workload):
    """Ours and torch's models on ``workload``, in their constructors' words."""
    w = workload
    bi = ", bidirectional=True" if w.bidirectional else ""
    layers = f", num_layers={w.n_layers}" if w.n_layers > 1 else ""
    lstm = f"nn.LSTM({w.n_features}, {w.n_hidden}{layers}{bi}, batch_first=True)"
    head = f"Linear({(1 + w.bidirectional) * w.n_hidden}, 1)"
    hidden = f"hidden_layer_sizes={(w.n_hidden,) * w.n_layers}{bi}"
    if w.task == STEPS:
        return (
            f'ours LSTMRegressor({hidden}, pooling="none"), y (N, T); '
            f"torch {lstm} + {head} on every step, MSELoss over all steps"
        )
    read = "cat(h_n[-2], h_n[-1])" if w.bidirectional else "the last step"
    if w.task == CLASSIFICATION:
        return (
            f"ours LSTMClassifier({hidden}), two classes; "
            f"torch {lstm} + {head} on {read}, BCEWithLogitsLoss"
        )
    return f"ours LSTMRegressor({hidden}); torch {lstm} + {head} on {read}, MSELoss"


def effective_n_jobs_here():
    from sklearn_lstm._backend import effective_n_jobs

    return effective_n_jobs(SHARED_N_JOBS)


def report_floor(workload, train, settings):
    """``train``: the best seconds per epoch on ``workload`` of each configuration,
    with ``"gemm"``, the square sgemm, ``"engine"`` and ``"products"``, our engine
    and our matrix products alone, timed in the same rounds."""
    print(
        f"## 2. {workload.name}'s floor from this machine's float32 GEMM rate, "
        "ours with n_jobs=-1\n"
    )
    n = settings.gemm_size
    rate = 2 * n**3 / train["gemm"]
    flops = lstm_matmul_flops(workload)
    floor = flops / rate
    print(
        f"numpy sgemm {n}x{n}, best of the rounds of {workload.name}'s training: "
        f"{rate / 1e9:.1f} GFLOP/s"
    )
    print(
        f"{workload.name} matmul FLOPs per epoch: {flops / 1e9:.2f} GFLOP "
        f"-> floor {fmt_s(floor)} s\n"
    )
    how = process_share(workload).describe()
    rows = [
        ("ours n_jobs=-1", train[OURS]),
        (f"ours n_jobs=-1, engine alone ({how})", train["engine"]),
        (f"ours n_jobs=-1, matrix products alone ({how})", train["products"]),
    ]
    if TORCH in train:
        rows.append(("torch", train[TORCH]))
    print("| what | s/epoch | x the floor |")
    print("|---|---:|---:|")
    for name, value in rows:
        print(f"| {name} | {fmt_s(value)} | {value / floor:.2f} |")
    print()


def report_predict(workloads, results):
    print(
        "## 3. Prediction throughput on the full data set (float32), ours with "
        "n_jobs=-1 and n_jobs=None\n"
    )
    rows, times = [], {}
    for w in workloads:
        t = times[w.name] = results[w.name][1]
        theirs = t.get(TORCH)
        ours = [t[config] for config, _ in OURS_SETTINGS]
        rows.append(
            [w.name, w.n_samples]
            + [fmt_rate(w.n_samples, s) for s in (*ours, theirs)]
            + [fmt_ratio(ratio(s, theirs)) for s in ours]
        )
    headers = [
        "workload",
        "N",
        "n_jobs=-1 samples/s",
        "n_jobs=None samples/s",
        "torch samples/s",
        "-1/torch time",
        "None/torch time",
    ]
    print_table(headers, rows)
    print_ratio_summary(workloads, times, "ours/torch time")


def report_dtypes(workloads, results):
    print("## 4. Ours with n_jobs=-1: float64 / float32 time per epoch\n")
    rows = []
    for w in workloads:
        t = results[w.name][0]
        f32, f64 = t[OURS], t[OURS_F64]
        rows.append([w.name, fmt_s(f32), fmt_s(f64), fmt_ratio(f64 / f32)])
    headers = ["workload", "float32 s/epoch", "float64 s/epoch", "float64/float32"]
    print_table(headers, rows)


def report_memory(impls, base, cases, clip):
    print(
        f"## 5. Peak RSS growth of a 1-epoch fit (T={base.n_timesteps} "
        f"F={base.n_features} H={base.n_hidden}, float32, ours with n_jobs=-1, "
        "a fresh subprocess each)\n"
    )
    progress(f"memory, {len(cases) * len(impls)} subprocesses")
    workloads = [replace(base, n_samples=n, batch_size=b) for n, b in cases]
    jobs = [(impl, w) for w in workloads for impl in impls]
    # One at a time: a fit of ours may run a helper process on each core.
    growth = {job: measure_memory(*job, clip) for job in jobs}
    rows = []
    for w in workloads:
        x_mib = w.n_samples * w.n_timesteps * w.n_features * 4 / 2**20
        row = [w.n_samples, w.batch_size, f"{x_mib:.1f}"]
        rows.append(row + [f"{growth[i, w]['growth_mib']:.1f}" for i in impls])
    names = {"ours": "ours n_jobs=-1"}
    headers = ["N", "batch", "X MiB"] + [f"{names.get(i, i)} MiB" for i in impls]
    print_table(headers, rows)
    helpers = [r["helpers_mib"] for (impl, _), r in growth.items() if impl == "ours"]
    if any(helpers):
        print(
            "ours includes the whole peak RSS of the helper processes that share "
            f"the batches ({min(helpers):.0f}-{max(helpers):.0f} MiB, interpreter "
            "and NumPy included)\n"
        )
    if not all(result["peak_reset"] for result in growth.values()):
        print(
            "note: the peak-RSS mark could not be reset after the imports; an "
            "earlier peak may hide part of the growth\n"
        )


def sweep(configs, timing, base, field, values, clip):
    """Seconds per epoch per configuration, with ``field`` of ``base`` swept."""
    out = {name: [] for name in configs}
    for v in values:
        w = replace(base, **{field: v})
        progress(f"sweep {w.describe()}")
        train, _ = measure(w, configs, clip, timing, predict=False)
        for name in configs:
            out[name].append(train[name])
    return out


def report_sweeps(configs, settings, base, t_values, h_values, clip, plot_path):
    print(
        f"## 6. Scaling (around {base.describe()}, float32, ours with n_jobs=-1, "
        f"{settings.sweep.epochs} epoch(s), best of {settings.sweep.repeats})\n"
    )
    by_t = sweep(configs, settings.sweep, base, "n_timesteps", t_values, clip)
    by_h = sweep(configs, settings.sweep, base, "n_hidden", h_values, clip)
    rows = []
    for label, values, times in (("T", t_values, by_t), ("H", h_values, by_h)):
        for k, v in enumerate(values):
            ours, theirs = times[OURS][k], times.get(TORCH, [None] * len(values))[k]
            rows.append(
                [
                    f"{label}={v}",
                    fmt_s(ours),
                    fmt_s(theirs),
                    fmt_ratio(ratio(ours, theirs)),
                ]
            )
    headers = ["setting", "n_jobs=-1 s/epoch", "torch s/epoch", "-1/torch"]
    print_table(headers, rows)
    plot_sweeps(base, t_values, by_t, h_values, by_h, plot_path)
    print(f"plot written to {plot_path}\n")


def plot_sweeps(base, t_values, by_t, h_values, by_h, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    panels = [
        (axes[0], t_values, by_t, "time steps T", f"H={base.n_hidden}"),
        (axes[1], h_values, by_h, "hidden units H", f"T={base.n_timesteps}"),
    ]
    for ax, xs, times, xlabel, fixed in panels:
        for name, marker in ((OURS, "o"), (TORCH, "s")):
            if name in times:
                ax.plot(xs, times[name], marker=marker, label=name)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel=xlabel,
            ylabel="seconds per epoch",
            title=f"N={base.n_samples} F={base.n_features} B={base.batch_size} {fixed}",
        )
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(
        "Training time per epoch, sklearn_lstm (n_jobs=-1) vs PyTorch (float32)"
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for a smoke test (numbers not representative)",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="skip the sweeps and the plot"
    )
    parser.add_argument(
        "--only",
        help="comma-separated workloads and section 7's models, e.g. W1,W2 or "
        "W2-bi,W2-steps,W2-bicost; naming none of W1-W4 skips sections 1-6",
    )
    parser.add_argument(
        "--plot-path",
        type=Path,
        help="where to write the plot (default benchmarks/speed.png; "
        "a temporary file with --quick)",
    )
    parser.add_argument("--_worker", dest="worker", help=argparse.SUPPRESS)
    parser.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def select_workloads(only):
    """The workloads W1-W4 and the entries of :data:`VARIANTS` named in ``only``
    (all of them without it)."""
    if not only:
        return list(WORKLOADS), dict(VARIANTS)
    known = {w.name.upper(): w for w in WORKLOADS}
    variants = {name.upper(): name for name in VARIANTS}
    names = [n.strip().upper() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in known and n not in variants]
    if unknown:
        choices = [w.name for w in WORKLOADS] + list(VARIANTS)
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {choices}")
    chosen = [variants[n] for n in names if n in variants]
    return [known[n] for n in names if n in known], {n: VARIANTS[n] for n in chosen}


def run(args):
    settings = QUICK if args.quick else Settings()
    workloads, variants = select_workloads(args.only)
    memory = (MEMORY_BASE, MEMORY_CASES)
    sweeps = (SWEEP_BASE, SWEEP_T, SWEEP_H)
    if settings.quick:
        workloads, variants, memory, sweeps = quick_sizes(workloads, variants)
    plot_path = None
    if workloads and not args.no_plot:
        quick_path = Path(tempfile.gettempdir()) / "speed_quick.png"
        default = quick_path if settings.quick else SCRIPT.parent / "speed.png"
        plot_path = args.plot_path or default

    clip = our_defaults().get("max_grad_norm")  # None: no such parameter, or off
    torch = torch_version()
    configs = {n: c for n, c in CONFIGS.items() if torch or c[0] != "torch"}
    sys.stdout.reconfigure(line_buffering=True)  # in step with the progress lines
    print_header(torch, settings, clip)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    results = {}
    for w in workloads:
        progress(f"{w.name} {w.describe()}")
        gemm = settings.gemm_size if w.name == FLOOR_WORKLOAD else None
        results[w.name] = measure(w, configs, clip, settings.timing, gemm_size=gemm)
    if workloads:
        report_training(workloads, results)
        for w in workloads:
            if w.name == FLOOR_WORKLOAD:
                train = results[w.name][0]
                report_floor(w, train, settings)
        report_predict(workloads, results)
        report_dtypes(workloads, results)
        impls = ["ours"] + (["torch"] if torch else [])
        report_memory(impls, *memory, clip)
    if plot_path is not None:
        sweep_configs = {n: c for n, c in configs.items() if n in (OURS, TORCH)}
        report_sweeps(sweep_configs, settings, *sweeps, clip, plot_path)
    if variants:
        variant_configs = {n: c for n, c in configs.items() if n != OURS_F64}
        times = {}
        for name, group in variants.items():
            progress(f"{name}: {', '.join(w.describe() for w in group)}")
            times |= measure_together(group, variant_configs, clip, settings.variants)
        report_variants(variants, times, settings.variants)
    wall = time.perf_counter() - start
    share = others_cpu_share(cpu_start, cpu_seconds(), wall)
    others = "unknown" if share is None else f"{share:.0%}"
    print(
        f"total {wall:.0f} s; load average at end (1/5/15 min): {load_average()}; "
        f"other processes used {others} of the machine's CPU time during the run. "
        "Timings taken while other work ran are noisy."
    )


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        serve(json.loads(args.worker))
    elif args.memory_child:
        child = json.loads(args.memory_child)
        memory_child(child["spec"], Workload(**child["workload"]))
    else:
        run(args)


if __name__ == "__main__":
    main()
