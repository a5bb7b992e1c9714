"""BaseLSTM: the parameters, the weights, ``_fit`` and the epoch loop.

The estimators in ``_estimators.py`` add only what differs between regression and
classification: how ``y`` is validated and encoded, the output activation, and how
predictions are decoded.
"""

import math
import signal
import threading
import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
)
from threadpoolctl import ThreadpoolController

from ._engine import Workspace, forward
from ._optimizers import (
    AdamOptimizer,
    RMSPropOptimizer,
    SGDOptimizer,
    clip_grad_norm,
)
from ._parallel import (
    MIN_PREDICT_MACS,
    HelperError,
    Layout,
    batch_loss_grad,
    helper_pool,
    n_processes,
)
from ._validation import Sequences, validate_sequences

_OPTIMIZERS = {"adam": AdamOptimizer, "rmsprop": RMSPropOptimizer, "sgd": SGDOptimizer}

# Predict in chunks of samples so that the activations of one chunk stay near this
# size, however many samples are passed.
_PREDICT_CHUNK_BYTES = 32 * 2**20

# Prediction splits the samples between threads when each gets at least this many,
# in chunks of at least this many hidden values per step (samples x hidden units).
_PREDICT_MIN_SAMPLES_PER_THREAD = 64
_PREDICT_MIN_STEP_VALUES = 8192

_threadpools = None


def _blas_threads():
    """The threadpool controller, and how many threads BLAS may use now."""
    global _threadpools
    if _threadpools is None:
        _threadpools = ThreadpoolController()
    blas = _threadpools.select(user_api="blas")
    return blas, max([lib["num_threads"] for lib in blas.info()], default=1)


def _glorot_uniform(rng, fan_in, fan_out, dtype):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def _orthogonal(rng, n_rows, n_cols, dtype):
    """A (n_rows, n_cols) matrix with orthonormal rows (n_rows <= n_cols)."""
    a = rng.standard_normal((n_cols, n_rows))
    # One BLAS thread: a small matrix gains nothing from more, and BLAS threads
    # busy-wait for a while after a parallel call, on the cores that the helper
    # processes of the fit about to start need (see _parallel).
    with _blas_threads()[0].limit(limits=1):
        q, r = np.linalg.qr(a)  # q (n_cols, n_rows) with orthonormal columns
    q *= np.sign(np.diag(r))  # makes the decomposition unique, hence uniform
    return np.ascontiguousarray(q.T).astype(dtype)


def _squared_norm(arrays):
    """Sum of squares of all entries: non-finite if any entry is."""
    return sum(float(np.vdot(a, a)) for a in arrays)


def _dropout_mask(rng, shape, rate, dtype):
    """Inverted dropout: 0 with probability ``rate``, else ``1 / (1 - rate)``."""
    if rate == 0:
        return None
    keep = rng.random_sample(shape) >= rate
    return keep.astype(dtype) / np.asarray(1.0 - rate, dtype=dtype)


class _Interrupt:
    requested = False


@contextmanager
def _interrupt_after_batch():
    """Turn the first Ctrl-C during training into a request to stop after the batch.

    The mini-batch under way finishes, so the weights are never left half updated;
    a second Ctrl-C interrupts at once. Signal handlers can only be set from the
    main thread: elsewhere (e.g. joblib workers) Ctrl-C keeps its usual effect.
    """
    interrupt = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(signum, frame):
        if interrupt.requested:
            raise KeyboardInterrupt
        interrupt.requested = True

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sharing(pool):
    """BLAS on one thread while a pool's helpers share the batches of a fit.

    Yields how many threads prediction may use meanwhile (the validation of early
    stopping): None for as many as BLAS may use. The pool keeps the training
    thread on its core, and gives the helpers back (stopping any left busy)
    however the fit ends. The limit is held for the whole fit: raising it between
    epochs would wake BLAS threads that busy-wait for a while on the cores the
    processes need.
    """
    if pool is None:
        yield None
        return
    with pool, _blas_threads()[0].limit(limits=1):
        yield pool.n_shares


