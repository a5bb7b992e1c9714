"""What helper processes cost and buy: n_jobs=-1 against the default n_jobs=None.

For each workload (W1..W4 of ``bench_speed.py``, float32), a fit of a few epochs
with ``n_jobs=None`` and with ``n_jobs=-1``, each in a fresh worker process of its
own, repeats interleaved, best kept:

1. on a quiet machine: seconds per epoch, and CPU seconds per epoch of the whole
   fit (this process, plus its helper processes);
2. next to one busy process (a Python loop that never sleeps, started before the
   fits and ended after them): seconds per epoch;
3. two fits at once, each in a process of its own, both with ``n_jobs=None`` or
   both with ``n_jobs=-1``: seconds per epoch of the slower.

What users rely on: a shared fit costs about the CPU time of a one-process fit
(waiting does not burn much), and a busy machine makes it no slower than one
process would be.

A third fit on the quiet machine splits the CPU time of ``n_jobs=-1`` into what
cutting the batches costs and what waiting costs: ``n_jobs=-1`` under
``threadpoolctl.threadpool_limits(1)``, which allows no helper (see the README),
so that this process computes the same shares one after the other. Its CPU time
over ``n_jobs=None``'s is the cost of the shares alone (smaller matrix products
and the same number of NumPy calls per share as per batch); the shared fit's CPU
time over it is the cost of handing shares over and waiting for them, and of
running on both cores at once: the CPU time of two ``n_jobs=None`` fits at once
(from 3.) over one's prices the latter alone, whatever the processes compute.

Run from the repository root::

    python benchmarks/bench_sharing.py             # all four workloads, ~4 min
    python benchmarks/bench_sharing.py --only W1,W2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import WORKLOADS as SPEED_WORKLOADS  # noqa: E402
from bench_speed import blas_description, cpu_model  # noqa: E402

WORKLOADS = {  # N, T, F, H, batch of bench_speed.py's workloads
    w.name: (w.n_samples, w.n_timesteps, w.n_features, w.n_hidden, w.batch_size)
    for w in SPEED_WORKLOADS
}

# The worker: fits on request and answers with wall and CPU seconds per epoch.
WORKER = r"""
import json, os, sys, time, warnings
import numpy as np
from sklearn_lstm import LSTMRegressor
from sklearn_lstm import _processes
from sklearn_lstm._processes import RUNTIME
from threadpoolctl import threadpool_limits

warnings.simplefilter("ignore")
n_jobs, here = json.loads(sys.argv[1])  # here: the shares in this process only
N, T, F, H, B = json.loads(sys.argv[2])
epochs = int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.standard_normal((N, T, F), dtype=np.float32)
y = X[:, :, 0].sum(axis=1)
tick = os.sysconf("SC_CLK_TCK")


def helpers_cpu():
    total = 0.0
    for pid in RUNTIME.pids():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def fit(max_iter):
    est = LSTMRegressor(hidden_layer_sizes=H, batch_size=B, max_iter=max_iter,
                        tol=0.0, n_iter_no_change=np.inf, random_state=0,
                        n_jobs=n_jobs)
    if not here:
        return est.fit(X, y)
    with threadpool_limits(1):  # BLAS's limit caps the helpers: none
        est.fit(X, y)
    assert not RUNTIME.pids()
    return est


fit(1)  # warm-up: imports, first page faults, helpers started
for line in sys.stdin:
    cpu, helpers, wall = time.process_time(), helpers_cpu(), time.perf_counter()
    fit(epochs)
    wall = (time.perf_counter() - wall) / epochs
    cpu = (time.process_time() - cpu + helpers_cpu() - helpers) / epochs
    # How late this process typically woke after sleeping for a helper (what a
    # wait polls for), 0 if it never slept.
    # (ab_runtime.py runs this worker on older versions too: none before f9a33bb.)
    wakes = getattr(_processes, "_wakes", None)
    print(json.dumps([wall, cpu, wakes.typical if wakes else 0.0]), flush=True)
