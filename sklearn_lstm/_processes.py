"""The process backend: helper processes that compute shares (``n_jobs > 1``).

Why processes. A step of the LSTM is a dozen NumPy calls of a few microseconds;
BLAS spreads the matrix products over the cores, but the element-wise work runs
on one, and Python threads cannot share it (each call hands the GIL over, which
costs about as much as the call). Separate processes have no GIL to share.

How. :class:`ProcessBackend` cuts the work as :class:`~._backend.SerialBackend`
does, computes the first share of each round here and hands the others to
helpers, and adds the results in the order of the shares. A helper computes
exactly what this process would (the same code and NumPy, BLAS on one thread), so
whenever a helper cannot run (it does not start, dies, stops answering, or another
thread's fit has the helpers) this process computes its share instead, with the
same result.

The helpers:

* start only when an estimator with ``n_jobs > 1`` fits or predicts enough work,
  as many as the shares, the cores this process may use and BLAS's thread limit
  allow (so joblib's workers do not oversubscribe the machine);
* are fresh interpreters started isolated (``python -I``: nothing from the current
  directory, ``PYTHONPATH`` or the user's site runs), in a session of their own
  (Ctrl-C is for this process), that run the source code this process loaded,
  sent to them when they start, and only with the same NumPy and BLAS kernels;
* exchange arrays through a memory file of their own and short messages through a
  socket written with ``MSG_NOSIGNAL`` (a helper's death never raises SIGPIPE);
  every wait for one is bounded;
* are never pinned to cores, and never change this process's affinity; a wait
  first polls a count in the memory file for as long as waking from sleep has
  typically cost the waiting process (the memory file holds when the last share
  and the last answer were sent, so that a process woken by one learns how late
  it woke; see :data:`WAKE_FACTOR`), a share's time and 20 ms at most, then
  sleeps on the socket; it does not poll at all while more processes are ready
  to run than there are cores (the one waited for may be among them; see
  :data:`BUSY_LOOKS`);
* get no shares while other programs keep busy the cores they would need (see
  :data:`CROWDED_SECONDS`): each mini-batch would wait for a helper that waits
  for a core, so this process computes those shares itself, one after the
  other, until a core is free again;
* exit when this process closes their socket (or dies), and by themselves after
  :data:`IDLE_SECONDS` without work; on Linux, each has a thread of this process
  that waits for it and reaps it as soon as it exits (no zombie stays until the
  next session), and is killed, when it must be, through a pidfd, which never
  reaches another process that took its pid;
* are ended when an exception this process did not expect (Ctrl-C's
  KeyboardInterrupt, or another that a signal handler raises) interrupts an
  exchange with them: what they have read or sent is then unknown, and a reply
  left unread would answer the next question.

As in :class:`~._backend.SerialBackend`, BLAS in this process runs on one thread
during a session (``_backend.blas_on_one_thread``).
"""

import _thread
import atexit
import collections
import hashlib
import math
import mmap
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ._backend import OPS, SerialBackend, blas_threads, usable_cores
from ._engine import Workspace, blas_core
from ._warnings import warn_user

__all__ = ["HelperRuntime", "ProcessBackend", "RUNTIME"]

#: Seconds a helper may take to start and report ready.
START_SECONDS = 10.0

#: Seconds a ready helper may take to answer the start of a session: it answers
#: at once unless it is stopped or hung.
SESSION_SECONDS = 1.0

#: A helper that has not answered a share within this many times the longest
#: share this process computed in the same session, and at least
#: :data:`REPLY_FLOOR_SECONDS`, is given up.
REPLY_FACTOR = 10.0
REPLY_FLOOR_SECONDS = 1.0

#: A waiting process polls (see _COUNTS) before it sleeps on its socket, for
#: WAKE_FACTOR times how late it typically wakes after sleeping (the median of
#: its last WAKE_SAMPLES wake-ups, see _Wakes), and at most POLL_FRACTION of a
#: share's time and MAX_POLL_SECONDS. Polling as long as a late wake-up would
#: lose, then sleeping, costs at most twice what the better of the two would
#: have cost had the wait's end been known (time lost waking late and CPU time
#: spent polling counted alike). Waking costs from tens of microseconds to
#: milliseconds on the virtual machines measured. On one (AVX-512), fixed polls
#: of 1 ms left n_jobs=-1 no faster than one process on W2 of bench_speed.py, and
#: 5 ms lost about 10% on W3 against 20 ms. On another (AVX2), where waking takes
#: about a tenth of a millisecond, polls of up to 20 ms took 1.0 to 1.25 times the
#: CPU time of not polling at all, in the same time within the noise.
WAKE_FACTOR = 1.0
WAKE_SAMPLES = 15
POLL_FRACTION = 1.0
MAX_POLL_SECONDS = 0.02

#: A helper with no fit or prediction to serve exits after this many seconds.
IDLE_SECONDS = 45.0

#: Helpers take part in a fit when each share of a mini-batch has at least this
#: many multiply-adds in its forward matrix products (about half a millisecond),
#: and in a prediction when all of it has at least MIN_PREDICT_MACS: below, the
#: hand-over costs a noticeable part of the work.
MIN_SHARE_MACS = 2**22
MIN_PREDICT_MACS = 2**26

