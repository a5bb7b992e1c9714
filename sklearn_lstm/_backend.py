"""Where the computation runs: the backends behind the estimators.

An estimator asks its backend two things: the loss and gradients of a mini-batch
(:meth:`SerialBackend.loss_grad`) and the raw outputs of validated sequences
(:meth:`SerialBackend.outputs`). How the work is cut depends on ``n_jobs`` alone:

* a mini-batch is cut into ``n_shares`` interleaved shares, whose losses and
  gradients are added in the order of the shares;
* a prediction is cut into chunks of samples of similar lengths, sized by the
  data, the network and ``n_shares``; each sample's output comes from its chunk.

:class:`SerialBackend` computes every share in the calling thread: the
backend of ``n_jobs=None``. For an int ``n_jobs``, the process backend
(``_processes``) hands shares to helper processes, or computes them here
whenever a helper cannot. Both run every share with BLAS on one thread (see
:func:`blas_on_one_thread`), so that neither who computes a share nor how many
threads BLAS may use changes its result: for given parameters, a fit and its
predictions are the same bit for bit whether helpers ran or not, in a joblib
worker (whose BLAS joblib limits) or not. (A BLAS cuts a product among its
threads in ways that change the last bits of its sums: OpenBLAS does for float64
products of a few hundred rows, and training grows those bits.)

Nothing here imports scikit-learn: the helper processes load this module.
"""

import ctypes
import numbers
import os
import sys
import threading
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ._objective import share_loss_grad, share_outputs

__all__ = [
    "SerialBackend", "blas_on_one_thread", "blas_threads", "effective_n_jobs",
    "make_backend",
]

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
    """How many cores this process may use, counted as joblib counts them for
    scikit-learn's ``n_jobs=-1``: its CPU affinity, a container's CPU quota
    (cgroups) and the ``LOKY_MAX_CPU_COUNT`` environment variable, the smallest
    of them. In a container limited to 2 CPUs on a 64-core host, the affinity
    alone would say 64."""
    from joblib import cpu_count  # with scikit-learn; helpers never count

    return cpu_count()


def effective_n_jobs(n_jobs):
    """The number of shares that ``n_jobs`` asks for (scikit-learn's meaning).

    None means 1; a negative value counts back from the cores this process may
    use, ``-1`` being all of them.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        # As fit's parameter validation says it, for a value set after fit.
        raise ValueError(
            f"The 'n_jobs' parameter must be an int or None. Got {n_jobs!r} instead."
        )
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None or 1 for one job.")
    if n_jobs < 0:
        return max(1, usable_cores() + 1 + n_jobs)
    return n_jobs


# --------------------------------------------------------------- BLAS threads
_blas_lock = threading.Lock()
_blas_users = 0  # fits and predictions under way, in all threads
_blas_controller = None
_blas_modules = None  # len(sys.modules) when _blas_controller was made


class _Saved(NamedTuple):
    """What the first of the fits and predictions under way found, until given
    back: each BLAS library's thread count, by threadpoolctl's controller of it,
    and each OpenBLAS's own, by its setter."""

    libraries: list  # [(threadpoolctl's LibController, num_threads)]
    counts: list  # [(openblas_set_num_threads_local, count)]

    @property
    def threads(self):
        """The fewest threads any of them may use (see :func:`blas_threads`)."""
        counts = [count for _, count in self.libraries]
        return min(counts) if counts else usable_cores()


_saved = None  # a _Saved while BLAS is held to one thread or not yet given back


def _blas():
    """threadpoolctl's controller of the BLAS libraries loaded in this process.

    Making one scans the loaded libraries (about 3 ms); it is made again only
    after an import, the way new libraries come in.
    """
    global _blas_controller, _blas_modules
    if _blas_controller is None or _blas_modules != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _blas_modules = len(sys.modules)
        _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller


def blas_threads():
    """The fewest threads any BLAS loaded in this process may use, as the user
    or joblib set them: during a fit or a prediction, the count from before
    :func:`blas_on_one_thread` held it to one."""
    with _blas_lock:
        if _saved is not None:
            return _saved.threads
    return _threads_now()


def _threads_now():
    counts = [lib.num_threads for lib in _blas().lib_controllers]
    return min(counts) if counts else usable_cores()


_setters = (None, [])  # a controller, and the (setter, controller) of its OpenBLASes


