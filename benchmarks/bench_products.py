"""The engine's per-step matrix products, whole and cut into blocks of rows.

OpenBLAS's kernels for AVX-512 processors (SkylakeX and later, AMD Zen 4
included) multiply a product of at most 100**3 multiply-adds straight from its
operands, without packing them first. Where NumPy's BLAS has that path
(``sklearn_lstm._engine._small_product``), the engine cuts each step's larger
products into the fewest blocks of rows that fit (``_row_cuts``).

For the products of one time step of the workloads W1-W4 of ``bench_speed.py`` —
the gates (``4H x (H+F+1)`` by ``B``) and the recurrence's gradient (``H x 4H``
by ``B``) of a training batch, of the half batch each of two processes computes
with ``n_jobs=2`` or ``-1``, and of a prediction block — this prints the time of
the whole product, of its blocks, and of ``torch.mm`` on the same shapes, all on
one thread (as the engine's BLAS runs in a fit), in one run, float32 and
float64. Where the BLAS has no such path, the cut is the one an AVX-512 machine
would make, so that its cost there shows too. Ratios below 1: cut is faster.

Run from the repository root (about 10 s; PyTorch is optional)::

    python benchmarks/bench_products.py
    python benchmarks/bench_products.py --dtype float32 --only W3
    OPENBLAS_CORETYPE=Haswell python benchmarks/bench_products.py   # no such path
"""

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab_engine import best_interleaved  # noqa: E402
from bench_speed import WORKLOADS  # noqa: E402

from sklearn_lstm import _engine as engine  # noqa: E402
from sklearn_lstm._network import Network  # noqa: E402

try:
    import torch
except ImportError:  # the table leaves torch's column empty
    torch = None


def products(workload, dtype):
    """(name, m, k, n) of the per-step products of a workload."""
    H, F, B = workload.n_hidden, workload.n_features, workload.batch_size
    network = Network.from_shapes(
        [(F, 4 * H), (H, 4 * H), (4 * H,), (H, 1), (1,)]
    )
    block = engine._block_samples(network, np.dtype(dtype).itemsize)
    return [
        ("gates, batch", 4 * H, H + F + 1, B),
        ("recurrence grad, batch", H, 4 * H, B),
        ("gates, half batch", 4 * H, H + F + 1, -(-B // 2)),
        ("recurrence grad, half batch", H, 4 * H, -(-B // 2)),
        ("gates, prediction block", 4 * H, H + F + 1, block),
    ]


def time_product(m, k, n, dtype, limit, rng):
    """Microseconds of the whole product, of its cut blocks, and of torch.mm."""
    A = rng.standard_normal((m, k)).astype(dtype)
    X = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    cuts = engine._row_cuts(m, k, n, limit)
    blocks = [(A[a:b], out[a:b]) for a, b in cuts]

    def whole():
        np.dot(A, X, out)

    def cut():
        for A_ab, out_ab in blocks:
            np.dot(A_ab, X, out_ab)

    reps = max(20, int(3e7 / (m * k * n)))
    runs = {"whole": whole, "cut": cut}
    if torch is not None:
        A_t, X_t = torch.from_numpy(A), torch.from_numpy(X)
        out_t = torch.from_numpy(out)
        runs["torch"] = lambda: torch.mm(A_t, X_t, out=out_t)
    times = best_interleaved(list(runs.values()), 9, reps)
    return len(cuts), {name: t * 1e6 for name, t in zip(runs, times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W2,W3")
    args = parser.parse_args()
    dtypes = args.dtype or ["float32", "float64"]
    only = set(args.only.split(",")) if args.only else None
    limit = engine._small_product()
    print(" ".join(sys.argv))
    print(f"numpy {np.__version__}, Python {platform.python_version()}"
          + (f", torch {torch.__version__}" if torch is not None else ", no torch"))
    if limit:
        print(f"NumPy's BLAS multiplies products of at most {limit} multiply-adds "
              "without packing: the engine cuts larger ones")
    else:
        limit = engine._SMALL_PRODUCT
        print("NumPy's BLAS has no path for small products: the engine does not "
              f"cut; the table times the cut into blocks of {limit} an AVX-512 "
              "machine would make")
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        for dtype in dtypes:
            print(f"\n## {dtype}, one thread, microseconds per product\n")
            print("| workload | product | m x k by n | blocks | whole | cut | "
                  "cut / whole | torch.mm |")
            print("|---|---|---|---:|---:|---:|---:|---:|")
            for workload in WORKLOADS:
                if only and workload.name not in only:
                    continue
                for name, m, k, n in products(workload, dtype):
                    count, t = time_product(m, k, n, dtype, limit, rng)
                    torch_time = f"{t['torch']:.1f}" if "torch" in t else ""
                    print(f"| {workload.name} | {name} | {m} x {k} by {n} | {count} "
                          f"| {t['whole']:.1f} | {t['cut']:.1f} | "
                          f"{t['cut'] / t['whole']:.2f} | {torch_time} |", flush=True)


if __name__ == "__main__":
    main()
