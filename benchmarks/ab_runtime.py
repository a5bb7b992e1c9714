"""Runtime A/B: fits with ``n_jobs=-1`` of two versions of the package, interleaved.

For work on the helper runtime (``sklearn_lstm/_processes.py``, ``_backend.py``):
how long waits poll, what a share's hand-over costs. ``ab_engine.py`` times the
engine alone; this script times whole fits, helpers included. The package of a
git revision (``--base``, default HEAD) and the one in the working tree each run
in a worker process of their own, whose helpers run that version's code; both fit
the same data (``bench_speed.py``'s workloads, float32, its estimator settings) in
turns, many rounds, so that the machine's drift touches both alike. For each
workload it prints the best time per epoch and the median CPU time per epoch (the
worker and its helpers) of both, and their ratios: below 1, the working tree is
faster or cheaper.

Run from the repository root::

    python benchmarks/ab_runtime.py                      # working tree vs HEAD
    python benchmarks/ab_runtime.py --base HEAD~1 --only W1,W2 --rounds 8

No PyTorch needed. About a minute at the default 6 rounds. Two runs of the same
code (``--base HEAD`` on a clean tree) differed by up to 8% here: compare more
rounds, or several runs, before trusting a smaller difference.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from bench_speed import WORKLOADS  # noqa: E402


def worker(package_dir, name, epochs):
    """Serve fits of workload ``name`` with the package in ``package_dir``: one
    per line read, answering ``[seconds per epoch, CPU seconds per epoch]``."""
    sys.path.insert(0, package_dir)
    import bench_speed

    import sklearn_lstm
    from sklearn_lstm._processes import RUNTIME

    if not sklearn_lstm.__file__.startswith(package_dir):
        raise RuntimeError(f"imported {sklearn_lstm.__file__}, not {package_dir}")
    warnings.simplefilter("ignore")
    workload = {w.name: w for w in WORKLOADS}[name]
    X, y = bench_speed.make_data(workload)
    tick = os.sysconf("SC_CLK_TCK")

    def helpers_cpu():
        total = 0.0
        for pid in RUNTIME.pids():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # exited meanwhile
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    bench_speed.fit_ours(X, y, workload, 1, n_jobs=-1)  # warm-up, helpers started
    for _ in sys.stdin:
        cpu, helpers, wall = time.process_time(), helpers_cpu(), time.perf_counter()
        bench_speed.fit_ours(X, y, workload, epochs, n_jobs=-1)
        wall = (time.perf_counter() - wall) / epochs
        cpu = (time.process_time() - cpu + helpers_cpu() - helpers) / epochs
        print(json.dumps([wall, cpu]), flush=True)


def package_at(revision, directory):
    """A copy of the package at a git revision, in ``directory``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "sklearn_lstm"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    return directory


def compare(name, packages, rounds, epochs):
    """Best seconds and median CPU seconds per epoch of each package's fits."""
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--_worker", package, name, str(epochs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for package in packages
    ]
    results = [[] for _ in workers]
    try:
        for k in range(rounds):
            order = range(len(workers)) if k % 2 == 0 else reversed(range(len(workers)))
            for j in order:
                workers[j].stdin.write("fit\n")
                workers[j].stdin.flush()
                line = workers[j].stdout.readline()
                if not line:
                    raise RuntimeError(f"the worker of {packages[j]} ended")
                results[j].append(json.loads(line))
    finally:
        for process in workers:
            process.stdin.close()
            process.wait()
    return [(min(r[0] for r in res), float(np.median([r[1] for r in res])))
            for res in results]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="git revision (default HEAD)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3, help="per fit (W3: 2)")
    parser.add_argument("--_worker", nargs=3, dest="worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        package_dir, name, epochs = args.worker
        worker(package_dir, name, int(epochs))
        return
    names = [w.name for w in WORKLOADS]
    if args.only:
        names = [n.strip().upper() for n in args.only.split(",")]
    print(f"runtime A/B, fits with n_jobs=-1, float32, {args.rounds} interleaved "
          "rounds")
    print(f"base: {args.base}; new: the working tree\n")
    print("| workload | base s/epoch | new s/epoch | new/base time | "
          "base CPU s/epoch | new CPU s/epoch | new/base CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as directory:
        packages = [package_at(args.base, directory), str(REPO)]
        for name in names:
            epochs = max(1, args.epochs - 1) if name == "W3" else args.epochs
            (t0, c0), (t1, c1) = compare(name, packages, args.rounds, epochs)
            print(f"| {name} | {t0:.4f} | {t1:.4f} | {t1 / t0:.3f} | {c0:.4f} | "
                  f"{c1:.4f} | {c1 / c0:.3f} |", flush=True)
    print("\ntime: best of the rounds; CPU time: their median, helpers included")


if __name__ == "__main__":
    main()