class BaseLSTM(BaseEstimator, ABC):
    """Base class for the LSTM estimators. Use the derived classes."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "solver": [StrOptions({"adam", "rmsprop", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        rho,
        epsilon,
        n_iter_no_change,
        max_grad_norm,
        dropout,
        recurrent_dropout,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.rho = rho
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_grad_norm = max_grad_norm
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout

    # ------------------------------------------------------------------ weights
    def _fitted_layer_sizes(self):
        """Hidden units of each LSTM layer of the fitted model."""
        return [layer["recurrent_kernel"].shape[0] for layer in self.lstm_coefs_]

    def _layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if np.iterable(sizes) else [sizes]
        if not sizes or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h > 0
            for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive integer or a non-empty sequence "
                f"of positive integers, got {self.hidden_layer_sizes!r}."
            )
        return [int(h) for h in sizes]

    def _initialize(self, n_features, n_outputs, dtype):
        """Draw fresh weights from ``self._random_state`` and reset the records."""
        rng = self._random_state
        self.lstm_coefs_ = []
        n_inputs = n_features
        for n_hidden in self._layer_sizes():
            bias = np.zeros(4 * n_hidden, dtype=dtype)
            bias[n_hidden : 2 * n_hidden] = 1.0  # forget gate starts open
            self.lstm_coefs_.append(
                {
                    "kernel": _glorot_uniform(rng, n_inputs, 4 * n_hidden, dtype),
                    "recurrent_kernel": _orthogonal(rng, n_hidden, 4 * n_hidden, dtype),
                    "bias": bias,
                }
            )
            n_inputs = n_hidden
        self.coefs_ = [_glorot_uniform(rng, n_inputs, n_outputs, dtype)]
        self.intercepts_ = [np.zeros(n_outputs, dtype=dtype)]
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._optimizer = None
        self.best_loss_ = None
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _params(self):
        """The live parameter arrays, in the engine's order."""
        params = []
        for layer in self.lstm_coefs_:
            params += [layer["kernel"], layer["recurrent_kernel"], layer["bias"]]
        return params + [self.coefs_[0], self.intercepts_[0]]

    def _check_weights(self):
        """The live weights, after checking the shapes a user may have changed."""
        n_inputs = self.n_features_in_ if self._input_ndim == 3 else 1
        expected = []
        for layer in self.lstm_coefs_:
            n_hidden = layer["recurrent_kernel"].shape[0]
            expected += [
                ('lstm_coefs_[{}]["kernel"]', (n_inputs, 4 * n_hidden)),
                ('lstm_coefs_[{}]["recurrent_kernel"]', (n_hidden, 4 * n_hidden)),
                ('lstm_coefs_[{}]["bias"]', (4 * n_hidden,)),
            ]
            n_inputs = n_hidden
        expected += [
            ("coefs_[0]", (n_inputs, self.n_outputs_)),
            ("intercepts_[0]", (self.n_outputs_,)),
        ]
        params = self._params()
        for k, (param, (name, shape)) in enumerate(zip(params, expected)):
            name = name.format(k // 3)
            if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
                raise TypeError(f"{name} must be a float ndarray, got {type(param)}.")
            if param.shape != shape:
                raise ValueError(
                    f"{name} has shape {param.shape}; this model needs {shape}."
                )
            if not np.isfinite(param).all():
                raise ValueError(f"{name} contains NaN or infinity.")
        return params

    # --------------------------------------------------------------- prediction
    def _forward_raw(self, X, workspace=None, n_threads=None):
        """Raw network output for validated :class:`Sequences`, in chunks.

        Chunks hold sequences of similar lengths (sorted), so that padding costs
        little, and are sized so that their activations stay near
        ``_PREDICT_CHUNK_BYTES`` however many samples are passed. With enough
        samples, the chunks are shared between ``n_threads`` threads (default: as
        many as BLAS may use).
        """
        params = self._check_weights()
        dtype = params[0].dtype
        X = X.astype(dtype)
        n_samples, n_timesteps, _ = X.values.shape
        # Prediction keeps, per layer and sample, the column [h; x; 1] of every step.
        per_step = sum(
            layer["kernel"].shape[0] + layer["recurrent_kernel"].shape[0] + 1
            for layer in self.lstm_coefs_
        )
        per_sample = (n_timesteps + 1) * per_step * dtype.itemsize
        chunk = max(1, _PREDICT_CHUNK_BYTES // per_sample)
        order = None if X.lengths is None else np.argsort(X.lengths, kind="stable")
        out = np.empty((n_samples, self.n_outputs_), dtype=dtype)
        workspace = Workspace() if workspace is None else workspace

        def run(batches, workspace):
            for batch in batches:
                idx = batch if order is None else order[batch]
                part = X.take(idx)
                out[idx], _ = forward(
                    part.values,
                    params,
                    part.lengths,
                    keep_cache=False,
                    workspace=workspace,
                )

        # The element-wise work of a step runs on one core, BLAS on all of its
        # threads. With enough samples, as many Python threads as BLAS may use
        # share the chunks, with BLAS held to one thread: NumPy releases the GIL
        # while it computes, so the cores share all the work. Each thread takes
        # the next chunk when it is done with one, so a thread slowed by other
        # work on its core (such as BLAS threads still spinning after a product)
        # does less; chunks stay large enough for each NumPy call to be long
        # next to the GIL's hand-over.
        blas, blas_threads = _blas_threads()
        n_threads = blas_threads if n_threads is None else n_threads
        n_threads = min(n_threads, n_samples // _PREDICT_MIN_SAMPLES_PER_THREAD)
        if n_threads <= 1:
            run(gen_batches(n_samples, chunk), workspace)
            return out
        # Enough work: helper processes share the chunks (see _parallel), each
        # process on its own core with BLAS on one thread.
        pool = self._prediction_pool(X, params, n_threads, chunk)
        if pool is not None:
            try:
                with pool, blas.limit(limits=1):
                    batches = [
                        b if order is None else order[b]
                        for b in gen_batches(n_samples, pool.layout.max_share)
                    ]
                    return pool.forward(X, params, batches, out, workspace)
            except HelperError as exc:
                warnings.warn(
                    "A helper process failed; prediction goes on with threads. "
                    f"The helper reported:\n{exc}",
                    UserWarning,
                    stacklevel=4,  # the user's predict, past _raw_predict
                )
        # Otherwise Python threads share them.
        widest = max(self._fitted_layer_sizes())
        at_least = -(-_PREDICT_MIN_STEP_VALUES // widest)  # samples per chunk
        chunk = min(chunk, max(at_least, -(-n_samples // (4 * n_threads))))
        batches = iter(list(gen_batches(n_samples, chunk)))
        lock = threading.Lock()
        errors = []

        def share(workspace):
            try:
                while not errors:
                    with lock:
                        batch = next(batches, None)
                    if batch is None:
                        return
                    run([batch], workspace)
            except BaseException as exc:  # re-raised by the calling thread
                errors.append(exc)

        helpers = [
            threading.Thread(target=share, args=(Workspace(),))
            for _ in range(n_threads - 1)
        ]
        with blas.limit(limits=1):
            for helper in helpers:
                helper.start()
            share(workspace)  # the calling thread is one of them
            for helper in helpers:
                helper.join()
        if errors:
            raise errors[0]
        return out

    def _prediction_pool(self, X, params, n_threads, chunk):
        """Helper processes to share a prediction's chunks, or None."""
        n_samples, n_steps, n_features = X.values.shape
        n = n_processes(
            n_samples,
            n_steps,
            self._fitted_layer_sizes(),
            n_features,
            n_threads,
            MIN_PREDICT_MACS,
        )
        layout_args = ("identity", self.n_outputs_, min(chunk, -(-n_samples // n)))
        # The user's predict, past _forward_raw and _raw_predict.
        return self._open_pool(
            n, params, layout_args, n_steps, False, "Predicting with threads", 5
        )

    def _open_pool(self, n, params, layout_args, n_steps, dropout, doing, level):
        """A pool of ``n - 1`` helpers, or None (with a warning if they failed).

        ``layout_args`` are the loss, the outputs and the samples of a share;
        ``dropout`` whether batches come with dropout masks;
        ``doing`` says what goes on without them, ``level`` is the warning's
        stacklevel as seen from the caller of this method.
        """
        if n < 2:
            return None
        loss, n_outputs, max_share = layout_args
        layout = Layout(
            loss,
            params[0].dtype,
            [param.shape for param in params],
            n_outputs,
            max_share,
            n_steps,
            dropout,
        )
        try:
            return helper_pool(n, layout)
        except (OSError, HelperError) as exc:
            warnings.warn(
                f"{doing}: helper processes could not start ({exc}).",
                UserWarning,
                stacklevel=level + 1,
            )
            return None

    def _raw_predict(self, X):
        """Validate X and return the raw network output."""
        check_is_fitted(self)
        return self._forward_raw(validate_sequences(self, X, reset=False))

    # ----------------------------------------------------------------- training
    def _dropout_masks(self, batch_size, dtype):
        """Scaled variational dropout masks for one mini-batch, or None."""
        if not self.dropout and not self.recurrent_dropout:
            return None
        rng = self._random_state
        masks = []
        n_inputs = self.lstm_coefs_[0]["kernel"].shape[0]
        for layer in self.lstm_coefs_:
            n_hidden = layer["recurrent_kernel"].shape[0]
            masks.append(
                (
                    _dropout_mask(rng, (batch_size, n_inputs), self.dropout, dtype),
                    _dropout_mask(
                        rng, (batch_size, n_hidden), self.recurrent_dropout, dtype
                    ),
                )
            )
            n_inputs = n_hidden
        return masks

    def _loss_grad(
        self,
        X,
        y,
        sample_weight,
        params,
        lengths=None,
        masks=None,
        workspace=None,
        pool=None,
    ):
        """Loss of one mini-batch (with the L2 penalty) and its gradients.

        The loss is the ``sample_weight``-weighted mean over the batch, and the
        penalty ``alpha / (2 * sum(sample_weight)) * sum ||W||^2`` over kernels,
        recurrent kernels and output weights; biases are not penalised. With unit
        weights, these are MLP's mean loss and ``alpha / (2 n)`` penalty. With a
        ``pool`` of helper processes (see ``_parallel``), they share the batch.
        """
        weight_sum = float(sample_weight.sum())
        weights = sample_weight / weight_sum
        loss_name = self.out_activation_
        result = None
        if pool is not None:
            try:
                batch = Sequences(X, lengths)
                result = pool.loss_grad(
                    batch, y, weights, params, masks, loss_name, workspace
                )
            except HelperError as exc:
                pool.failed = True
                warnings.warn(
                    f"A helper process failed; training goes on in this process "
                    f"alone. The helper reported:\n{exc}",
                    UserWarning,
                    # The user's fit: _run_epochs, _fit_stochastic, _fit, fit and
                    # _fit_context's wrapper are in between.
                    stacklevel=7,
                )
        if result is None:
            result = batch_loss_grad(
                X, y, weights, params, lengths, masks, loss_name, workspace
            )
        loss, grads = result
        if self.alpha > 0:
            scale = self.alpha / weight_sum
            penalty = 0.0
            for k in self._penalised_indices(len(params)):
                penalty += float(np.vdot(params[k], params[k]))
                grads[k] += scale * params[k]
            loss += 0.5 * scale * penalty
        return loss, grads

    def _training_pool(self, X, y, params, batch_size):
        """Helper processes to share this fit's batches (see ``_parallel``), or None.

        As many processes as BLAS may use threads, when batches are large enough.
        """
        _, n_threads = _blas_threads()
        n_steps, n_features = X.values.shape[1:]
        layer_sizes = self._fitted_layer_sizes()
        n = n_processes(batch_size, n_steps, layer_sizes, n_features, n_threads)
        dropout = bool(self.dropout or self.recurrent_dropout)  # see _dropout_masks
        layout_args = (self.out_activation_, y.shape[1], -(-batch_size // n))
        doing = "Training in this process alone"
        # The user's fit, past _run_epochs, _fit_stochastic, _fit, fit and
        # _fit_context's wrapper.
        return self._open_pool(n, params, layout_args, n_steps, dropout, doing, 7)

    @staticmethod
    def _penalised_indices(n_params):
        return [k for k in range(n_params - 2) if k % 3 != 2] + [n_params - 2]

    def _fit(self, X, y, sample_weight=None, incremental=False):
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        layer_sizes = self._layer_sizes()
        X, y, sample_weight = self._validate_input(
            X, y, sample_weight, incremental, reset=first_pass
        )
        if not sample_weight.sum() > 0:
            raise ValueError("The sample weights sum to zero: there is nothing to fit.")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if first_pass:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.values.shape[2], y.shape[1], X.values.dtype)
        else:
            fitted_sizes = self._fitted_layer_sizes()
            if fitted_sizes != layer_sizes:
                raise ValueError(
                    f"hidden_layer_sizes is {tuple(layer_sizes)} but the fitted model "
                    f"has {tuple(fitted_sizes)}; warm_start and partial_fit continue "
                    "training the same architecture."
                )
            if y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {y.shape[1]} output(s) but the fitted model has "
                    f"{self.n_outputs_}; warm_start and partial_fit need the same "
                    "number of outputs."
                )
        params = self._check_weights()
        dtype = params[0].dtype
        self._fit_stochastic(
            X.astype(dtype),
            y.astype(dtype, copy=False),
            sample_weight.astype(dtype, copy=False),
            params,
            incremental,
        )
        return self

    @staticmethod
    def _check_sample_weight(sample_weight, X):
        return _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )

    def _optimizer_settings(self):
        settings = {
            "learning_rate_init": self.learning_rate_init,
            "lr_schedule": self.learning_rate,
            "power_t": self.power_t,
        }
        if self.solver == "sgd":
            settings.update(momentum=self.momentum, nesterov=self.nesterovs_momentum)
        elif self.solver == "adam":
            settings.update(
                beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon
            )
        else:
            settings.update(rho=self.rho, epsilon=self.epsilon)
        return settings

    def _prepare_optimizer(self, params):
        """Keep the optimizer's state across warm starts and partial_fit calls.

        A new optimizer is made on a fresh fit or when ``solver`` changed; a kept one
        takes the current hyperparameters, and restarts its learning rate only when
        ``learning_rate_init`` changed.
        """
        settings = self._optimizer_settings()
        optimizer = self._optimizer
        if optimizer is None or not isinstance(optimizer, _OPTIMIZERS[self.solver]):
            self._optimizer = _OPTIMIZERS[self.solver](params, **settings)
            return
        if settings["learning_rate_init"] != optimizer.learning_rate_init:
            optimizer.learning_rate = float(settings["learning_rate_init"])
        for name, value in settings.items():
            setattr(optimizer, name, value)

    def _validation_split(self, n_samples, y):
        """Indices of the training and validation samples for early stopping."""
        n_val = int(round(self.validation_fraction * n_samples))
        if n_val < 1 or n_val >= n_samples:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{n_val} of {n_samples} samples for validation; early_stopping needs "
                "at least one sample on each side."
            )
        stratify = None
        if is_classifier(self) and self._label_binarizer.y_type_ == "binary":
            stratify = y[:, 0]
        elif is_classifier(self) and self._label_binarizer.y_type_ == "multiclass":
            stratify = y.argmax(axis=1)
        return train_test_split(
            np.arange(n_samples),
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )

    def _fit_stochastic(self, X, y, sample_weight, params, incremental):
        self._prepare_optimizer(params)
        early_stopping = self.early_stopping and not incremental
        validation = None
        if early_stopping:
            train, val = self._validation_split(len(X), y)
            validation = (X.take(val), self._decode(y[val]), sample_weight[val])
            X, y, sample_weight = X.take(train), y[train], sample_weight[train]
            if not sample_weight.sum() > 0:
                raise ValueError(
                    "The samples left for training after the early_stopping split "
                    "all have zero sample_weight."
                )
            if self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            if self.best_loss_ is None:
                self.best_loss_ = np.inf
        if not incremental or not hasattr(self, "_no_improvement_count"):
            self._no_improvement_count = 0
        self._best_params = None

        n_samples = len(X)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            batch_size = min(self.batch_size, n_samples)

        # Overflow while diverging is caught by the explicit checks of _run_epochs,
        # which say what to do about it; numpy's own warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore"):
            self._run_epochs(
                X, y, sample_weight, validation, params, batch_size, incremental
            )

        if early_stopping and self._best_params is not None:
            # Restore in place: the arrays users hold stay the live parameters.
            for param, best in zip(params, self._best_params):
                param[...] = best
        self._best_params = None
        # An interrupt before the first weighted batch leaves no epoch to judge.
        recorded = bool(self.loss_curve_)
        if (
            not incremental
            and recorded
            and self.loss_ > max(1e3 * min(self.loss_curve_), 1e-12)
        ):
            warnings.warn(
                f"The training loss grew from {min(self.loss_curve_):.3g} to "
                f"{self.loss_:.3g}: training diverged. Lower learning_rate_init (now "
                f"{self.learning_rate_init}) or max_grad_norm (now "
                f"{self.max_grad_norm}).",
                ConvergenceWarning,
                # The user's fit call, above _fit, fit and _fit_context's wrapper.
                stacklevel=5,
            )

    def _run_epochs(
        self, X, y, sample_weight, validation, params, batch_size, incremental
    ):
        n_samples = len(X)
        workspace = Workspace()
        start = time.perf_counter()
        pool = self._training_pool(X, y, params, batch_size)
        with _interrupt_after_batch() as interrupt, _sharing(pool) as n_threads:
            for _ in range(self.max_iter):
                epoch_loss = epoch_weight = 0.0
                seen = 0
                for idx in self._batches(n_samples, batch_size, X.lengths):
                    weights = sample_weight[idx]
                    batch_weight = float(weights.sum())
                    if batch_weight > 0:
                        batch = X.take(idx)
                        masks = self._dropout_masks(len(idx), batch.values.dtype)
                        loss, grads = self._loss_grad(
                            batch.values,
                            y[idx],
                            weights,
                            params,
                            batch.lengths,
                            masks,
                            workspace,
                            pool,
                        )
                        self._step(params, grads, loss)
                        epoch_loss += loss * batch_weight
                        epoch_weight += batch_weight
                    seen += len(idx)
                    if interrupt.requested:
                        break
                if not np.isfinite(_squared_norm(params)):
                    self._diverged("a weight")
                if epoch_weight > 0:  # zero only when interrupted at once
                    # Prediction threads for the validation may use all cores.
                    sharing = pool is not None and validation is not None
                    with pool.unpinned() if sharing else nullcontext():
                        self._end_epoch(
                            seen,
                            epoch_loss / epoch_weight,
                            validation,
                            params,
                            workspace,
                            n_threads,
                        )
                    if self.verbose:
                        self._print_progress(time.perf_counter() - start)
                if interrupt.requested:
                    warnings.warn(
                        f"Training interrupted (KeyboardInterrupt) in epoch "
                        f"{self.n_iter_}, after {seen} of {n_samples} samples; the "
                        "model keeps the weights of the last completed mini-batch.",
                        UserWarning,
                        # The user's fit or partial_fit, one frame further than in
                        # _fit_stochastic.
                        stacklevel=6,
                    )
                    break
                self._optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if validation else "Training loss"
                    msg = (
                        f"{what} did not improve more than tol={self.tol} for "
                        f"{self.n_iter_no_change} consecutive epochs."
                    )
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
            else:
                if not incremental:
                    warnings.warn(
                        f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        # The user's fit, one frame further than in _fit_stochastic.
                        stacklevel=6,
                    )

    def _batches(self, n_samples, batch_size, lengths):
        """The indices of each mini-batch of one epoch.

        With ``shuffle``, samples are drawn in a random order. Sequences of
        different lengths are also grouped by length: within pools of 50 batches,
        samples are sorted by length and cut into batches, whose order is then
        shuffled, so that each batch runs only a little past its members' ends.
        """
        if not self.shuffle:
            return [np.arange(n_samples)[b] for b in gen_batches(n_samples, batch_size)]
        order = self._random_state.permutation(n_samples)
        if lengths is None:
            return [order[b] for b in gen_batches(n_samples, batch_size)]
        batches = []
        for pool in gen_batches(n_samples, 50 * batch_size):
            members = order[pool]
            members = members[np.argsort(lengths[members], kind="stable")]
            batches += [members[b] for b in gen_batches(len(members), batch_size)]
        return [batches[k] for k in self._random_state.permutation(len(batches))]

    def _step(self, params, grads, loss):
        """Check, clip and apply one mini-batch's gradients."""
        squared_norm = _squared_norm(grads)
        # Checked before the update, so the weights stay finite and usable.
        if not np.isfinite(loss + squared_norm):
            self._diverged("the training loss or its gradient")
        if self.max_grad_norm is not None:
            clip_grad_norm(grads, self.max_grad_norm, math.sqrt(squared_norm))
        self._optimizer.update_params(params, grads)

    def _end_epoch(self, n_seen, loss, validation, params, workspace, n_threads=None):
        self.n_iter_ += 1
        self.t_ += n_seen
        self.loss_ = loss
        self.loss_curve_.append(loss)
        if validation is not None:
            score = self._score_validated(*validation, workspace, n_threads)
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = [p.copy() for p in params]
        else:
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, loss)

    def _print_progress(self, elapsed):
        line = f"Epoch {self.n_iter_}: loss = {self.loss_:.8f}"
        if self.validation_scores_:
            line += f", validation score = {self.validation_scores_[-1]:.6f}"
        print(f"{line}, {elapsed:.2f} s")

    def _diverged(self, what):
        raise ValueError(
            f"Training diverged: {what} became non-finite in epoch {self.n_iter_ + 1}. "
            f"Lower learning_rate_init (now {self.learning_rate_init}) or "
            f"max_grad_norm (now {self.max_grad_norm}); the weights keep their last "
            "finite values."
        )

    @abstractmethod
    def _validate_input(self, X, y, sample_weight, incremental, reset):
        """Validated 3D X, y encoded as the network's targets, and sample weights."""

    @abstractmethod
    def _decode(self, y):
        """Targets in the form that ``score`` compares with predictions."""

    @abstractmethod
    def _score_validated(self, X, y, sample_weight, workspace=None, n_threads=None):
        """``score`` on already validated X."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
