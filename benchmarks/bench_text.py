"""Training time of a text classifier, ours against PyTorch, side by side.

The model: token ids -> an embedding of 32 values per id -> one LSTM layer of 64
units -> max pooling over the steps -> a dense layer, one logit (two classes).
Ours is ``LSTMClassifier(64, embedding_dim=32, pooling="max")``; PyTorch's is
``nn.Embedding(5000, 32, padding_idx=0)`` (drawn uniform in [-0.05, 0.05] as
ours) + ``nn.LSTM(batch_first=True)`` + ``amax`` over the steps +
``nn.Linear`` + ``BCEWithLogitsLoss``, trained like ours: Adam with our default
hyperparameters, shuffled mini-batches of 64, the global gradient norm clipped at
5 (our default ``max_grad_norm``), no L2. Both tables are dense and updated
whole by Adam at every step; the padding row 0 never moves in either (ours:
padding steps give it exactly zero gradient; torch: ``padding_idx``), and no
step here is padding.

The data: 2048 sequences of 50 token ids drawn from a vocabulary of 5000 ids
(0 is padding, never drawn) with Zipf-like frequencies, ``P(id) ~ 1 / id**1.1``
for ids 1 to 4999 (1 being the unknown token, the most frequent, as in text cut
to a vocabulary), and random labels.

Ours runs with ``n_jobs=-1`` (every mini-batch shared with a helper process per
further core) and with the default ``n_jobs=None`` (one process, one core), on
the ids given as float32, so that it computes in float32 as PyTorch
does by default (integer ids train in float64, as
``TextSequenceVectorizer(dtype=np.float32)`` gives float32 ids). With
``--float64``, both also run in float64 (ours on integer ids, with
``n_jobs=-1``), for the comparison at equal precision. PyTorch uses as many
threads as this process may use cores.

How: each configuration runs in a fresh worker process of its own (as in
``bench_speed.py``); each gets a 1-epoch warm-up, then fits of ``--epochs``
epochs are timed in interleaved rounds (each after a short idle pause) and the
best of ``--repeats`` is kept, divided by the number of epochs. The ratios are
ours / torch float32 (above 1: we are slower).

``--profile`` then times the parts of our mini-batch in this process (BLAS on
one thread, the way each share of ``n_jobs=-1`` runs): the embedding's gather,
the whole forward pass, the backward pass, the table's gradient
(``_embedding_grad``, inside the backward pass) and Adam on all parameters, in
float64 and, with the same weights cast, in float32.

Run from the repository root::

    python benchmarks/bench_text.py              # ~2 min on 2 cores
    python benchmarks/bench_text.py --profile --float64
    python benchmarks/bench_text.py --quick      # tiny sizes, smoke test
"""

import argparse
import json
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from bench_speed import (
    N_THREADS,
    best_interleaved,
    fmt_ratio,
    fmt_s,
    load_average,
    print_table,
    seconds,
)

SCRIPT = Path(__file__).resolve()


@dataclass(frozen=True)
class TextWorkload:
    n_samples: int = 2048
    n_timesteps: int = 50
    n_tokens: int = 5000  # ids 0 (padding) to n_tokens - 1
    embedding_dim: int = 32
    n_hidden: int = 64
    batch_size: int = 64

    def describe(self):
        return (
            f"N={self.n_samples} T={self.n_timesteps} vocabulary={self.n_tokens} "
            f"E={self.embedding_dim} H={self.n_hidden} batch={self.batch_size}"
        )


QUICK = TextWorkload(n_samples=256, n_timesteps=12, n_tokens=500)

# name -> (library, dtype, n_jobs)
OURS = "ours n_jobs=-1"
OURS_SERIAL = "ours n_jobs=None"
TORCH = "torch float32"
TORCH_F64 = "torch float64"
OURS_F64 = "ours n_jobs=-1 float64"
CONFIGS = {
    OURS: ("ours", "float32", -1),
    OURS_SERIAL: ("ours", "float32", None),
    TORCH: ("torch", "float32", None),
    OURS_F64: ("ours", "float64", -1),
    TORCH_F64: ("torch", "float64", None),
}
MAX_GRAD_NORM = 5.0