"""

BUSY = "while True: pass"


def measure(workload, settings, repeats, epochs, copies=1):
    """Best wall and CPU seconds per epoch of each setting ``(n_jobs, whether
    the shares are computed in this process only)``, and how late the training
    process typically woke after its last fit; with ``copies``, as many
    processes fit at once and the slowest counts (CPU, waking: the most)."""
    workers = {
        name: [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(setting),
                 json.dumps(WORKLOADS[workload]), str(epochs)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for _ in range(copies)
        ]
        for name, setting in settings.items()
    }
    best = {name: [float("inf"), float("inf"), 0.0] for name in workers}
    try:
        for _ in range(repeats):
            for name, group in workers.items():
                time.sleep(0.3)  # let the last worker's BLAS threads settle
                for worker in group:
                    worker.stdin.write("go\n")
                    worker.stdin.flush()
                walls, cpus, wakes = zip(*(json.loads(worker.stdout.readline())
                                           for worker in group))
                best[name] = [min(best[name][0], max(walls)),
                              min(best[name][1], max(cpus)), max(wakes)]
    finally:
        for group in workers.values():
            for worker in group:
                worker.stdin.close()
                worker.wait()
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W2")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(WORKLOADS)
    settings = {"None": (None, False), "-1": (-1, False)}
    here = {"-1 here": (-1, True)}
    print("# n_jobs=-1 against n_jobs=None: time, CPU time, and next to a busy "
          "process\n")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"machine: {cpu_model()}; BLAS: {blas_description()}")
    print(f"usable cores: {len(os.sched_getaffinity(0))}; load average at start: "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.epochs} epochs per fit after a 1-epoch warm-up, best of "
          f"{args.repeats} interleaved repeats, float32\n")

    quiet = {w: measure(w, {**settings, **here}, args.repeats, args.epochs)
             for w in names}
    pairs = {w: measure(w, settings, args.repeats, args.epochs, copies=2)
             for w in names}
    busy_process = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)
        busy = {w: measure(w, settings, args.repeats, args.epochs) for w in names}
    finally:
        busy_process.kill()
        busy_process.wait()

    print("| workload | None s/epoch | -1 s/epoch | -1/None time | None CPU s/epoch "
          "| -1 CPU s/epoch | -1/None CPU | busy: None s/epoch | busy: -1 s/epoch "
          "| busy: -1/None |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in names:
        (n_wall, n_cpu, _), (s_wall, s_cpu, _) = quiet[w]["None"], quiet[w]["-1"]
        b_none, b_shared = busy[w]["None"][0], busy[w]["-1"][0]
        print(f"| {w} | {n_wall:.4f} | {s_wall:.4f} | {s_wall / n_wall:.2f} "
              f"| {n_cpu:.4f} | {s_cpu:.4f} | {s_cpu / n_cpu:.2f} "
              f"| {b_none:.4f} | {b_shared:.4f} | {b_shared / b_none:.2f} |")
    print("\nCPU time counts this process and its helpers.")
    wakes = ", ".join(f"{w} {quiet[w]['-1'][2] * 1e3:.3f}" for w in names)
    print("How late the training process typically woke from sleep when the "
          f"helper answered (ms, quiet machine, -1): {wakes}; a wait polls that "
          "long before it sleeps")
    print("\nTwo fits at once, each in its own process (the same setting in both): "
          "seconds per epoch of the slower")
    print("| workload | two None s/epoch | two -1 s/epoch | two -1 / two None |")
    print("|---|---:|---:|---:|")
    for w in names:
        p_none, p_shared = pairs[w]["None"][0], pairs[w]["-1"][0]
        print(f"| {w} | {p_none:.4f} | {p_shared:.4f} | {p_shared / p_none:.2f} |")
    print("\nWhere -1's extra CPU time goes (quiet machine): the same shares "
          "computed here one after the other, no helper")
    print("(both cores busy: two n_jobs=None fits at once, each in its own "
          "process, against one; the CPU time of the costlier)")
    print("| workload | shares here CPU s/epoch | shares here / None CPU "
          "| -1 / shares here CPU | both cores busy: two None / one None CPU |")
    print("|---|---:|---:|---:|---:|")
    for w in names:
        n_cpu, s_cpu = quiet[w]["None"][1], quiet[w]["-1"][1]
        h_cpu, p_cpu = quiet[w]["-1 here"][1], pairs[w]["None"][1]
        print(f"| {w} | {h_cpu:.4f} | {h_cpu / n_cpu:.2f} | {s_cpu / h_cpu:.2f} "
              f"| {p_cpu / n_cpu:.2f} |")
    print(f"\nLoad average at end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