_HEADER = struct.Struct("<cQ")  # message kind, payload length
_VALUE = struct.Struct("<d?")  # a share's float result; whether its arrays moved
_ALIGN = 64  # arrays in the memory file start on their own cache line
# The memory file starts with two counts: the shares sent to the helper and the
# answers it sent back in this session. A waiting process polls them (no system
# call) before it reads its socket; the socket, not the counts, orders the
# memory accesses. Then two times (float64, time.monotonic(), which all processes
# share on the systems helpers run on): when the last share and the last answer
# were sent, written before their messages, so that a process that slept learns
# how late it woke (_Wakes).
_COUNTS = 64

# The modules a helper runs, in the order they import each other. Their sources
# are read when this module is imported (with the package), so that a helper runs
# the code of this process even after the files change on disk (an upgrade).
_MODULES = ("_warnings", "_network", "_engine", "_losses", "_objective", "_backend",
            "_processes")


def _read_sources():
    directory = os.path.dirname(os.path.abspath(__file__))
    sources = []
    try:
        for name in _MODULES:
            path = os.path.join(directory, name + ".py")
            with open(path, encoding="utf-8") as file:
                sources.append((name, path, file.read()))
    except OSError:  # e.g. installed as a zip: no helpers
        return None
    return sources


_SOURCES = _read_sources() if __package__ else None


def _digest(sources):
    digest = hashlib.sha256()
    for _, _, source in sources:
        digest.update(source.encode())
    return digest.hexdigest()


# ------------------------------------------------------------------ messages
def _send(sock, kind, payload=b""):
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload, socket.MSG_NOSIGNAL)


def _poll(counts, k, value, seconds):
    """Poll until ``counts[k] >= value`` or ``seconds`` have passed; not at all
    when more processes are ready to run than there are cores, as the one
    waited for may be among them and would lose the core we poll on."""
    if seconds <= 0 or not _cores_to_spare():
        return
    end = time.monotonic() + seconds
    while counts[k] < value and time.monotonic() < end:
        pass


class _Wakes:
    """How late this process wakes after sleeping on a socket: the median of the
    last :data:`WAKE_SAMPLES` times from a message's sending to this process
    running again, among messages sent while it slept on an uncrowded machine."""

    def __init__(self):
        self.samples = collections.deque(maxlen=WAKE_SAMPLES)
        self.typical = 0.0  # none seen yet: the first wait sleeps, and measures

    def see(self, sent, asleep, crowded=False):
        """A message sent at ``sent`` woke this process, asleep since ``asleep``
        (both ``time.monotonic()``). One sent before it slept tells nothing, nor
        one that woke it while the machine was ``crowded`` (more threads ready to
        run than cores): that wake-up measures the crowd, which waits do not poll
        through anyway, and would keep the polls long once it has gone."""
        if sent >= asleep and not crowded:
            self.samples.append(time.monotonic() - sent)
            self.typical = sorted(self.samples)[len(self.samples) // 2]

    def poll_seconds(self, share_seconds):
        """How long a wait polls before it sleeps, after shares of
        ``share_seconds`` (see :data:`WAKE_FACTOR`)."""
        return min(
            WAKE_FACTOR * self.typical, POLL_FRACTION * share_seconds, MAX_POLL_SECONDS
        )


_wakes = _Wakes()  # this process's


def _open_loadavg():
    try:
        return os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, AttributeError):  # not Linux
        return None


_LOADAVG = _open_loadavg()
_CORES = os.cpu_count() or 1  # the machine's, as the count it is compared with


#: Looks in a row that found more processes ready to run than cores before a
#: wait stops polling: kernel threads make a single look above now and then.
BUSY_LOOKS = 3

#: Helpers get no shares while the machine has had fewer free cores than they
#: need for at least this long (and BUSY_LOOKS looks in a row): kernel threads
#: (rcu_preempt, kdamond) take a core for a moment, in about one look in twenty
#: during a fit on the 2-core machine measured; a user's busy program for much
#: longer.
CROWDED_SECONDS = 0.1


class _Streak:
    """Looks at the machine in a row that found it crowded, and since when."""

    def __init__(self):
        self.looks = 0
        self.since = 0.0

    def see(self, crowded, seconds=0.0):
        """Record one look; whether the last :data:`BUSY_LOOKS` looks, over
        ``seconds`` at least, all found the machine crowded."""
        if not crowded:
            self.looks = 0
            return False
        now = time.monotonic()
        if not self.looks:
            self.since = now
        self.looks += 1
        return self.looks >= BUSY_LOOKS and now - self.since >= seconds


_busy = _Streak()  # more processes ready to run than cores (see _poll)


