"""Engine A/B: one mini-batch of each workload, two engine versions interleaved.

For work on ``sklearn_lstm/_engine.py``. The speed of this machine drifts by tens of
percent over minutes, more than most changes to the engine are worth; timing two
versions one after the other compares two machine states. This script loads the
engine of a git revision (``--base``, default HEAD) and the one in the working
tree as two packages in one process (each engine with the modules it imports
from the package, ``_network.py`` since it exists, of the same revision), and
times forward + backward of one mini-batch of each workload of ``bench_speed.py``
with both, alternating, many rounds; the best time of each is kept. Ratios below
1 mean the working tree is faster.

Run from the repository root::

    python benchmarks/ab_engine.py                    # working tree vs HEAD
    python benchmarks/ab_engine.py --base HEAD~3 --only W3,W4 --dtype float64
    OPENBLAS_NUM_THREADS=1 python benchmarks/ab_engine.py --share 2

The last line times what each of two processes computes in a fit with
``n_jobs=2`` whose batches are shared with a helper process (see
``sklearn_lstm/_processes.py``): half a batch, BLAS on one thread.

PyTorch is not needed. About a minute.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "sklearn_lstm"
# The engine, then the modules of the package it imports (relatively), when the
# revision has them: an engine is loaded as a package of these alone, without the
# package's __init__.
ENGINE_MODULES = ("_engine", "_network")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import WORKLOADS  # noqa: E402


def load_engine(directory, package):
    """The ``_engine`` module of the package ``package`` in ``directory``."""
    init = Path(directory) / package / "__init__.py"
    spec = importlib.util.spec_from_file_location(package, init)
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{package}._engine")


def engine_copy(directory, package, read):
    """Write the engine modules that ``read(name)`` returns (None: absent) as the
    package ``package`` in ``directory``, and load its engine."""
    root = Path(directory) / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name in ENGINE_MODULES:
        source = read(name)
        if source is not None:
            (root / f"{name}.py").write_text(source)
    return load_engine(directory, package)


def git_source(revision, name):
    """A module's source at a git revision; None if the revision has no such file."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:{PACKAGE}/{name}.py"],
        capture_output=True,
        text=True,
    )
    if done.returncode and name != "_engine":
        return None
    done.check_returncode()
    return done.stdout


def engine_at(revision, directory):
    """The engine of a git revision, from a copy in ``directory``."""
    return engine_copy(
        directory, "engine_base", lambda name: git_source(revision, name)
    )


def engine_here(directory):
    """The engine of the working tree, from a copy in ``directory``."""

    def read(name):
        path = REPO / PACKAGE / f"{name}.py"
        return path.read_text() if path.exists() else None

    return engine_copy(directory, "engine_work", read)


def batch(workload, dtype, share=1, seed=0):
    """One mini-batch (or its share) and parameters at the scale of a fresh model."""
    rng = np.random.default_rng(seed)
    H, F = workload.n_hidden, workload.n_features
    batch_size = -(-workload.batch_size // share)
    shape = (batch_size, workload.n_timesteps, F)
    X = rng.standard_normal(shape).astype(dtype)
    params = [
        rng.uniform(-1, 1, (F, 4 * H)) * np.sqrt(6 / (F + 4 * H)),
        rng.uniform(-1, 1, (H, 4 * H)) / np.sqrt(H),
        np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)],
        rng.uniform(-1, 1, (H, 1)) * np.sqrt(6 / (H + 1)),
        np.zeros(1),
    ]
    dout = rng.standard_normal((batch_size, 1)) / batch_size
    return X, [p.astype(dtype) for p in params], dout.astype(dtype)


def runner(engine, X, params, dout):
    workspace = engine.Workspace()

    def run():
        out, cache = engine.forward(X, params, workspace=workspace)
        engine.backward(dout, cache)

    run()  # fills the workspace
    return run


def best_interleaved(runs, rounds, calls):
    best = [np.inf] * len(runs)
    for _ in range(rounds):
        for k, run in enumerate(runs):
            start = time.perf_counter()
            for _ in range(calls):
                run()
            best[k] = min(best[k], (time.perf_counter() - start) / calls)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git revision (default HEAD)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--share",
        type=int,
        default=1,
        help="time the share of a batch split among this many processes, as a "
        "shared fit does (default 1: the whole batch)",
    )
    args = parser.parse_args(argv)
    workloads = [
        w for w in WORKLOADS if not args.only or w.name in args.only.split(",")
    ]
    with tempfile.TemporaryDirectory() as directory:
        base = engine_at(args.base, directory)
        work = engine_here(directory)
        print(f"engine A/B, {args.dtype}, best of {args.rounds} interleaved rounds")
        if args.share > 1:
            print(f"each batch's share when split among {args.share} processes")
        print(f"base: {args.base}; new: the working tree\n")
        print("| workload | shape | base ms/batch | new ms/batch | new/base |")
        print("|---|---|---:|---:|---:|")
        for w in workloads:
            X, params, dout = batch(w, args.dtype, args.share)
            runs = [runner(engine, X, params, dout) for engine in (base, work)]
            start = time.perf_counter()
            runs[0]()
            calls = max(1, int(0.05 / (time.perf_counter() - start)))
            t_base, t_new = best_interleaved(runs, args.rounds, calls)
            print(
                f"| {w.name} | {w.describe()} | {t_base * 1e3:.3f} | "
                f"{t_new * 1e3:.3f} | {t_new / t_base:.3f} |"
            )


if __name__ == "__main__":
    main()