def make_data(w, seed=0):
    """Token ids (N, T) with Zipf-like frequencies over 1 .. n_tokens - 1, the
    largest id placed once so that the table has n_tokens rows, and labels."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, w.n_tokens)
    p = 1.0 / ids**1.1
    X = rng.choice(ids, size=(w.n_samples, w.n_timesteps), p=p / p.sum())
    X[0, 0] = w.n_tokens - 1
    return X.astype(np.int64), rng.integers(0, 2, w.n_samples)


def our_model(w, epochs, n_jobs):
    from sklearn_lstm import LSTMClassifier

    return LSTMClassifier(
        w.n_hidden, embedding_dim=w.embedding_dim, pooling="max", n_jobs=n_jobs,
        batch_size=w.batch_size, max_iter=epochs, alpha=0.0, tol=0.0,
        n_iter_no_change=np.inf, max_grad_norm=MAX_GRAD_NORM, random_state=0,
    )


def fit_ours(X, y, w, epochs, n_jobs):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return our_model(w, epochs, n_jobs).fit(X, y)


def fit_torch(torch, X, y, w, epochs, dtype):
    """Train like our fit: Adam with our defaults, shuffled batches, clipping."""
    nn = torch.nn
    torch.manual_seed(0)

    class TextNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(w.n_tokens, w.embedding_dim, padding_idx=0)
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            self.lstm = nn.LSTM(w.embedding_dim, w.n_hidden, batch_first=True)
            self.head = nn.Linear(w.n_hidden, 1)

        def forward(self, ids):
            out, _ = self.lstm(self.embedding(ids))  # (B, T, H)
            return self.head(out.amax(dim=1))  # (B, 1)

    model = TextNet().to(getattr(torch, dtype))
    defaults = our_model(w, 1, None).get_params()
    optimizer = torch.optim.Adam(
        model.parameters(), lr=defaults["learning_rate_init"],
        betas=(defaults["beta_1"], defaults["beta_2"]), eps=defaults["epsilon"],
    )
    loss_fn = nn.BCEWithLogitsLoss()
    n_samples = X.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n_samples)
        for start in range(0, n_samples, w.batch_size):
            idx = order[start : start + w.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
    return model


def serve(spec):
    """Worker process: one JSON request per line of stdin, seconds per epoch of
    a fit of ``epochs`` epochs on each."""
    impl, dtype, n_jobs = spec["config"]
    w = TextWorkload(**spec["workload"])
    X, y = make_data(w)
    if impl == "torch":
        import torch

        torch.set_num_threads(N_THREADS)
        X = torch.from_numpy(X)
        y = torch.from_numpy(y.reshape(-1, 1)).to(getattr(torch, dtype))
        fit = partial(fit_torch, torch, X, y, w, dtype=dtype)
    else:
        # Ids given as float32 train in float32 (as TextSequenceVectorizer(
        # dtype=np.float32) gives them); integer ids in float64.
        X = X.astype(np.float32) if dtype == "float32" else X
        fit = partial(fit_ours, X, y, w, n_jobs=n_jobs)
    for line in sys.stdin:
        epochs = json.loads(line)["epochs"]
        print(json.dumps(seconds(partial(fit, epochs=epochs)) / epochs), flush=True)


class Worker:
    def __init__(self, config, workload):
        spec = json.dumps({"config": config, "workload": asdict(workload)})
        self._proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--_worker", spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def train(self, epochs):
        self._proc.stdin.write(json.dumps({"epochs": epochs}) + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError("a worker died; see above")
        return json.loads(answer)

    def close(self):
        self._proc.stdin.close()
        self._proc.wait()


def measure(workload, configs, epochs, repeats, pause):
    workers = {name: Worker(config, workload) for name, config in configs.items()}
    try:
        runners = {name: partial(w.train, epochs) for name, w in workers.items()}
        warmups = {name: partial(w.train, 1) for name, w in workers.items()}
        return best_interleaved(runners, repeats, warmups, pause)
    finally:
        for worker in workers.values():
            worker.close()


# ------------------------------------------------------------------ profile
def profile(w, rounds=20):
    """Print the best milliseconds of each part of our mini-batch, and its share
    of the batch: gather, forward, backward (table's gradient included), the
    table's gradient alone, Adam on all parameters; in float64 (integer ids) and
    with the same weights in float32 (float32 ids; the engine runs in the
    table's dtype)."""
    from threadpoolctl import threadpool_limits

    X, y = make_data(w)
    est = fit_ours(X, y, w, 1, None)
    with threadpool_limits(limits=1):
        results = {
            np.dtype(dtype).name: _time_parts(w, est, X[: w.batch_size], dtype, rounds)
            for dtype in (np.float64, np.float32)
        }
    whole = ("forward (gather included)", "backward (table's gradient included)",
             "Adam on all parameters")
    batch = {d: sum(best[k] for k in whole) for d, best in results.items()}
    rows = [
        (name, *(f"{1e3 * results[d][name]:.2f} ({results[d][name] / batch[d]:.0%})"
                 for d in results))
        for name in results["float64"]
    ]
    rows.append(("forward + backward + Adam",
                 *(f"{1e3 * batch[d]:.2f}" for d in results)))
    print(f"Parts of one mini-batch of ours, ms (share of forward + backward + "
          f"Adam), BLAS on one thread, best of {rounds}:")
    print_table(["part", *results], rows)


def _time_parts(w, est, ids, dtype, rounds):
    """Best seconds of each part of a mini-batch of ``ids`` with the fitted
    estimator's weights cast to ``dtype``."""
    from sklearn_lstm._engine import Workspace, _embedding_grad, backward, forward
    from sklearn_lstm._optimizers import AdamOptimizer

    network = est._network
    params = [p.astype(dtype) for p in est._params()]
    dout = np.random.default_rng(0).standard_normal((w.batch_size, 1)).astype(dtype)
    ws = Workspace()
    grads = backward(dout, forward(ids, params, None, None, True, ws, network)[1])
    copies = [p.copy() for p in params]
    adam = AdamOptimizer(copies, 1e-3)
    dX_T = np.ones((w.n_timesteps, w.embedding_dim, w.batch_size), dtype)
    cache = [None]

    def run_forward():
        cache[0] = forward(ids, params, None, None, True, ws, network)[1]

    parts = {
        "gather table[X.T]": lambda: params[0][ids.T].transpose(0, 2, 1),
        "forward (gather included)": run_forward,
        "backward (table's gradient included)": lambda: backward(dout, cache[0]),
        "table's gradient (_embedding_grad)": lambda: _embedding_grad(
            dX_T, ids, w.n_tokens),
        "Adam on all parameters": lambda: adam.update_params(copies, grads),
    }
    best = dict.fromkeys(parts, np.inf)
    for _ in range(rounds):
        for name, part in parts.items():
            if name.startswith("backward"):
                run_forward()  # the workspace's cache of the last forward pass
            best[name] = min(best[name], seconds(part))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of our mini-batch")
    parser.add_argument("--float64", action="store_true",
                        help="also time ours and torch in float64")
    parser.add_argument("--_worker", dest="worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return serve(json.loads(args.worker))

    w = QUICK if args.quick else TextWorkload()
    float64 = (TORCH_F64, OURS_F64)
    configs = {k: v for k, v in CONFIGS.items() if args.float64 or k not in float64}
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: ours only.")
        configs = {k: v for k, v in configs.items() if v[0] == "ours"}
    print(f"python {' '.join(sys.argv)}")
    print(f"{w.describe()}; {N_THREADS} cores; load average at start "
          f"(1/5/15 min): {load_average()}\n")
    start = time.perf_counter()
    times = measure(w, configs, args.epochs, args.repeats, pause=0.3)
    torch_time = times.get(TORCH)
    headers = ["configuration", "s / epoch", "/ torch float32"]
    rows = [
        (name, fmt_s(s), fmt_ratio(None if torch_time is None else s / torch_time))
        for name, s in times.items()
    ]
    print(f"Training, seconds per epoch (best of {args.repeats} interleaved rounds "
          f"of {args.epochs}-epoch fits):")
    print_table(headers, rows)
    if args.profile:
        profile(replace(w))
    print(f"total {time.perf_counter() - start:.0f} s; load average at end "
          f"(1/5/15 min): {load_average()}")


if __name__ == "__main__":
    sys.exit(main())