def _local_setters():
    """OpenBLAS's ``openblas_set_num_threads_local`` of each OpenBLAS loaded
    (0.3.27 and later), with threadpoolctl's controller of that library. The
    setter's name says the calling thread's count; in NumPy's OpenBLAS 0.3.31 it
    sets the process's, from any thread (measured), which is why its users are
    counted."""
    global _setters
    controller = _blas()
    if _setters[0] is controller:
        return _setters[1]
    pairs = []
    for lib in controller.lib_controllers:
        setter = getattr(getattr(lib, "dynlib", None),
                         "openblas_set_num_threads_local", None)
        if lib.internal_api == "openblas" and setter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
            pairs.append((setter, lib))
    _setters = (controller, pairs)
    return pairs


def _hold(entered):
    """Count a user, hold BLAS to one thread, and say so in ``entered[0]``."""
    global _blas_users, _saved
    with _blas_lock:
        _blas_users += 1
        entered[0] = True  # no call between: nothing can interrupt in between
        libraries, pairs = _blas().lib_controllers, _local_setters()
        if _saved is None:
            # Read before anything is changed: an interruption (Ctrl-C) after
            # any change finds the counts to give back here.
            _saved = _Saved(
                [(lib, lib.num_threads) for lib in libraries],
                [(setter, lib.num_threads) for setter, lib in pairs],
            )
        for setter, _ in pairs:
            setter(1)
        for lib in libraries:
            lib.set_num_threads(1)


def _give_back():
    """Put back what :func:`_hold` changed; safe to repeat after an
    interruption part way."""
    global _saved
    if _saved is None:
        return
    for lib, count in _saved.libraries:
        lib.set_num_threads(count)
    for setter, count in _saved.counts:
        setter(count)
    _saved = None


@contextmanager
def blas_on_one_thread():
    """BLAS on one thread during a fit or a prediction (about 15 us).

    The limit is counted across threads: set when the first fit or prediction
    starts, put back when the last one ends. threadpoolctl's limit does not reach
    every thread in every OpenBLAS (0.3.31 ignores it when set from a thread other
    than the main one), so OpenBLAS's ``openblas_set_num_threads_local`` is also
    called where it exists: by each thread that starts one, so that the thread
    runs on one thread whether that count is its own or the process's.

    An exception raised by a signal handler (Ctrl-C's KeyboardInterrupt) may land
    anywhere, including in the calls that set and put back the counts: every
    count is read before any is changed, and putting them back is started again
    (twice at most) when interrupted, so that BLAS does not stay on one thread.
    """
    entered = [False]
    try:
        _hold(entered)
        yield
    finally:
        # Unrolled, not a loop: a loop's jump back lies outside its try, and an
        # interruption there would escape before the counts are given back.
        try:
            _let_go(entered)
        except BaseException:  # an interruption: finish, then raise it
            try:
                _let_go(entered)
            except BaseException:
                _let_go(entered)
                raise
            raise


def _let_go(entered):
    """Count a user out (if :func:`_hold` counted it in) and, for the last
    one, give back the counts; safe to repeat after an interruption part way."""
    global _blas_users
    with _blas_lock:
        if entered[0]:
            # (Never below 0: a child forked in a fit counts afresh.)
            _blas_users = max(0, _blas_users - 1)
            entered[0] = False  # no call between, as in _hold
        if _blas_users == 0:
            _give_back()


def _after_fork_in_child():
    """A child forked while other threads held BLAS to one thread has none of
    those threads: it gives the counts back and starts counting afresh (with a
    new lock, which one of them may have held)."""
    global _blas_lock, _blas_users
    _blas_lock = threading.Lock()
    _blas_users = 0
    try:
        _give_back()
    except Exception:  # a BLAS that cannot be told in the child: left as it is
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def make_backend(n_jobs):
    """The backend of an estimator with this ``n_jobs``: serial for None; else
    ``n_jobs`` shares, computed by helper processes when they can run and are
    worth it."""
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
        """Hold what the backend needs for a fit or a prediction: here, BLAS on
        one thread (see the module docstring).

        ``kind`` is ``"fit"`` (``n_samples`` the mini-batch size) or ``"predict"``
        (``n_samples`` the samples to predict); ``n_steps`` the longest sequence.
        """
        with blas_on_one_thread():
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