def _runnable():
    """How many threads of the whole machine are ready to run now, this one
    included (Linux's ``/proc/loadavg``, about 2 us), or None where that cannot
    be read."""
    if _LOADAVG is None:
        return None
    try:
        return int(os.pread(_LOADAVG, 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _crowded():
    """Whether more threads of the machine are ready to run than it has cores,
    at one look (False where that cannot be read)."""
    running = _runnable()
    return running is not None and running > _CORES


def _cores_to_spare():
    """False when the last :data:`BUSY_LOOKS` looks (this one included) found
    more processes ready to run on the machine than it has cores, this one
    included; True where that cannot be read."""
    return not _busy.see(_crowded())


def _read_exactly(sock, n, deadline=None):
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
                raise TimeoutError
        chunk = sock.recv(n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _receive(sock, deadline=None):
    """The next message; TimeoutError when none came by ``deadline``."""
    kind, length = _HEADER.unpack(_read_exactly(sock, _HEADER.size, deadline))
    return kind, _read_exactly(sock, length, deadline) if length else b""


# ------------------------------------------------- arrays in the memory file
class _Slot(NamedTuple):
    """Where an array lies in the memory file."""

    offset: int
    dtype: str
    shape: tuple


class _SessionNetwork:
    """Stands for the session's network in a message (sent once, at its start)."""


_SESSION_NETWORK = _SessionNetwork()


def _arrays_to_slots(obj, arrays, offset):
    """``obj`` with each ndarray replaced by a :class:`_Slot` from ``offset`` on;
    the arrays are appended to ``arrays``. Returns the new object and the end."""
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        slot = _Slot(offset, obj.dtype.str, obj.shape)
        return slot, offset + -(-obj.nbytes // _ALIGN) * _ALIGN
    if isinstance(obj, (list, tuple)):
        items = []
        for item in obj:
            item, offset = _arrays_to_slots(item, arrays, offset)
            items.append(item)
        if isinstance(obj, list):
            return items, offset
        return (type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)), offset
    return obj, offset


def _slots_to_arrays(obj, buffer):
    """The inverse of :func:`_arrays_to_slots`: views of ``buffer``."""
    if isinstance(obj, _Slot):
        dtype = np.dtype(obj.dtype)
        count = math.prod(obj.shape)
        return np.frombuffer(buffer, dtype, count, obj.offset).reshape(obj.shape)
    if isinstance(obj, (list, tuple)):
        items = [_slots_to_arrays(item, buffer) for item in obj]
        if isinstance(obj, list):
            return items
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return obj


class _Memory:
    """One side's mapping of a helper's memory file, grown as needed."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = None
        self.counts = None  # view of the counts at the start of the file
        self.times = None  # and of the times after them
        self.layout = None  # the slots, end and views of the last write(cache=True)

    @property
    def size(self):
        return 0 if self.buffer is None else len(self.buffer)

    def grow(self, size):
        """Make the file at least ``size`` bytes, its memory reserved now: a full
        tmpfs then raises OSError here instead of SIGBUS on the first write."""
        size = max(size, mmap.PAGESIZE)
        if os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self.fd, 0, size)
        self.map(size)

    def map(self, size):
        """Map ``size`` bytes of the file, if not mapped already."""
        if self.size != size:
            self.release()
            self.buffer = mmap.mmap(self.fd, size)
            self.counts = np.frombuffer(self.buffer, np.int64, 2, 0)
            self.times = np.frombuffer(self.buffer, np.float64, 2, 16)
        return self.buffer

    def release(self):
        """Unmap now, or once the last view of the mapping is gone."""
        self.layout = self.counts = self.times = None
        if self.buffer is not None:
            try:
                self.buffer.close()
            except BufferError:
                pass
            self.buffer = None

    def write(self, obj, offset=_COUNTS, cache=False):
        """Copy the arrays of ``obj`` into the file from ``offset`` on; returns
        ``obj`` with slots instead of arrays, where the copies end, and (with
        ``cache``) whether they lie as in the last such write."""
        arrays = []
        slots, end = _arrays_to_slots(obj, arrays, offset)
        if end > self.size:
            self.grow(end)  # a new mapping: no layout kept
        same = cache and self.layout is not None and self.layout[0] == slots
        if same:
            views = self.layout[2]
        else:
            views = []
            _flatten_views(_slots_to_arrays(slots, self.buffer), views)
            self.layout = (slots, end, views) if cache else None
        for view, array in zip(views, arrays):
            np.copyto(view, array)
        return slots, end, same


def _flatten_views(obj, out):
    if isinstance(obj, np.ndarray):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _flatten_views(item, out)


# ------------------------------------------------------------ helper process
# Runs as ``python -I -c _BOOT socket_fd file_fd``. It receives the package's
# sources and where NumPy lives, loads them as the package (without its
# __init__, so without scikit-learn) and reports NumPy's version, the digest of
# what it runs and the kernels of NumPy's BLAS (``_engine.blas_core``).
_BOOT = r"""
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
import hashlib, pickle, socket, struct, sys, traceback, types
sock = socket.socket(fileno=int(sys.argv[1]))
header = struct.Struct("<cQ")
def read(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
code = pickle.loads(read(header.unpack(read(header.size))[1]))
try:
    sys.path.append(code["numpy_dir"])
    import numpy
    package = types.ModuleType(code["package"])
    package.__path__ = []
    sys.modules[code["package"]] = package
    digest = hashlib.sha256()
    for name, path, source in code["modules"]:
        digest.update(source.encode())
        module = types.ModuleType(code["package"] + "." + name)
        module.__package__, module.__file__ = code["package"], path
        sys.modules[module.__name__] = module
        setattr(package, name, module)
        exec(compile(source, path, "exec"), module.__dict__)
    core = sys.modules[code["package"] + "._engine"].blas_core()
    kind, reply = b"R", pickle.dumps((numpy.__version__, digest.hexdigest(), core))
except BaseException:
    kind, reply = b"E", traceback.format_exc().encode()
sock.sendall(header.pack(kind, len(reply)) + reply, socket.MSG_NOSIGNAL)
if kind == b"R":
    module._helper_main(sock, int(sys.argv[2]), code["idle_seconds"])
"""


def _helper_main(sock, file_fd, idle_seconds):
    """The loop of a helper: one share per message, until the socket closes."""
    memory = _Memory(file_fd)
    workspace = network = None  # None between sessions
    last = [None, None, None]  # the last share's message, mapping and arguments
    seconds = 0.0  # how long the last share took
    received = answered = 0  # shares and answers of the session (see _COUNTS)
    while True:
        asleep = None  # since when it sleeps for the next share, if it does
        if workspace is None:
            if not select.select([sock], [], [], idle_seconds)[0]:
                return  # idle: the next session starts another helper
        elif memory.counts is not None:
            counts = memory.counts
            _poll(counts, 0, received + 1, _wakes.poll_seconds(seconds))
            if counts[0] <= received:
                asleep, times = time.monotonic(), memory.times
        try:
            kind, payload = _receive(sock)
        except (EOFError, OSError):  # this helper's training process has gone
            return
        if asleep is not None and kind == b"W":
            _wakes.see(times[0], asleep, _crowded())
        try:
            if kind == b"S":  # a session starts
                workspace, network = Workspace(), pickle.loads(payload)
                received = answered = 0
                _send(sock, b"A")
            elif kind == b"F":  # it ended: let its memory go
                workspace = network = None
                last[:] = [None, None, None]
                memory.release()
            elif kind == b"W":
                received += 1
                start = time.monotonic()
                reply = _serve(memory, workspace, network, payload, last)
                seconds = time.monotonic() - start
                if memory.times is not None:
                    memory.times[1] = time.monotonic()  # before the message
                _send(sock, *reply)
                answered += 1
                if memory.counts is not None:
                    memory.counts[1] = answered  # after the message: see _COUNTS
        except OSError:
            return


def _serve(memory, workspace, network, payload, last):
    """Compute one share; the reply's kind and payload.

    An empty ``payload`` means the arrays lie as in the last message, whose
    ``(message, buffer, arguments)`` are ``last``; it is updated in place.
    """
    try:
        if payload:
            last[:] = [pickle.loads(payload), None, None]
        op, slots, size, end = last[0]
        buffer = memory.map(size)
        if last[1] is not buffer:  # a new message or a new mapping: new views
            last[1:] = [buffer, [network if isinstance(arg, _SessionNetwork) else arg
                                 for arg in _slots_to_arrays(slots, buffer)]]
        with np.errstate(over="ignore", invalid="ignore"):
            value, arrays = OPS[op](*last[2], workspace)
        slots, _, same = memory.write(arrays, end, cache=True)
        # Arrays that lie as in the last answer need no new description.
        layout = b"" if same else pickle.dumps((slots, memory.size))
        return b"D", _VALUE.pack(value, not same) + layout
    except Exception:
        return b"E", traceback.format_exc().encode()


# ------------------------------------------------------ the training process
class HelperLost(RuntimeError):
    """A helper cannot serve any more (it exited, failed or stopped answering)."""


class _Helper:
    """One helper process, its socket and its memory file."""

    def __init__(self, runtime):
        # Nothing to close until start: a helper dropped before is no leak.
        self.runtime = runtime
        self.file = self.memory = None  # the memory file, once started
        self.sock = None  # this process's end of the socket, once started
        self.process = None  # the Popen, once started
        self._exit = None  # its exit code, once reaped ("unknown" if lost)
        self._stat = -1  # descriptor of /proc/<pid>/stat, -1 if none
        self._pidfd = -1  # a pidfd of the helper, -1 if none
        self._watcher = None  # the identifier of the thread that reaps it
        self.ending = False  # being ended (close), maybe interrupted part way
        self.ready = False
        self.network = None  # the network of the session under way
        self.sent = 0  # shares sent in this session (see _COUNTS)
        self._answer = None  # the slots, mapping and views of the last answer
        self.busy = False  # a share was sent and its result not read
        self._sent_at = 0.0

    def start(self):
        """Start the helper's process and send it the code it runs (it reports
        ready to :meth:`wait_ready`). The runtime lists the helper before this
        call: if it is interrupted, :meth:`close` ends what there is of it."""
        runtime = self.runtime
        self.file = _memory_file()
        self.memory = _Memory(self.file.fileno())
        self.sock, theirs = socket.socketpair()
        env = dict(os.environ)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"  # one core per process
        fds = (theirs.fileno(), self.file.fileno())
        # Made in two steps: should Popen be interrupted while it waits for the
        # new process to run the interpreter, that process is still ours to end.
        self.process = subprocess.Popen.__new__(subprocess.Popen)
        try:
            self.process.__init__(
                [runtime.executable, "-I", "-c", _BOOT, *map(str, fds)],
                pass_fds=fds,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        # Opened while the helper cannot have been reaped (nothing waits for it
        # yet): they stay its own even once its pid is free again.
        self._stat = _open_stat(self.pid)
        self._pidfd = _open_pidfd(self.pid)
        # Where it can be killed through its pidfd, a thread waits for it and
        # reaps it as soon as it exits (when idle, say), instead of leaving a
        # zombie until this process's next session. Elsewhere its pid must stay
        # its own until it is seen to exit, so only the thread that ends it
        # reaps it (exit_code).
        self._watcher = _watch(self) if self._pidfd >= 0 else None
        code = {
            "package": __package__,
            "modules": _SOURCES,
            "numpy_dir": os.path.dirname(os.path.dirname(np.__file__)),
            "idle_seconds": runtime.idle_seconds,
        }
        try:
            # Bounded: a helper that never reads cannot hold up this process.
            self.sock.settimeout(runtime.start_seconds)
            _send(self.sock, b"C", pickle.dumps(code))
        except OSError:
            pass  # it exited at once or does not read: wait_ready says why
        finally:
            self.sock.settimeout(None)

    @property
    def pid(self):
        """The helper's process id, None before its process started."""
        return getattr(self.process, "pid", None)

    def running(self):
        """Whether the helper is ready to run now (computing or polling), as
        Linux's ``/proc/<pid>/stat`` says; False where that cannot be read."""
        if self._stat < 0:
            return False
        try:
            return os.pread(self._stat, 512, 0).rsplit(b")", 1)[1][1:2] == b"R"
        except (OSError, IndexError):
            return False

    def wait_ready(self, deadline):
        """Wait for the helper's report; raise HelperLost if it is not right."""
        if self.ready:
            return
        kind, payload = self._receive(deadline, "report ready")
        if kind == b"E":
            raise HelperLost(
                "could not load the package's engine:\n"
                + payload.decode(errors="replace")
            )
        numpy_version, digest, core = pickle.loads(payload)
        if numpy_version != np.__version__:
            raise HelperLost(
                f"loads NumPy {numpy_version} while this process runs NumPy "
                f"{np.__version__} (upgraded since this process started?)"
            )
        if digest != _digest(_SOURCES):
            raise HelperLost("runs code that differs from this process's")
        if core != blas_core():
            # Other kernels round otherwise: its shares would not be this
            # process's bit for bit.
            raise HelperLost(
                f"runs NumPy's OpenBLAS on {core or 'no'} kernels while this "
                f"process runs it on {blas_core() or 'no'} kernels "
                "(OPENBLAS_CORETYPE changed since this process started?)"
            )
        self.ready = True

    def start_session(self, deadline, network):
        self.network = network
        self.sent = 0
        _send(self.sock, b"S", pickle.dumps(network))
        kind, _ = self._receive(deadline, "answer the start of a session")
        if kind != b"A":
            raise HelperLost(f"answered {kind!r} to the start of a session")

    def submit(self, task):
        """Copy the share's arrays into the memory file, and start it."""
        op, args = task
        # The network went with the session's start: not pickled for every share.
        args = [_SESSION_NETWORK if arg is self.network else arg for arg in args]
        # Busy from here: a share half sent (an interruption) ends the helper.
        self.busy = True
        try:
            slots, end, same = self.memory.write((op, args), cache=True)
            # Arrays that lie as in the last share need no new description.
            message = b"" if same else pickle.dumps(
                (op, slots[1], self.memory.size, end)
            )
            self.memory.times[0] = time.monotonic()  # before the message
            _send(self.sock, b"W", message)
            self.sent += 1
            self.memory.counts[0] = self.sent  # after the message: see _COUNTS
        except OSError as exc:
            raise HelperLost(f"cannot be sent a share ({exc})") from None
        self._sent_at = time.monotonic()

    def result(self, wait, poll=0.0):
        """The share's result, with views of the memory file for its arrays."""
        deadline = self._sent_at + wait
        counts, times = self.memory.counts, self.memory.times
        _poll(counts, 1, self.sent, poll)
        asleep = time.monotonic() if counts[1] < self.sent else None
        kind, payload = self._receive(deadline, "answer a share")
        if asleep is not None:
            _wakes.see(times[1], asleep, _crowded())
        self.busy = False
        if kind == b"E":
            raise HelperLost(
                "failed on a share:\n" + payload.decode(errors="replace")
            )
        value, moved = _VALUE.unpack_from(payload)
        if not moved and self._answer is None:
            raise HelperLost("answered without saying where its arrays are")
        if moved:
            slots, size = pickle.loads(payload[_VALUE.size :])
            self._answer = [slots, self.memory.map(size), None]
        slots, buffer, arrays = self._answer
        if arrays is None or buffer is not self.memory.buffer:
            buffer = self.memory.buffer
            self._answer = [slots, buffer, _slots_to_arrays(slots, buffer)]
        return value, self._answer[2]

    def _receive(self, deadline, doing):
        try:
            return _receive(self.sock, deadline)
        except TimeoutError:
            share = doing == "answer a share"
            seconds = max(0.0, deadline - self._sent_at) if share else 0
            raise HelperLost(
                f"did not {doing} in time"
                + (f" ({seconds:.1f} s)" if seconds else "")
            ) from None
        except (EOFError, OSError):
            code = self.wait_exit(1.0)
            raise HelperLost(
                f"exited (code {'unknown' if code is None else code})"
            ) from None

    def finish(self):
        """After a session: the helper lets its memory go, and so does the file."""
        self._answer = None
        self.memory.release()
        _send(self.sock, b"F")
        # One page stays, with the counts zeroed: the helper may be polling them.
        os.ftruncate(self.file.fileno(), mmap.PAGESIZE)
        os.pwrite(self.file.fileno(), bytes(_COUNTS), 0)

    def exit_code(self):
        """The helper's exit code once it has exited (and was reaped), else None.

        Without a watcher thread, it is reaped here, without blocking and
        without Popen's lock, which an interruption (Ctrl-C) just after Popen
        took it would leave held, so that a later ``Popen.wait`` would block for
        ever.
        """
        if self.pid is None:  # never started (an interruption, or Popen failed)
            return "not started"
        if self._exit is None and self._watcher is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by a call that was interrupted
                pid, status = self.pid, None
            if pid:
                self._reaped(status)
        return self._exit

    def _reaped(self, status):
        """Note the exit ``status`` of the reaped helper (None if unknown: it
        was reaped elsewhere, maybe by :meth:`exit_code` when an interruption
        left the watcher thread unknown)."""
        # Popen must neither reap it nor warn that it still runs.
        if status is None:
            if self._exit is None:
                self.process.returncode, self._exit = -1, "unknown"
        else:
            code = os.waitstatus_to_exitcode(status)
            self.process.returncode, self._exit = code, code

    def alive(self):
        return self.exit_code() is None

    def wait_exit(self, seconds):
        """The exit code, once the helper has exited within ``seconds``."""
        deadline = time.monotonic() + seconds
        pause = 1e-4
        while self.exit_code() is None:
            if time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(2 * pause, 0.01)
        return self.exit_code()

    def _kill(self):
        if self._pidfd >= 0:
            # Never another process, even if the watcher has just reaped it.
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # reaped already
        elif self.exit_code() is None:
            # Not reaped, its pid is still its own (a zombie at worst).
            os.kill(self.pid, signal.SIGKILL)

    def _close_files(self):
        """Close this process's socket, memory file and /proc descriptor of the
        helper; safe to repeat."""
        if self.sock is not None:
            self.sock.close()
        if self.memory is not None:
            self.memory.release()
        if self.file is not None:
            self.file.close()
        # Forgotten before it is closed: never closed twice (another file may
        # have its number by then).
        fd, self._stat = self._stat, -1
        _close_fd(fd)

    def _close_pidfd(self):
        """Close the helper's pidfd, once it has exited (it can no longer be
        killed) or in a forked child; safe to repeat."""
        fd, self._pidfd = self._pidfd, -1  # forgotten first, as in _close_files
        _close_fd(fd)

    def disown(self):
        """In a child forked from this process: close the child's copies of the
        socket and the memory file, and leave the helper to the parent, which
        started it and will end it."""
        self._close_files()
        self._close_pidfd()
        if self.process is not None:
            # Not the child's process: its Popen must neither wait for it nor
            # warn that it is still running when the child lets go of it.
            self.process._child_created = False

    def close(self, kill=False):
        """End the helper: closing its socket makes it exit, within a second or
        it is killed; ``kill`` kills it first (a stopped or hung helper).
        Returns whether it exited (and was reaped). Safe to repeat after an
        interruption part way."""
        self.ending = True
        if kill:
            self._kill()
        self._close_files()
        if self.wait_exit(1.0) is None and not kill:
            self._kill()
            self.wait_exit(1.0)
        if self.exit_code() is None:
            return False
        self._close_pidfd()
        return True


def _open_stat(pid):
    """A descriptor of ``/proc/<pid>/stat`` (see :meth:`_Helper.running`), or -1
    where there is none."""
    try:
        return os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def _open_pidfd(pid):
    """A pidfd of process ``pid`` (Linux 5.3 and later), or -1: a descriptor
    that only ever signals that process, even after its pid is reused."""
    if not hasattr(os, "pidfd_open") or not hasattr(signal, "pidfd_send_signal"):
        return -1
    try:
        return os.pidfd_open(pid)
    except OSError:
        return -1


def _close_fd(fd):
    """Close the descriptor ``fd`` unless it is negative (none)."""
    if fd >= 0:
        os.close(fd)


def _watch(helper):
    """Start a thread that reaps ``helper`` as soon as it exits; the thread's
    identifier, or None if no thread could start (then
    :meth:`_Helper.exit_code` reaps it)."""
    pid = helper.pid
    # A weak reference: the thread keeps no helper, nor its files, alive.
    ref = weakref.ref(helper)

    def reap():
        # Blocks in the system call, holding neither the GIL nor any lock.
        try:
            status = os.waitpid(pid, 0)[1]
        except ChildProcessError:  # reaped by the program (os.wait())
            status = None
        helper = ref()
        if helper is not None:
            helper._reaped(status)

    # A bare thread: threading.Thread.start keeps a registry that a signal
    # handler raising at the wrong moment leaves inconsistent (the thread then
    # dies with a KeyError printed on stderr).
    try:
        return _thread.start_new_thread(reap, ())
    except RuntimeError:  # no thread can start (a limit on threads)
        return None


def _memory_file():
    """An anonymous file in memory that a child process can map."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("sklearn_lstm", os.MFD_CLOEXEC)
        return open(fd, "r+b", buffering=0)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return tempfile.TemporaryFile(dir=shm)


class HelperRuntime:
    """The helper processes of this process, kept from one session to the next.

    Parameters
    ----------
    executable : str, default=sys.executable
        The Python interpreter the helpers run.
    start_seconds, idle_seconds : float
        See :data:`START_SECONDS` and :data:`IDLE_SECONDS`.
    crowded_seconds : float, default=CROWDED_SECONDS
        How long the machine must have too few free cores for the helpers before
        their shares are computed in this process instead
        (:meth:`ProcessBackend.free_helpers`); ``math.inf`` never: the helpers
        take part however busy the machine is (with the same results, only
        slower), as tests of the helpers' work need on a shared machine.
    """

    def __init__(self, executable=None, start_seconds=START_SECONDS,
                 idle_seconds=IDLE_SECONDS, crowded_seconds=CROWDED_SECONDS):
        self.executable = executable or sys.executable
        self.start_seconds = start_seconds
        self.idle_seconds = idle_seconds
        self._helpers = []
        self._exiting = []  # ended helpers not seen to exit yet (see _drop)
        self._pid = os.getpid()
        self.start_failed = None  # why helpers could not start, once they could not
        self.replaced = []  # why helpers were replaced since the last look
        # {"owner": the thread whose session has the helpers} (see acquire),
        # and the helpers of that session.
        self._claim, self._session = {}, []
        # An exchange with the helpers was interrupted (Ctrl-C) before they were
        # known to be in step: they are ended before the next session.
        self._unsettled = False
        self.crowded_seconds = crowded_seconds
        # Looks that found too few free cores for the helpers (free_helpers).
        self.crowded = _Streak()

    def pids(self):
        """Process ids of the helpers (for tests and diagnostics)."""
        return [helper.pid for helper in self._helpers]

    def available(self):
        """Whether helpers may run at all in this process."""
        return (
            self.start_failed is None
            and _SOURCES is not None
            and os.name == "posix"
            and bool(self.executable)
            and not getattr(sys, "frozen", False)  # sys.executable is the app
        )

    def _after_fork(self):
        # A forked child must not touch its parent's helpers (nor wait for a
        # claim another thread of the parent held).
        for helper in self._helpers + self._exiting:
            helper.disown()
        self._helpers, self._exiting = [], []
        self._claim, self._session, self._unsettled = {}, [], False
        self._pid = os.getpid()

    def acquire(self, n, network):
        """``n`` helpers ready for a session of ``network``, or None when another
        thread's session has them. Raises HelperLost when they cannot start
        (which happens once per process: later sessions compute alone).
        :meth:`release` ends the session, in the same thread, whatever came of
        this call (sessions never nest in a thread)."""
        me = threading.get_ident()
        # Claimed in one step (dict.setdefault holds the GIL): an interruption
        # cannot land between taking the claim and noting whose it is.
        if self._claim.setdefault("owner", me) != me:
            return None
        try:
            if self._unsettled or self._session:
                # A session of this thread was interrupted before its helpers
                # were known to be in step, or before it ended.
                self.close_all(kill=True)
                self._session = []
            self._unsettled = True  # until they are ready for the session
            helpers = self._ready_helpers(n, network)
            self._session, self._unsettled = helpers, False
            return helpers
        except HelperLost:
            self._unsettled = False  # none is left to end
            raise
        except BaseException:
            # Interrupted part way through a start or a handshake: what the
            # helpers have read or sent is unknown. If ending them here is
            # interrupted too, the next session ends them.
            self.close_all(kill=True)
            self._unsettled = False
            raise

    def _ready_helpers(self, n, network):
        for attempt in range(2):
            # Those that exited when idle, or were being ended when an
            # interruption came (not to be taken for helpers that fail to start).
            for helper in [h for h in self._helpers if h.ending or not h.alive()]:
                self._drop(helper, kill=True)
            try:
                while len(self._helpers) < n:
                    helper = _Helper(self)
                    # Listed first: should its start be interrupted, the
                    # helper is ended with the others (acquire).
                    self._helpers.append(helper)
                    helper.start()
                deadline = time.monotonic() + self.start_seconds
                for helper in self._helpers[:n]:
                    helper.wait_ready(deadline)
            except (OSError, HelperLost) as exc:
                self.start_failed = str(exc)
                self.close_all(kill=True)
                raise HelperLost(f"could not start: {exc}") from None
            helpers = self._helpers[:n]
            deadline = time.monotonic() + SESSION_SECONDS
            for helper in helpers:
                try:
                    helper.start_session(deadline, network)
                except (OSError, HelperLost) as exc:
                    # It exited when idle just now, or was stopped or killed
                    # between sessions: end it and start another, once. Only
                    # the one that did not exit is worth a warning.
                    if helper.alive():
                        self.replaced.append(str(exc))
                    self._drop(helper, kill=True)
                    failure = exc
            if all(helper in self._helpers for helper in helpers):
                return helpers
            if attempt:
                self.start_failed = str(failure)
                self.close_all(kill=True)
                raise HelperLost(f"could not start a session: {failure}")

    def release(self):
        """End this thread's session, if it has one (see :meth:`acquire`): its
        helpers with a share under way (after an exception) or that cannot be
        told are ended. An interruption before this call's ``try`` (three
        signals in a row, see ProcessBackend.session) leaves the claim to this
        thread, whose next session takes it over."""
        if self._claim.get("owner") != threading.get_ident():
            return
        try:
            # Those lost during the session are ended already. (None had the
            # session after a failed acquire, which leaves _unsettled as it is.)
            helpers = [helper for helper in self._session if helper in self._helpers]
            if helpers:
                self._unsettled = True  # until each has been told
            for helper in helpers:
                if helper.busy:
                    self._drop(helper, kill=True)
                    continue
                try:
                    helper.finish()
                except OSError:
                    self._drop(helper)
            if helpers:
                self._unsettled = False
        except BaseException:
            # Interrupted part way: what each has read is unknown. If ending
            # them here is interrupted too, the next session ends them.
            self.close_all(kill=True)
            self._unsettled = False
            raise
        finally:
            self._session = []
            self._claim.pop("owner", None)

    def take_replaced(self):
        """Why helpers were replaced since the last call (see
        :meth:`_ready_helpers`)."""
        reasons, self.replaced = self.replaced, []
        return reasons

    def lose(self, helper):
        """Forget a helper that stopped serving, and end it."""
        self._drop(helper, kill=True)

    def _drop(self, helper, kill=False):
        # Ended first, then forgotten: if ending it is interrupted, it stays
        # listed, and the next session (or the end of this process) ends it.
        if not helper.close(kill=kill):
            self._exiting.append(helper)  # to be reaped once it has exited
        for gone in [h for h in self._exiting if not h.alive()]:
            gone._close_pidfd()
            self._exiting.remove(gone)
        if helper in self._helpers:
            self._helpers.remove(helper)

    def close_all(self, kill=False):
        if self._pid != os.getpid():
            return
        while self._helpers:
            self._drop(self._helpers[-1], kill=kill)


RUNTIME = HelperRuntime()
atexit.register(RUNTIME.close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: RUNTIME._after_fork())


# -------------------------------------------------------------- the backend
class ProcessBackend(SerialBackend):
    """Shares computed by this process and helper processes together.

    Parameters
    ----------
    n_shares : int
        How many shares each mini-batch is cut into (see ``_backend``).
    runtime : HelperRuntime, default=RUNTIME
        Where the helpers come from.
    """

    def __init__(self, n_shares, runtime=None):
        super().__init__(n_shares)
        self.runtime = RUNTIME if runtime is None else runtime
        self._helpers = []
        self._slowest = 0.0

    def n_helpers(self, network, kind, n_samples, n_steps):
        """How many helpers a session of this size is worth."""
        if not self.runtime.available():
            return 0
        macs = network.step_macs() * n_steps * n_samples
        if kind == "fit":
            enough = macs / self.n_shares >= MIN_SHARE_MACS
        else:
            enough = macs >= MIN_PREDICT_MACS
        if not enough:
            return 0
        return max(0, min(self.n_shares, usable_cores(), blas_threads()) - 1)

    @contextmanager
    def session(self, network, kind, n_samples, n_steps):
        n = self.n_helpers(network, kind, n_samples, n_steps)
        self._helpers, self._slowest = [], 0.0
        try:
            if n > 0:
                try:
                    self._helpers = list(self.runtime.acquire(n, network) or ())
                except HelperLost as exc:
                    warn_user(
                        f"n_jobs={self.n_shares}: helper processes {exc}. Every "
                        "share is computed in this process instead, with the same "
                        "results; no helper will start again in this process."
                    )
                for reason in self.runtime.take_replaced():
                    warn_user(
                        f"n_jobs={self.n_shares}: a helper process {reason} "
                        "(stopped?). It was ended and another one started."
                    )
            # BLAS on one thread here as in the helpers (SerialBackend's session).
            with super().session(network, kind, n_samples, n_steps):
                yield self
        finally:
            self._helpers = []
            if n > 0:
                try:
                    self.runtime.release()
                except BaseException:
                    # Interrupted (a second Ctrl-C) maybe before release's own
                    # try: once more (it returns at once if the first ended it).
                    self.runtime.release()
                    raise

    def free_helpers(self):
        """The session's helpers that have a core to themselves now: all of
        them, unless the machine has had fewer free cores than this process,
        its helpers and the other threads ready to run need, for the last
        :data:`BUSY_LOOKS` looks and the runtime's ``crowded_seconds``. Then
        only those the free cores allow: next to busy processes, the shares of
        helpers that would wait for a core are faster computed here, one after
        the other, with the same results."""
        helpers = self._helpers
        runnable = _runnable()
        if not helpers or runnable is None:
            return helpers
        others = runnable - 1 - sum(helper.running() for helper in helpers)
        free = max(0, _CORES - 1 - others)
        # The runtime keeps the looks: the machine's state outlives a session.
        runtime = self.runtime
        if runtime.crowded.see(free < len(helpers), runtime.crowded_seconds):
            return helpers[:free]
        return helpers

    def run(self, tasks, consume, workspace):
        helpers = self.free_helpers() if len(tasks) > 1 else []
        if not helpers:
            super().run(tasks, consume, workspace)
            return
        first = 0
        while first < len(tasks):
            # This process takes the first task of each round, each helper one
            # of the others; the results are consumed in the order of the tasks.
            # Helpers lost in a round take no part in the next ones.
            helpers = [helper for helper in helpers if helper in self._helpers]
            here, *there = tasks[first : first + len(helpers) + 1]
            sent = []
            for helper, task in zip(helpers, there):
                sent.append((self._submit(helper, task), task))
            consume(first, self._compute_here(here, workspace))
            for j, (helper, task) in enumerate(sent, first + 1):
                result = None if helper is None else self._result(helper)
                if result is None:
                    result = self._compute_here(task, workspace)
                consume(j, result)
            first += 1 + len(there)

    def _compute_here(self, task, workspace):
        """``compute`` in this process, keeping the longest time a share took
        here, from which the waits for helpers are bounded."""
        start = time.monotonic()
        result = self.compute(task, workspace)
        self._slowest = max(self._slowest, time.monotonic() - start)
        return result

    def _submit(self, helper, task):
        try:
            helper.submit(task)
            return helper
        except HelperLost as exc:
            self._lose(helper, exc)
            return None

    def _result(self, helper):
        wait = max(REPLY_FLOOR_SECONDS, REPLY_FACTOR * self._slowest)
        try:
            return helper.result(wait, _wakes.poll_seconds(self._slowest))
        except HelperLost as exc:
            self._lose(helper, exc)
            return None

    def _lose(self, helper, exc):
        self._helpers.remove(helper)
        self.runtime.lose(helper)
        warn_user(
            f"n_jobs={self.n_shares}: a helper process {exc}. It was ended and its "
            "shares are computed in this process, with the same results."
        )

