"""Long sequences: what bidirectional layers and pooling bring to classification.

The task (generated here, nothing downloaded): each sequence is ``T`` steps of
Gaussian noise (standard deviation 0.6) holding one motif of 40 steps at a random
position: a bump (half a sine wave) for class "bump", a full sine wave for class
"wave". The class is in the shape of the motif alone, wherever it lies, as in the
shape classification series of the UCR archive (GunPoint, ArrowHead, ...).

A last-step LSTM must carry what it saw of the motif through up to ``T - 40``
steps of noise to its last state; pooling over the steps reads it where it is,
and the backward direction of a bidirectional layer ends at the first step.

For each ``bidirectional`` x ``pooling`` (last, mean, max), the script fits
``LSTMClassifier(hidden_layer_sizes=16)`` (Adam, learning rate 0.01, 40 epochs,
mini-batches of 32) on 60 training sequences (as few as in many sets of the UCR
archive) and prints the test accuracy on 1000 others, averaged over seeds, with
the fit time. Then, as a user would, it
picks the combination by 3-fold cross-validation on the training set
(``GridSearchCV``) and prints its test accuracy beside the default (last step,
one direction).

Run from the repository root (about 4 minutes on 2 cores)::

    python benchmarks/bench_pooling.py
    python benchmarks/bench_pooling.py --quick        # a smoke run, not the result
    python benchmarks/bench_pooling.py --timesteps 300 --seeds 3
"""

import argparse
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sklearn_lstm import LSTMClassifier  # noqa: E402

MOTIF_STEPS = 40
NOISE = 0.6


def make_motifs(n_samples, n_timesteps, random_state):
    """Noise with one motif per sequence: X (n, T, 1) and labels (n,)."""
    rng = np.random.RandomState(random_state)
    X = rng.normal(scale=NOISE, size=(n_samples, n_timesteps, 1))
    phase = np.linspace(0.0, np.pi, MOTIF_STEPS)
    shapes = {"bump": np.sin(phase), "wave": np.sin(2 * phase)}
    y = rng.choice(sorted(shapes), size=n_samples)
    starts = rng.randint(0, n_timesteps - MOTIF_STEPS + 1, size=n_samples)
    for i, (label, start) in enumerate(zip(y, starts)):
        X[i, start : start + MOTIF_STEPS, 0] += shapes[label]
    return X, y


def model(quick, **params):
    return LSTMClassifier(
        hidden_layer_sizes=16,
        learning_rate_init=0.01,
        batch_size=32,
        max_iter=3 if quick else 40,
        n_iter_no_change=np.inf,
        **params,
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    T = 60 if args.quick else args.timesteps
    n_train, n_test = (60, 60) if args.quick else (60, 1000)
    seeds = range(1 if args.quick else args.seeds)
    print(f"$ python {shlex.join(sys.argv)}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"Motif classification: {n_train} training and {n_test} test sequences of "
        f"{T} steps, a {MOTIF_STEPS}-step motif in noise; seeds {list(seeds)}.\n"
    )
    warnings.simplefilter("ignore", ConvergenceWarning)
    data = [
        (make_motifs(n_train, T, 2 * seed), make_motifs(n_test, T, 2 * seed + 1))
        for seed in seeds
    ]
    print("| bidirectional | pooling | test accuracy | fit time (s) |")
    print("|---|---|---|---|")
    for bidirectional in (False, True):
        for pooling in ("last", "mean", "max"):
            scores, times = [], []
            for seed, ((X, y), (X_test, y_test)) in zip(seeds, data):
                clf = model(
                    args.quick,
                    bidirectional=bidirectional,
                    pooling=pooling,
                    random_state=seed,
                )
                start = time.perf_counter()
                clf.fit(X, y)
                times.append(time.perf_counter() - start)
                scores.append(clf.score(X_test, y_test))
            print(
                f"| {bidirectional} | {pooling} | {np.mean(scores):.3f} "
                f"({', '.join(f'{s:.3f}' for s in scores)}) | {np.mean(times):.1f} |"
            )

    print("\nChosen by 3-fold GridSearchCV on the training set (seed 0):")
    (X, y), (X_test, y_test) = data[0]
    grid = {"bidirectional": [False, True], "pooling": ["last", "mean", "max"]}
    search = GridSearchCV(model(args.quick, random_state=0), grid, cv=3)
    search.fit(X, y)
    default = model(args.quick, random_state=0).fit(X, y)
    print("| model | test accuracy |")
    print("|---|---|")
    rows = [
        ("default (last step, one direction)", default.score(X_test, y_test)),
        (f"best of the grid: {search.best_params_}", search.score(X_test, y_test)),
    ]
    for name, score in rows:
        print(f"| {name} | {score:.3f} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
