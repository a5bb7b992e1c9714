"""Helper processes that take a share of every mini-batch (and of a prediction).

Why processes. A step of the LSTM is a dozen NumPy calls of a few microseconds;
BLAS can spread the matrix products over the cores, but the element-wise work runs
on one. Python threads cannot share it: each call hands the GIL over, which costs
about as much as the call. Separate processes have no GIL to share. With ``n``
cores, each mini-batch is cut into ``n`` shares; the training process computes the
loss and gradients of the first share while ``n - 1`` helper processes compute the
others, with BLAS on one thread in each. The gradients add up: the loss of a batch
is a weighted sum over its samples, each share weighted by the batch's total. A
large prediction is cut into chunks the same way.

A helper is a fresh interpreter that loads only this module, the engine and the
losses (NumPy, not scikit-learn), started on the first fit that needs it and kept
for the rest of the session. It exits when the training process closes its pipe,
including when that process dies. Each fit (or prediction) maps one shared file
into both processes: parameters and the helper's share go in, its gradients and
loss (or outputs) come back; afterwards the helper drops its arrays and the file
shrinks to one page. A small message on a pipe says when a share is ready and when
it is done; a waiting process first polls a count of messages in the shared file
for a moment, so that a busy pair of processes is never put to sleep and woken up,
then blocks on the pipe, which is also what orders the memory accesses (see
:func:`_poll`). Each process is kept on its own core meanwhile (see "cores").

Nothing here knows about estimators. :func:`batch_loss_grad` is the one function
that both sides run on their share of a batch.
"""

import atexit
import json
import math
import mmap
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager

import numpy as np

if __package__:
    from ._engine import Workspace, backward, forward, mask_rows
    from ._losses import LOSS_FUNCTIONS
else:  # in a helper process, loaded without its package (see _BOOT)
    from _engine import Workspace, backward, forward, mask_rows
    from _losses import LOSS_FUNCTIONS

__all__ = [
    "MIN_PREDICT_MACS",
    "HelperError",
    "Layout",
    "batch_loss_grad",
    "helper_pool",
    "n_processes",
]

#: Each share of a batch has at least this many samples.
MIN_SHARE = 8

#: A batch is shared only when its forward matrix products have at least this many
#: multiply-adds (about a millisecond of work): below, the hand-over would cost a
#: noticeable part of the batch.
MIN_BATCH_MACS = 2**23

#: Prediction is shared when its matrix products have at least this many
#: multiply-adds: it pays for mapping the shared file and waking the helpers.
MIN_PREDICT_MACS = 2**26

#: Seconds a waiting process polls before it blocks.
_SPIN_SECONDS = 0.02

#: Seconds between checks that a helper is alive while waiting for it.
_CHECK_SECONDS = 1.0

_HEADER = struct.Struct("<cI")  # message kind, payload length
_BATCH = struct.Struct("<4q")  # samples, steps, has lengths, which masks (bits)
# Bytes at the start of the shared file for two counts: the messages sent to the
# helper and the batches it answered. They persist from fit to fit.
_CTRL = 16


def batch_loss_grad(values, y, weights, params, lengths, masks, loss, workspace):
    """Loss and gradients of one share of a mini-batch (no penalty).

    ``weights`` are the share's sample weights divided by the sum over the whole
    batch, so that the shares' losses and gradients add up to the batch's.
    """
    out, cache = forward(values, params, lengths, masks, workspace=workspace)
    loss_value, dout = LOSS_FUNCTIONS[loss](y, out, weights)
    return loss_value, backward(dout, cache)


# ------------------------------------------------------------------ messages
def _send(fd, kind, payload=b""):
    message = _HEADER.pack(kind, len(payload)) + payload
    while message:
        message = message[os.write(fd, message) :]


