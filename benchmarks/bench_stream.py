"""Latency of streams and of one-sequence predictions, against PyTorch.

Two measurements, each timed through the public API on our side and with the
equivalent PyTorch calls (float64, ``torch.no_grad()``) on the other:

1. **One new step of one stream** (H=32, F=4 unless told): ours is
   ``stream.predict(x)`` on a stream made by ``LSTMRegressor.stream()``, ``x`` of
   shape (1, F), which validates the step, advances the state and returns the
   prediction; torch's is ``nn.LSTM`` on one step with the ``(h, c)`` of the step
   before passed in, then ``nn.Linear`` on its output, from a NumPy step to a
   NumPy prediction (``torch.from_numpy`` / ``.numpy()``).
2. **One whole sequence** (T=30): ``predict`` on an array (1, T, F) against
   ``nn.LSTM`` + ``nn.Linear`` on ``h_n``, from NumPy to NumPy.

Torch is timed twice, with its default threads and with
``torch.set_num_threads(1)`` (for tiny work, thread hand-offs cost more than they
save), and our ratio is taken against the faster of the two. The calls of each
contender are timed in interleaved rounds (so that background load hits all
alike), and the median of the rounds is kept.

Run: ``python benchmarks/bench_stream.py`` (``--rounds``, ``--hidden``,
``--features``, ``--timesteps``); needs ``torch==2.13.0``.
"""

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

try:
    import torch
except ImportError:
    sys.exit('This benchmark needs PyTorch: python -m pip install -e ".[bench]"')

import sklearn

from sklearn_lstm import LSTMRegressor


def per_call(fn, n_calls):
    """Microseconds per call of ``fn`` over ``n_calls`` calls."""
    start = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - start) / n_calls * 1e6


def torch_model(reg):
    """nn.LSTM + nn.Linear holding ``reg``'s weights (float64)."""
    (layer,) = reg.lstm_coefs_
    F, H = layer["kernel"].shape[0], layer["recurrent_kernel"].shape[0]
    lstm = torch.nn.LSTM(F, H, batch_first=True).double()
    head = torch.nn.Linear(H, 1).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(layer["kernel"].T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(layer["recurrent_kernel"].T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(layer["bias"]))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(reg.coefs_[0].T))
        head.bias.copy_(torch.from_numpy(reg.intercepts_[0]))
    return lstm, head


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=30)
    args = parser.parse_args()
    H, F, T = args.hidden, args.features, args.timesteps

    print(" ".join(["python", *sys.argv]))
    print(
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, torch "
        f"{torch.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, T, F))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = LSTMRegressor(H, max_iter=2, random_state=0).fit(X, X[:, :, 0].sum(1))
    lstm, head = torch_model(reg)
    default_threads = torch.get_num_threads()

    stream = reg.stream()
    step = X[0, :1]  # (1, F): one new step of one stream
    state = [torch.zeros(1, 1, H, dtype=torch.float64)] * 2

    def torch_step():
        with torch.no_grad():
            out, new_state = lstm(torch.from_numpy(step[np.newaxis]), tuple(state))
            state[:] = new_state
            return head(out[:, -1]).numpy()

    sequence = X[:1]

    def torch_predict():
        with torch.no_grad():
            _, (h_n, _) = lstm(torch.from_numpy(sequence))
            return head(h_n[-1]).numpy()

    # Same answers first: the timing compares like with like.
    np.testing.assert_allclose(torch_predict()[:, 0], reg.predict(sequence))

    contenders = {
        "step": {
            "ours": lambda: stream.predict(step),
            "torch": torch_step,
        },
        "predict": {
            "ours": lambda: reg.predict(sequence),
            "torch": torch_predict,
        },
    }
    calls = {"step": 2000, "predict": 300}
    times = {
        (what, who): [] for what in contenders for who in ["ours", "torch", "torch1"]
    }
    for _ in range(args.rounds):
        for what, fns in contenders.items():
            times[what, "ours"].append(per_call(fns["ours"], calls[what]))
            torch.set_num_threads(default_threads)
            times[what, "torch"].append(per_call(fns["torch"], calls[what]))
            torch.set_num_threads(1)
            times[what, "torch1"].append(per_call(fns["torch"], calls[what]))
            torch.set_num_threads(default_threads)

    print()
    print(
        f"Median of {args.rounds} interleaved rounds, microseconds per call "
        f"(H={H}, F={F}, float64)"
    )
    header = (
        f"{'call':<38}{'ours':>8}{'torch':>8}{'torch 1 thr':>13}"
        f"{'ours / best torch':>19}"
    )
    print(header)
    print("-" * len(header))
    names = {
        "step": "one new step of one stream",
        "predict": f"predict one sequence of T={T}",
    }
    for what in contenders:
        ours, tor, tor1 = (
            float(np.median(times[what, who])) for who in ["ours", "torch", "torch1"]
        )
        print(
            f"{names[what]:<38}{ours:>8.1f}{tor:>8.1f}{tor1:>13.1f}"
            f"{ours / min(tor, tor1):>19.2f}"
        )


if __name__ == "__main__":
    main()
