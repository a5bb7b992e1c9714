"""Runtime A/B: fits with ``n_jobs=-1`` of two versions of the package, interleaved.

For work on the helper runtime (``sklearn_lstm/_processes.py``, ``_backend.py``):
how long waits poll, what a share's hand-over costs. ``ab_engine.py`` times the
engine alone; this script times whole fits, helpers included. The package of a
git revision (``--base``, default HEAD) and the one in the working tree each run
in a worker process of their own (``bench_sharing.py``'s), whose helpers run that
version's code; both fit the same data (``bench_speed.py``'s workloads, float32)
in turns, many rounds, so that the machine's drift touches both alike. For each
workload it prints the best time per epoch and the median CPU time per epoch (the
worker and its helpers) of both, and their ratios, and the median over the rounds
of each round's ratios (the two fits of a round run back to back, so that drift
over the rounds touches both alike): below 1, the working tree is faster or
cheaper.

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
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench_sharing.py's worker: fits on request, answers wall and CPU seconds per
# epoch (helpers included); it imports the package found first on its path.
from bench_sharing import WORKER, WORKLOADS  # noqa: E402


def with_package(package_dir):
    """How to start a worker that imports the package in ``package_dir``: run
    there (``python -c`` puts its directory first on the path)."""
    options = {"cwd": package_dir, "env": {**os.environ, "PYTHONPATH": package_dir}}
    found = subprocess.run(
        [sys.executable, "-c", "import sklearn_lstm; print(sklearn_lstm.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        **options,
    ).stdout.strip()
    if not found.startswith(package_dir):
        raise RuntimeError(f"a worker would import {found}, not {package_dir}")
    return options


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
    setting = json.dumps([-1, False])  # n_jobs=-1, helpers allowed
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, setting, json.dumps(WORKLOADS[name]),
             str(epochs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **with_package(package),
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
    # (rounds, [time, CPU]); the worker also answers how late it woke: left out
    base, new = (np.array(res)[:, :2] for res in results)
    # The two fits of a round run back to back, so the machine's drift over the
    # rounds touches both about alike: the median of the rounds' ratios.
    paired = np.median(new / base, axis=0)
    return [(res[:, 0].min(), np.median(res[:, 1])) for res in (base, new)], paired


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="git revision (default HEAD)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3, help="per fit (W3: 2)")
    args = parser.parse_args(argv)
    names = list(WORKLOADS)
    if args.only:
        names = [n.strip().upper() for n in args.only.split(",")]
        unknown = sorted(set(names) - set(WORKLOADS))
        if unknown:
            parser.error(f"unknown workloads {unknown}; known: {list(WORKLOADS)}")
    print(f"runtime A/B, fits with n_jobs=-1, float32, {args.rounds} interleaved "
          "rounds")
    print(f"base: {args.base}; new: the working tree\n")
    print("| workload | base s/epoch | new s/epoch | new/base time | "
          "base CPU s/epoch | new CPU s/epoch | new/base CPU | round by round: "
          "time | CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as directory:
        packages = [package_at(args.base, directory), str(REPO)]
        for name in names:
            epochs = max(1, args.epochs - 1) if name == "W3" else args.epochs
            ((t0, c0), (t1, c1)), (rt, rc) = compare(
                name, packages, args.rounds, epochs
            )
            print(f"| {name} | {t0:.4f} | {t1:.4f} | {t1 / t0:.3f} | {c0:.4f} | "
                  f"{c1:.4f} | {c1 / c0:.3f} | {rt:.3f} | {rc:.3f} |", flush=True)
    print("\ntime: best of the rounds; CPU time: their median, helpers included; "
          "round by round: the median of the rounds' new/base ratios (the two fits "
          "of a round run back to back)")


if __name__ == "__main__":
    main()