def _read_exactly(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _receive(fd):
    kind, length = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return kind, _read_exactly(fd, length) if length else b""


def _poll(counter, value, seconds):
    """Poll until ``counter[0] >= value`` or ``seconds`` have passed.

    A process waiting for a message polls the count of messages that the sender
    updates right after writing each, and only then reads the pipe: the message is
    there, so the reader does not sleep, and the sender does not pay for waking it
    up (a cross-core wake-up costs from a few hundred microseconds to milliseconds
    on some virtual machines).
    The pipe, not the counter, orders the memory accesses: everything written
    before a message is seen by the process that reads it.
    """
    deadline = time.perf_counter() + seconds
    while counter[0] < value and time.perf_counter() < deadline:
        pass


class Layout:
    """Where each array lives in the shared file of one fit.

    ``dropout`` says whether the batches come with dropout masks: one slot per
    layer for the masks of its inputs and of its recurrence, as wide as the rows
    of its kernel and recurrent kernel.
    """

    def __init__(
        self, loss, dtype, param_shapes, n_outputs, max_share, n_steps, dropout
    ):
        self.loss = str(loss)
        self.dtype = np.dtype(dtype)
        self.param_shapes = [tuple(int(n) for n in shape) for shape in param_shapes]
        self.n_outputs = int(n_outputs)
        self.max_share = int(max_share)
        self.n_steps = int(n_steps)
        self.dropout = bool(dropout)
        # Widths of the dropout masks, [F_1, H_1, F_2, H_2, ...].
        kernels = [s for k, s in enumerate(self.param_shapes[:-2]) if k % 3 != 2]
        self.mask_widths = [shape[0] for shape in kernels] if self.dropout else []
        self.n_params = sum(math.prod(shape) for shape in self.param_shapes)
        # Each array of the file: its number of elements and dtype (flat arrays
        # where the shape varies by batch).
        share, int64, float64 = self.max_share, np.dtype(np.int64), np.dtype(np.float64)
        self.arrays = {
            "params": (self.n_params, self.dtype),
            "grads": (self.n_params, self.dtype),
            "loss": (1, float64),
            "values": (share * self.n_steps * self.n_features, self.dtype),
            "lengths": (share, int64),
            "y": (share * self.n_outputs, self.dtype),
            "weights": (share, self.dtype),
            "masks": (share * sum(self.mask_widths), self.dtype),
        }
        self.offsets = {}
        offset = _CTRL
        for name, (count, dtype) in self.arrays.items():
            self.offsets[name] = offset
            offset += -(-count * dtype.itemsize // 64) * 64  # own cache lines
        self.size = max(offset, mmap.PAGESIZE)

    @property
    def args(self):
        """What the helper is sent, in plain Python types only: unpickling an
        instance would import this module as part of the package, and with it
        scikit-learn, in the helper."""
        return (
            self.loss,
            self.dtype.str,
            self.param_shapes,
            self.n_outputs,
            self.max_share,
            self.n_steps,
            self.dropout,
        )

    @property
    def n_features(self):
        return self.param_shapes[0][0]

    def views(self, buffer):
        """Arrays over ``buffer``, by name; the parameters and gradients as one
        array per parameter."""
        views = {"ctrl": _ctrl_view(buffer)}
        for name, (count, dtype) in self.arrays.items():
            views[name] = np.frombuffer(buffer, dtype, count, self.offsets[name])
        for name in ("params", "grads"):
            whole, arrays, start = views[name], [], 0
            for shape in self.param_shapes:
                size = math.prod(shape)
                arrays.append(whole[start : start + size].reshape(shape))
                start += size
            views[name] = arrays
        return views


def _ctrl_view(buffer):
    """The two message counts at the start of a shared file (see _CTRL)."""
    return np.frombuffer(buffer, np.int64, 2, offset=0)


# ------------------------------------------------------------ helper process
# Loads the engine, the losses and this module from their files without importing
# the package (and so scikit-learn), with the training process's sys.path.
_BOOT = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the training process
import importlib.util, json, sys
sys.path[:] = json.loads(sys.argv[1])
def load(name):
    path = sys.argv[2] + "/" + name + ".py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
load("_engine"), load("_losses")
load("_parallel")._helper_main(*map(int, sys.argv[3:]))
"""


def _helper_main(from_main, to_main, shared_fd):
    """The loop of a helper process: one share of a batch per message."""
    buffer = layout = views = None
    workspace = Workspace()
    # Messages received and batches answered; the training process counts the
    # same in the shared file's first two numbers, which persist from fit to fit.
    received = answered = 0
    _send(to_main, b"R")  # ready
    while True:
        if views is not None:
            _poll(views["ctrl"], received + 1, _SPIN_SECONDS)
        try:
            kind, payload = _receive(from_main)
        except EOFError:  # the training process has gone
            return
        received += 1
        if kind == b"F":  # the fit is over: let its memory go, keep the counters
            views = layout = None
            workspace = Workspace()
            _close_quietly(buffer)
            buffer = mmap.mmap(shared_fd, mmap.PAGESIZE)
            views = {"ctrl": _ctrl_view(buffer)}
            continue
        if kind == b"S":  # a new fit: map the shared file at its new size
            views = None
            _close_quietly(buffer)
            layout = Layout(*pickle.loads(payload))
            buffer = mmap.mmap(shared_fd, layout.size)
            views = layout.views(buffer)
            workspace = Workspace()
            continue
        work = _helper_forward if kind == b"P" else _helper_batch
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                loss = work(layout, views, _BATCH.unpack(payload), workspace)
        except BaseException:  # reported to the training process, which raises
            _send(to_main, b"E", traceback.format_exc().encode())
        else:
            views["loss"][0] = loss
            _send(to_main, b"D")
        answered += 1
        views["ctrl"][1] = answered  # after the message: see _poll


def _close_quietly(buffer):
    """Unmap ``buffer`` now, or once the last view of it goes."""
    if buffer is not None:
        try:
            buffer.close()
        except BufferError:
            pass


def _share_inputs(layout, views, n, steps, has_lengths):
    """The sequences of a share of ``n`` samples and their lengths (or None)."""
    values = views["values"][: n * steps * layout.n_features]
    lengths = views["lengths"][:n] if has_lengths else None
    return values.reshape(n, steps, layout.n_features), lengths


def _helper_batch(layout, views, header, workspace):
    n, steps, has_lengths, which_masks = header
    values, lengths = _share_inputs(layout, views, n, steps, has_lengths)
    y = views["y"][: n * layout.n_outputs].reshape(n, layout.n_outputs)
    masks = _mask_views(views["masks"], layout.mask_widths, n, which_masks)
    loss, grads = batch_loss_grad(
        values,
        y,
        views["weights"][:n],
        views["params"],
        lengths,
        masks,
        layout.loss,
        workspace,
    )
    for out, grad in zip(views["grads"], grads):
        np.copyto(out, grad)
    return loss


def _helper_forward(layout, views, header, workspace):
    """Prediction: the raw outputs of ``n`` samples, written where ``y`` goes."""
    n, steps, has_lengths, _ = header
    values, lengths = _share_inputs(layout, views, n, steps, has_lengths)
    out, _ = forward(
        values, views["params"], lengths, keep_cache=False, workspace=workspace
    )
    views["y"][: out.size].reshape(out.shape)[...] = out
    return 0.0


def _mask_views(flat, widths, n, which):
    """Per layer ``(mask_x, mask_h)`` of ``n`` samples in one flat array.

    Bit ``k`` of ``which`` says whether mask ``k`` (in the order of ``widths``) is
    there; None stands for a missing one, and the whole is None when none is.
    """
    if not which:
        return None
    arrays, start = [], 0
    for k, width in enumerate(widths):
        mask = flat[start : start + n * width].reshape(n, width)
        arrays.append(mask if which >> k & 1 else None)
        start += n * width
    return list(zip(arrays[0::2], arrays[1::2]))


# --------------------------------------------------------------------- cores
# The processes of a fit wait for each other by polling, never sleeping, so each
# needs a core of its own. A scheduler may place a process it wakes on the waker's
# core, and some (virtual machines packing their work onto few virtual cores) then
# leave both there for the whole fit: each gets half a core, in turns of a
# scheduler tick. So each process of a fit is kept on its own core: the training
# thread on the one it is running on, and each helper, while it sleeps between
# fits, on another. Moving a running process to an idle core is avoided: a packing
# scheduler may not wake that core for a long time (up to a second, measured).


def allowed_cpus():
    """The cores this process may run on, sorted; None where that is unknown."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))


def current_cpu():
    """The core the calling thread runs on (Linux), or None."""
    try:
        with open("/proc/thread-self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[36])  # field 39, "processor"; the list starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def core_plan(n_helpers):
    """The core of the training thread and of each helper, or None to leave all."""
    cpus, cpu = allowed_cpus(), current_cpu()
    if cpus is None or cpu not in cpus or len(cpus) < n_helpers + 1:
        return None
    others = [other for other in cpus if other != cpu]
    return cpu, others[:n_helpers]


# ------------------------------------------------------ the training process
class HelperError(RuntimeError):
    """A helper process failed or stopped."""


class _Helper:
    """One helper process and the shared file of the fit it serves."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(dir=_shared_dir())
        to_helper, from_helper = os.pipe(), os.pipe()
        package = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"  # one core per process
        fds = (to_helper[0], from_helper[1], self.file.fileno())
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), package]
                + [str(fd) for fd in fds],
                pass_fds=fds,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in to_helper + from_helper:
                os.close(fd)
            self.file.close()
            raise
        os.close(to_helper[0])
        os.close(from_helper[1])
        self.to_helper, self.from_helper = to_helper[1], from_helper[0]
        self.buffer = self.views = None
        self.ready = False
        self.messages = self.batches = 0  # sent to the helper (see _helper_main)
        self.busy = False  # a share was sent and its result not read

    def wait_ready(self):
        if not self.ready:
            kind, _ = self._receive()
            if kind != b"R":
                raise HelperError(f"unexpected message {kind!r} from a helper")
            self.ready = True

    def setup(self, layout, cpu=None):
        """Size and map the shared file for a fit, and tell the helper.

        With ``cpu``, the helper is kept on that core (set while it sleeps).
        """
        if cpu is not None and os.sched_getaffinity(self.process.pid) != {cpu}:
            os.sched_setaffinity(self.process.pid, {cpu})
        self._unmap()
        _reserve(self.file.fileno(), layout.size)
        self.buffer = mmap.mmap(self.file.fileno(), layout.size)
        self.views = layout.views(self.buffer)
        self._send(b"S", pickle.dumps(layout.args))

    def submit(self, header, kind=b"B"):
        """Start the share already copied into the shared file (``kind`` ``B``
        for its loss and gradients, ``P`` for its raw outputs)."""
        self.busy = True
        self.batches += 1
        self._send(kind, _BATCH.pack(*header))

    def _send(self, kind, payload):
        try:
            _send(self.to_helper, kind, payload)
        except OSError as exc:  # BrokenPipeError when it has exited
            self.process.poll()
            raise HelperError(
                f"the helper process cannot be reached ({exc}); its exit code is "
                f"{self.process.returncode}"
            ) from None
        self.messages += 1
        self.views["ctrl"][0] = self.messages  # after the message: see _poll

    def result(self):
        """The helper's loss; its gradients are in ``views["grads"]``."""
        _poll(self.views["ctrl"][1:], self.batches, _SPIN_SECONDS)
        kind, payload = self._receive()
        self.busy = False
        if kind == b"E":
            raise HelperError(payload.decode(errors="replace"))
        return float(self.views["loss"][0])

    def _receive(self):
        while not select.select([self.from_helper], [], [], _CHECK_SECONDS)[0]:
            if self.process.poll() is not None:
                break
        try:
            return _receive(self.from_helper)
        except EOFError:
            self.process.wait()
            raise HelperError(
                f"the helper process exited with code {self.process.returncode}"
            ) from None

    def _unmap(self):
        self.views = None
        _close_quietly(self.buffer)
        self.buffer = None

    def finish(self):
        """After a fit: the helper drops its arrays, the shared file shrinks to
        the page of counters (the helper keeps polling it for a moment)."""
        self._send(b"F", b"")
        self._unmap()
        os.ftruncate(self.file.fileno(), mmap.PAGESIZE)

    def alive(self):
        return self.process.poll() is None

    def close(self):
        for fd in (self.to_helper, self.from_helper):
            try:
                os.close(fd)
            except OSError:
                pass
        self._unmap()
        self.file.close()
        try:
            self.process.wait(timeout=1.0)  # it exits when its pipe closes
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _reserve(fd, size):
    """Size the shared file, its memory reserved now where the system can.

    A file in a full /dev/shm (64 MiB by default in a Docker container) can be
    extended but not written: the first write beyond the space kills the process
    (SIGBUS). Reserving the space turns that into an OSError (no space left),
    after which the fit trains alone.
    """
    os.ftruncate(fd, size)
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)


def _shared_dir():
    """A directory backed by memory where there is one (Linux), else the default."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


_helpers = []
_helpers_pid = None
_helpers_lock = threading.Lock()
_start_failed = False  # once helpers failed to start, this process trains alone


def _close_helpers():
    if _helpers_pid != os.getpid():  # a forked child: the helpers are its parent's
        return
    while _helpers:
        _helpers.pop().close()


atexit.register(_close_helpers)


def _get_helpers(n):
    """``n`` live helper processes of this process, started if needed."""
    global _helpers_pid, _start_failed
    if _helpers_pid != os.getpid():  # a forked child must not use its parent's
        _helpers.clear()
        _helpers_pid = os.getpid()
    for helper in [helper for helper in _helpers if not helper.alive()]:
        _helpers.remove(helper)
        helper.close()
    try:
        while len(_helpers) < n:
            _helpers.append(_Helper())
        for helper in _helpers[:n]:
            helper.wait_ready()
    except (OSError, HelperError):
        _start_failed = True  # say it once; this process goes on alone
        raise
    return _helpers[:n]


class HelperPool:
    """The helpers of one fit, and how a batch is cut into shares."""

    def __init__(self, helpers, layout):
        self.helpers = helpers
        self.layout = layout
        self.n_shares = len(helpers) + 1
        self.failed = False  # set after a HelperError: the fit goes on alone
        # A core for each process (see "cores" above).
        plan = core_plan(len(helpers))
        self.cpu = None if plan is None else plan[0]
        self._cpus = None  # the training thread's cores before the fit
        for k, helper in enumerate(helpers):
            helper.setup(layout, None if plan is None else plan[1][k])

    def __enter__(self):
        """Keep the calling (training) thread on its core until :meth:`close`."""
        if self.cpu is not None:
            self._cpus = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})
        return self

    def __exit__(self, *exc_info):
        self.close()

    @contextmanager
    def unpinned(self):
        """Let the training thread use all its cores meanwhile (for prediction)."""
        if self._cpus is None:
            yield
            return
        os.sched_setaffinity(0, self._cpus)
        try:
            yield
        finally:
            os.sched_setaffinity(0, {self.cpu})

    def loss_grad(self, batch, y, weights, params, masks, loss, workspace):
        """:func:`batch_loss_grad` of a whole batch, its shares computed at once.

        ``batch`` is the batch's :class:`Sequences`, ``weights`` its sample weights
        divided by their sum. Raises :class:`HelperError` if a helper fails.
        """
        shares = self.shares(len(y))
        if shares is None:
            return batch_loss_grad(
                batch.values, y, weights, params, batch.lengths, masks, loss, workspace
            )
        parts = []
        for idx in shares:
            share = batch.take(idx)
            share_masks = mask_rows(masks, idx)
            parts.append(
                (share.values, share.lengths, y[idx], weights[idx], share_masks)
            )
        for helper, part in zip(self.helpers, parts[1:]):
            self.submit(helper, *part, params)
        values, lengths, y_share, w_share, share_masks = parts[0]
        loss_value, grads = batch_loss_grad(
            values, y_share, w_share, params, lengths, share_masks, loss, workspace
        )
        for helper in self.helpers:
            loss_value += helper.result()
            for grad, other in zip(grads, helper.views["grads"]):
                grad += other
        return loss_value, grads

    def shares(self, n_samples):
        """The positions in a batch of each share, or None to keep it whole."""
        if self.failed or n_samples < self.n_shares * MIN_SHARE:
            return None
        # Interleaved, so that the shares of a batch sorted by length are alike.
        return [np.arange(k, n_samples, self.n_shares) for k in range(self.n_shares)]

    def forward(self, X, params, batches, out, workspace):
        """Raw outputs of the samples of :class:`Sequences` ``X`` into ``out``.

        ``batches`` are index arrays or slices (whose samples are not copied);
        each round, every process takes one.
        """
        for helper in self.helpers:
            self._copy_params(helper, params)
        for first in range(0, len(batches), self.n_shares):
            running = []
            for helper, idx in zip(self.helpers, batches[first + 1 :]):
                part = X.take(idx)
                self._copy_share(helper, part.values, part.lengths)
                helper.submit(
                    (len(part), part.values.shape[1], part.lengths is not None, 0), b"P"
                )
                running.append((helper, idx, len(part)))
            idx = batches[first]
            part = X.take(idx)
            out[idx], _ = forward(
                part.values, params, part.lengths, keep_cache=False, workspace=workspace
            )
            for helper, idx, n in running:
                helper.result()
                out[idx] = helper.views["y"][: n * out.shape[1]].reshape(n, -1)
        return out

    @staticmethod
    def _copy_params(helper, params):
        for slot, param in zip(helper.views["params"], params):
            np.copyto(slot, param)

    @staticmethod
    def _copy_share(helper, values, lengths):
        views = helper.views
        np.copyto(views["values"][: values.size].reshape(values.shape), values)
        if lengths is not None:
            views["lengths"][: len(lengths)] = lengths

    def submit(self, helper, values, lengths, y, weights, masks, params):
        """Copy a share and the parameters into a helper's file, and start it."""
        layout, views = self.layout, helper.views
        n, steps = values.shape[:2]
        self._copy_share(helper, values, lengths)
        views["y"][: y.size].reshape(y.shape)[...] = y
        views["weights"][:n] = weights
        which = 0
        if masks is not None:
            flat = [mask for pair in masks for mask in pair]
            which = sum(1 << k for k, mask in enumerate(flat) if mask is not None)
            slots = _mask_views(views["masks"], layout.mask_widths, n, which)
            for mask, slot in zip(flat, [m for pair in slots for m in pair]):
                if mask is not None:
                    slot[...] = mask
        self._copy_params(helper, params)
        helper.submit((n, steps, lengths is not None, which))

    def close(self):
        """Unpin the training thread, give the helpers back for the next fit and
        stop any left with a share under way (after an exception)."""
        if self._cpus is not None:
            os.sched_setaffinity(0, self._cpus)
            self._cpus = None
        try:
            for helper in self.helpers:
                if helper.busy:
                    _helpers.remove(helper)
                    helper.close()
                else:
                    try:
                        helper.finish()
                    except HelperError:  # it has exited; replaced next time
                        pass
        finally:
            _helpers_lock.release()


def n_processes(batch_size, n_steps, layer_sizes, n_features, n_threads, min_macs=None):
    """How many processes should share the batches of a fit (or a prediction).

    As many as BLAS may use threads (``n_threads``) and the process has cores,
    when the forward matrix products of a batch have at least ``min_macs``
    multiply-adds (default :data:`MIN_BATCH_MACS`), and no more than leave each a
    share of :data:`MIN_SHARE` samples and ``min_macs / 2`` multiply-adds. POSIX
    systems only, and not in a frozen application. Measured on two cores only.
    """
    min_macs = MIN_BATCH_MACS if min_macs is None else min_macs
    if n_threads < 2 or os.name != "posix" or not sys.executable:
        return 1
    if getattr(sys, "frozen", False):  # sys.executable is the application
        return 1
    cpus = allowed_cpus()
    n_cores = (os.cpu_count() or 1) if cpus is None else len(cpus)
    macs, inputs = 0, n_features
    for hidden in layer_sizes:
        macs += 4 * hidden * (hidden + inputs + 1)
        inputs = hidden
    macs *= batch_size * n_steps
    if macs < min_macs:
        return 1
    # Each share at least MIN_SHARE samples and half the threshold's work: on many
    # cores, small shares would spend their time in per-call overheads.
    most = max(2, int(2 * macs // min_macs)) if min_macs > 0 else n_cores
    return max(1, min(n_threads, n_cores, batch_size // MIN_SHARE, most))


def helper_pool(n, layout):
    """A :class:`HelperPool` with ``n - 1`` helpers, or None to train alone.

    None as well when another fit of this process (in another thread) has the
    helpers, or when helpers could not start before in this process. Use the pool
    as a context manager: it closes after the fit. Raises :class:`HelperError` or
    ``OSError`` when the helpers cannot start (or one has just died).
    """
    if n < 2 or _start_failed or not _helpers_lock.acquire(blocking=False):
        return None
    try:
        return HelperPool(_get_helpers(n - 1), layout)
    except BaseException:
        _helpers_lock.release()
        raise
