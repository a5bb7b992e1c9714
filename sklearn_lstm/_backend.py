"""Where the computation runs: the backends behind the estimators.

An estimator asks its backend two things: the loss and gradients of a mini-batch
(:meth:`SerialBackend.loss_grad`) and the raw outputs of validated sequences
(:meth:`SerialBackend.outputs`). How the work is cut depends on ``n_jobs`` alone:

* a mini-batch is cut into ``n_shares`` interleaved shares, whose losses and
  gradients are added in the order of the shares;
* a prediction is cut into chunks of samples of similar lengths, sized by the
  data, the network and ``n_shares``; each sample's output comes from its chunk.

:class:`SerialBackend` computes every share in the calling thread, BLAS using
its threads: the backend of ``n_jobs=None``. For an int ``n_jobs``, the process
backend (``_processes``) hands shares to helper processes, or computes them here
whenever a helper cannot, every share with BLAS on one thread, so that who
computes a share never changes its result: for given parameters, a fit and its
predictions are the same bit for bit whether helpers ran or not, and whatever
BLAS's thread limits. (BLAS cuts a product among its threads in ways that can
change the last bits of its sums.)

Nothing here imports scikit-learn: the helper processes load this module.
"""

import os
from contextlib import contextmanager

import numpy as np

from ._objective import share_loss_grad, share_outputs

__all__ = ["SerialBackend", "effective_n_jobs", "make_backend"]

#: Prediction works on chunks of samples whose activations stay near this size,
#: however many samples are passed.
PREDICT_CHUNK_BYTES = 32 * 2**20

#: With several shares, a prediction is cut into at least ``n_shares`` chunks when
#: each gets at least this many samples.
MIN_PREDICT_SHARE = 64

def _outputs(network, params, X, workspace):
    return 0.0, [share_outputs(network, params, X, workspace)]


#: What a share computes, by name. Each returns a float and a list of arrays:
#: the loss and the gradients, or nothing and the outputs.
OPS = {"loss_grad": share_loss_grad, "outputs": _outputs}


def usable_cores():
    """How many cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def effective_n_jobs(n_jobs):
    """The number of shares that ``n_jobs`` asks for (scikit-learn's meaning).

    None means 1; a negative value counts back from the cores this process may
    use, ``-1`` being all of them.
    """
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None or 1 for one job.")
    if n_jobs < 0:
        return max(1, usable_cores() + 1 + n_jobs)
    return n_jobs


def make_backend(n_jobs):
    """The backend of an estimator with this ``n_jobs``: serial, BLAS using its
    threads, for None; else ``n_jobs`` shares, each computed with BLAS on one
    thread, by helper processes when they can run and are worth it."""
    if n_jobs is None:
        return SerialBackend()
    from ._processes import ProcessBackend

    return ProcessBackend(effective_n_jobs(n_jobs))


class SerialBackend:
    """Every share computed in the calling thread, one after the other.

    Parameters
    ----------
    n_shares : int, default=1
        How many shares each mini-batch is cut into (see the module docstring).
    """

    def __init__(self, n_shares=1):
        self.n_shares = int(n_shares)

    @contextmanager
    def session(self, network, kind, n_samples, n_steps):
        """Hold what the backend needs for a fit or a prediction.

        ``kind`` is ``"fit"`` (``n_samples`` the mini-batch size) or ``"predict"``
        (``n_samples`` the samples to predict); ``n_steps`` the longest sequence.
        """
        yield self

    # -------------------------------------------------------------- training
    def shares(self, n_samples):
        """The positions in a mini-batch of each share (interleaved, so that the
        shares of a batch sorted by length are alike); empty ones are left out."""
        k = min(self.n_shares, n_samples)
        return [np.arange(j, n_samples, k) for j in range(k)]

    def loss_grad(self, network, params, batch, loss, workspace):
        """Loss and gradients of :class:`~._objective.Batch` ``batch`` (no
        penalty), added over its shares in their order."""
        shares = self.shares(len(batch))
        if len(shares) == 1:
            return share_loss_grad(network, params, batch, loss, workspace)
        tasks = [
            ("loss_grad", (network, params, batch.take(idx), loss)) for idx in shares
        ]
        total = []

        def add(j, result):
            loss_value, grads = result
            if j == 0:  # computed here: fresh arrays of this process
                total[:] = [loss_value, grads]
                return
            total[0] += loss_value
            for acc, grad in zip(total[1], grads):
                acc += grad

        self.run(tasks, add, workspace)
        return total[0], total[1]

    # ------------------------------------------------------------ prediction
    def chunks(self, network, X):
        """The samples of each chunk of a prediction: slices for sequences of
        one length, else index arrays of samples sorted by length."""
        n_samples, n_steps = X.values.shape[:2]
        # Prediction keeps, per layer, direction and sample, the column [h; x; 1]
        # of each step.
        per_step = sum(
            layer.n_directions * (layer.n_inputs + layer.n_hidden + 1)
            for layer in network.lstm
        )
        per_sample = (n_steps + 1) * per_step * X.dtype.itemsize
        size = max(1, PREDICT_CHUNK_BYTES // per_sample)
        if self.n_shares > 1 and n_samples >= self.n_shares * MIN_PREDICT_SHARE:
            size = min(size, -(-n_samples // self.n_shares))
        starts = range(0, n_samples, size)
        if X.lengths is None:
            return [slice(start, start + size) for start in starts]
        order = np.argsort(X.lengths, kind="stable")
        return [order[start : start + size] for start in starts]

    def outputs(self, network, params, X, workspace):
        """Raw network outputs of the :class:`~._objective.Sequences` ``X``: (n,
        n_outputs), or (n, n_timesteps, n_outputs) per step (zeros at steps past
        a chunk's longest sequence, meaningless at other padding steps)."""
        chunks = self.chunks(network, X)
        per_step = X.values.shape[1:2] if network.per_step else ()
        out = np.zeros((len(X), *per_step, network.n_outputs), dtype=X.dtype)
        tasks = [("outputs", (network, params, X.take(idx))) for idx in chunks]

        def put(j, result):
            chunk_out = result[1][0]  # per step: cut to the chunk's longest
            out[chunks[j], : chunk_out.shape[1] if per_step else None] = chunk_out

        self.run(tasks, put, workspace)
        return out

    # -------------------------------------------------------------- the work
    def run(self, tasks, consume, workspace):
        """Compute each ``(op, args)`` of ``tasks`` and hand its result to
        ``consume(j, result)``, in the order of the tasks."""
        for j, task in enumerate(tasks):
            consume(j, self.compute(task, workspace))

    @staticmethod
    def compute(task, workspace):
        op, args = task
        return OPS[op](*args, workspace)
