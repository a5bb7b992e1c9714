"""What a batch's shares cost when one process computes them all, and an estimate
of what computing them side by side would cost.

For work on the engine. With ``n_jobs=k`` every mini-batch is cut into the same k
shares, so that results do not depend on who computes them. When no helper can
take part (next to busy processes, under ``threadpool_limits(1)``, in a joblib
worker), the calling process computes the shares one after the other: as many
NumPy calls per step for each share as for the whole batch, on a fraction of the
data, and matrix products a fraction of the width. That is why such a fit costs
more than one with ``n_jobs=None`` (``bench_sharing.py``'s "shares here").

An engine that ran a process's shares side by side, every element-wise call on
all of them at once and each matrix product per share (so that each share's
arithmetic, hence the results, stays the same), would keep the cost of the
products of shares and pay the element-wise work once. This script estimates it
without such an engine: the whole batch's forward and backward, minus the time
of its matrix products alone, plus the time of the shares' products alone (the
engine's shapes: the gates' and the recurrence gradient's products of every
step, and the weight gradients' products over spans of steps). All on one BLAS
thread, float32, each workload of ``bench_speed.py``, interleaved rounds, best of
each kept. It is an estimate: products timed alone run with their operands in
cache, and gathering a share's gradients costs nothing here.

The estimate is too hopeful. Such an engine was built and measured (commit
0479e61, reverted by the next one): LSTM layers given an axis of shares, (T, S,
F, B), every element-wise call once on all shares, each product per share, bit
for bit the numbers of each share alone. Its forward and backward of one layer
for 2 shares took 1.16-1.37 times the whole batch on W1-W4 (two runs, one BLAS
thread, float32), against 1.17-1.35 for the same shares one after the other
(W4: 1.35-1.37 against 1.24-1.30). Element-wise calls on the slots of several
shares, views that are no longer one contiguous block, cost about what the
calls they replace saved. To repeat it, check out 0479e61 and time
``_engine._layer_forward`` then ``_layer_backward`` (gradient from the last step)
on inputs (T, 2, F, B/2) against the two halves (T, F, B/2) one after the other
and the whole (T, F, B), under ``threadpool_limits(1)``.

Run from the repository root (about a minute; PyTorch is not needed)::

    python benchmarks/bench_shares.py
    python benchmarks/bench_shares.py --shares 4 --only W1,W4
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab_engine import batch, best_interleaved, runner  # noqa: E402
from bench_speed import WORKLOADS  # noqa: E402

from sklearn_lstm import _engine as engine  # noqa: E402


def products_runner(workload, samples, dtype, seed=0):
    """The engine's matrix products for one batch of ``samples`` sequences, alone:
    per step the gates' (4H, H+F+1) by (H+F+1, samples) and the recurrence
    gradient's (H, 4H) by (4H, samples); per span of steps the weight gradients'
    (4H, span * samples) by (span * samples, H+F+1)."""
    rng = np.random.default_rng(seed)
    T, F, H = workload.n_timesteps, workload.n_features, workload.n_hidden
    K = H + F + 1

    def random(*shape):
        return rng.standard_normal(shape).astype(dtype)

    M, column, z = random(4 * H, K), random(K, samples), random(4 * H, samples)
    U_back, dz, dh = random(H, 4 * H), random(4 * H, samples), random(H, samples)
    span = engine._span_steps(T, H, samples, np.dtype(dtype).itemsize)
    spans = [min(span, T - t) for t in range(0, T, span)]
    dz_span, columns = random(4 * H, span * samples), random(span * samples, K)
    dW = random(4 * H, K)

    def run():
        for _ in range(T):
            np.dot(M, column, z)
            np.dot(U_back, dz, dh)
        for steps in spans:
            n = steps * samples
            np.dot(dz_span[:, :n], columns[:n], dW)

    return run


def one_after_another(runs):
    def run():
        for each in runs:
            each()

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--shares", type=int, default=2, help="shares per batch")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    workloads = [
        w for w in WORKLOADS if not args.only or w.name in args.only.split(",")
    ]
    k, dtype = args.shares, "float32"
    print(
        f"{k} shares of each batch computed in one process, float32, BLAS on one "
        f"thread, best of {args.rounds} interleaved rounds; ms per batch\n"
    )
    print(
        "| workload | shape | whole batch | shares one after the other | "
        "products: whole | products: shares | shares side by side (estimate) | "
        "one after the other / whole | side by side / whole |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(1):
        for w in workloads:
            whole = runner(engine, *batch(w, dtype))
            shares = one_after_another(
                [runner(engine, *batch(w, dtype, k, seed)) for seed in range(k)]
            )
            samples = -(-w.batch_size // k)
            runs = [
                whole,
                shares,
                products_runner(w, w.batch_size, dtype),
                products_runner(w, samples, dtype),
            ]
            for run in runs[2:]:
                run()  # first touch
            t_whole, t_shares, p_whole, p_shares = best_interleaved(
                runs, args.rounds, calls=3
            )
            p_shares *= k
            side_by_side = t_whole - p_whole + p_shares
            print(
                f"| {w.name} | {w.describe()} | {t_whole * 1e3:.2f} | "
                f"{t_shares * 1e3:.2f} | {p_whole * 1e3:.2f} | {p_shares * 1e3:.2f} | "
                f"{side_by_side * 1e3:.2f} | {t_shares / t_whole:.2f} | "
                f"{side_by_side / t_whole:.2f} |"
            )


if __name__ == "__main__":
    main()
