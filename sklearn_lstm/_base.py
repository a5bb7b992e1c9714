"""BaseLSTM: the parameters, the weights, ``_fit`` and the epoch loop.

The estimators in ``_estimators.py`` add only what differs between regression and
classification: how ``y`` is validated and encoded, the output activation, and how
predictions are decoded.
"""

import math
import signal
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
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

from . import _processes  # noqa: F401  (reads the helpers' sources with the package)
from ._backend import SerialBackend, blas_on_one_thread, make_backend
from ._engine import Workspace
from ._network import POOLINGS, Network
from ._objective import Batch, Sequences
from ._optimizers import (
    AdamOptimizer,
    RMSPropOptimizer,
    SGDOptimizer,
    clip_grad_norm,
)
from ._stream import SequenceStream
from ._validation import (
    restore_steps,
    step_targets,
    valid_steps,
    validate_sequences,
    validate_token_ids,
)
from ._warnings import warn_user

_OPTIMIZERS = {"adam": AdamOptimizer, "rmsprop": RMSPropOptimizer, "sgd": SGDOptimizer}

#: Predictions of at most this many sample-steps reuse a workspace kept by the
#: thread (a few MB at most): for one short sequence, building the workspace's
#: arrays and views costs as much as the computation.
_SMALL_PREDICTION = 1024
_thread_state = threading.local()


def _small_workspace(network, shape):
    """The calling thread's workspace for a small prediction of ``shape``
    (n_samples, n_timesteps) by ``network``; a fresh one for a larger prediction.

    The thread keeps one workspace, for the last network it predicted with: the
    views a workspace keeps are laid out for one network's sizes, and another
    network's arrays of the same total shape would reuse them wrongly.
    """
    if math.prod(shape) > _SMALL_PREDICTION:
        return Workspace()
    kept = getattr(_thread_state, "kept", None)
    if kept is None or kept[0] != network:
        kept = _thread_state.kept = (network, Workspace())
    return kept[1]


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
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        # Not the main thread, or a handler set outside Python, which could not
        # be put back.
        yield interrupt
        return

    def request_stop(signum, frame):
        if interrupt.requested:
            # Put back first: the KeyboardInterrupt may land before the
            # ``finally`` below runs (a second signal at once).
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        interrupt.requested = True

    try:
        signal.signal(signal.SIGINT, request_stop)
        yield interrupt
    finally:
        try:
            signal.signal(signal.SIGINT, previous)
        except BaseException:  # interrupted in there (a second signal): again
            signal.signal(signal.SIGINT, previous)
            raise


#: The keys of ``init``: the fitted attributes holding the weights.
_INIT_KEYS = ("embedding_", "lstm_coefs_", "coefs_", "intercepts_")


def _init_table_rows(table, n_needed):
    """The rows of ``init["embedding_"]``, checked to cover the ids of X (which
    need ``n_needed`` rows)."""
    shape = np.shape(table)
    if len(shape) != 2:
        raise ValueError(
            "init['embedding_'] must be a 2D array (n_tokens, embedding_dim), got "
            f"shape {shape}."
        )
    if shape[0] < n_needed:
        raise ValueError(
            f"X holds id {n_needed - 1}, but init['embedding_'] has {shape[0]} rows "
            f"(ids 0 to {shape[0] - 1})."
        )
    return shape[0]


def _initial_params(network, params, init):
    """``params`` with copies of the arrays that ``init`` holds in place of the
    drawn ones, in the dtype of ``params``: the user's arrays are never written
    to, nor become the live weights."""
    unknown = sorted(map(repr, set(init) - set(_INIT_KEYS)))
    if unknown:
        raise ValueError(
            f"init has unknown key(s) {', '.join(unknown)}; its keys are among "
            f"{list(_INIT_KEYS)}, the fitted attributes holding the weights."
        )
    if "embedding_" in init and network.embedding is None:
        raise ValueError(
            "init has an embedding_ table, but embedding_dim is None: this model "
            "reads features, not token ids."
        )
    for name in _INIT_KEYS[1:]:
        if name in init and not isinstance(init[name], (list, tuple)):
            raise TypeError(
                f"init['{name}'] must be a list, like the fitted attribute {name}; "
                f"got {type(init[name]).__name__}."
            )
    for k, (layer, arrays) in enumerate(zip(network.lstm, init.get("lstm_coefs_", []))):
        if not isinstance(arrays, dict):
            raise TypeError(
                f"init['lstm_coefs_'][{k}] must be a dict of arrays, like "
                f"lstm_coefs_[{k}]; got {type(arrays).__name__}."
            )
        extra = sorted(set(arrays) - {spec.name for spec in layer.specs})
        if extra:
            raise ValueError(
                f"init['lstm_coefs_'][{k}] has {extra}, which LSTM layer {k} of this "
                f"model (bidirectional={layer.bidirectional}) has not."
            )
    public = network.to_public(params)
    public.update((name, init[name]) for name in _INIT_KEYS if name in init)
    try:
        flat = network.from_public(
            public["lstm_coefs_"],
            public["coefs_"],
            public["intercepts_"],
            public.get("embedding_"),
        )
    except ValueError as exc:
        raise ValueError(f"init: {exc}") from None
    dtype = params[0].dtype
    copies = []
    for index, array in enumerate(flat):
        array = np.asarray(array)
        if array.dtype.kind not in "fiu":
            raise TypeError(
                f"init: {network.public_name(index)} must hold numbers, got an "
                f"array of dtype {array.dtype}."
            )
        copies.append(array.astype(dtype))  # a copy, always
    try:
        return network.check(copies)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"init: {exc}") from None


def _take(X, y, sample_weight, indices):
    """The sequences, targets and weights of the samples ``indices``, per-step
    targets and weights cut to the steps that the sequences keep."""
    batch = Batch(X, y, sample_weight, None).take(indices)
    return batch.X, batch.y, batch.weights


class BaseLSTM(BaseEstimator, ABC):
    """Base class for the LSTM estimators. Use the derived classes."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions(set(POOLINGS))],
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
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
        "n_jobs": [Integral, None],
        "init": [dict, None],
        "frozen": [str, list, tuple, None],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        bidirectional,
        pooling,
        embedding_dim,
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
        n_jobs,
        init,
        frozen,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.embedding_dim = embedding_dim
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
        self.n_jobs = n_jobs
        self.init = init
        self.frozen = frozen

    # ------------------------------------------------------------------ weights
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

    def _make_network(self, X, n_outputs):
        """The network these parameters describe, for the validated
        :class:`Sequences` ``X`` of a first fit: an embedding has a row for each
        id up to the largest in X (at least 2 rows: padding and a token)."""
        embedding = None
        if self.embedding_dim is not None:
            n_tokens = max(2, int(X.values.max()) + 1)
            table = (self.init or {}).get("embedding_")
            if table is not None:  # the starting table sets the vocabulary
                n_tokens = _init_table_rows(table, n_tokens)
            embedding = (n_tokens, self.embedding_dim)
        return Network.stack(
            X.values.shape[2] if embedding is None else None,
            self._layer_sizes(),
            n_outputs,
            bidirectional=self.bidirectional,
            pooling=self.pooling,
            embedding=embedding,
        )

    def _initialize(self, X, n_outputs, dtype):
        """Draw fresh weights from ``self._random_state`` (or copy those of
        ``init``) and reset the records."""
        network = self._make_network(X, n_outputs)
        # Drawn even when init replaces them, so that random_state's later draws
        # (shuffling, dropout) are the same with and without init. The QR of
        # the orthogonal draws runs with BLAS on one thread, as the fit does:
        # threads round it differently.
        with blas_on_one_thread():
            params = network.init(self._random_state, dtype)
        if self.init is not None:
            params = _initial_params(network, params, self.init)
        self._set_network(network, params)

    def _set_network(self, network, params):
        """Make ``params`` of ``network`` the live weights, as if just initialised."""
        self._network = network
        public = network.to_public(params)
        if "embedding_" not in public and hasattr(self, "embedding_"):
            del self.embedding_  # a refit without embedding must not keep it
        for name, value in public.items():
            setattr(self, name, value)
        self.n_outputs_ = network.n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._optimizer = None
        self.best_loss_ = None
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _trainable_indices(self, network):
        """The flat indices of the parameters that training moves: all but those
        of the parts that ``frozen`` names."""
        n_params = len(network.specs)
        if self.frozen is None:
            return tuple(range(n_params))
        names = [self.frozen] if isinstance(self.frozen, str) else list(self.frozen)
        parts = network.parts()
        fixed = set()
        for name in names:
            if not isinstance(name, str) or name not in parts:
                raise ValueError(
                    f"frozen names {name!r}, which is not a part of this model; its "
                    f"parts are {list(parts)} (\"embedding\" only with "
                    "embedding_dim)."
                )
            fixed.update(parts[name])
        trainable = tuple(i for i in range(n_params) if i not in fixed)
        if not trainable:
            raise ValueError(
                f"frozen={self.frozen!r} covers every part of the model: nothing is "
                "left to train."
            )
        return trainable

    def _params(self):
        """The live parameter arrays, in the network's flat order."""
        network = self._network
        embedding = self.embedding_ if network.embedding is not None else None
        return network.from_public(
            self.lstm_coefs_, self.coefs_, self.intercepts_, embedding
        )

    def _check_weights(self):
        """The live weights, after checking the shapes a user may have changed."""
        return self._network.check(self._params())

    def _make_backend(self):
        """Where this estimator's computations run (see ``_backend``)."""
        return make_backend(self.n_jobs)

    def _validate_X(self, X, reset):
        """X as :class:`Sequences`: token ids for a network with an embedding
        (``embedding_dim`` in a first fit, the fitted network after), else float
        sequences."""
        if reset:
            reads_ids = self.embedding_dim is not None
        else:
            reads_ids = self._network.embedding is not None
        if not reads_ids:
            return validate_sequences(self, X, reset=reset)
        n_tokens = None if reset else self._network.embedding.n_tokens
        return validate_token_ids(self, X, reset=reset, n_tokens=n_tokens)

    # --------------------------------------------------------------- prediction
    def _forward_raw(self, X, workspace=None, backend=None):
        """Raw network output for validated :class:`Sequences`.

        With a ``backend``, its session is already open (the validation of early
        stopping during a fit); otherwise this estimator's backend opens one.
        """
        params = self._check_weights()
        X = X.astype(params[0].dtype)
        if workspace is None:
            workspace = _small_workspace(self._network, X.values.shape[:2])
        if backend is not None:
            return backend.outputs(self._network, params, X, workspace)
        backend = self._make_backend()
        n_samples, n_steps = X.values.shape[:2]
        with backend.session(self._network, "predict", n_samples, n_steps):
            return backend.outputs(self._network, params, X, workspace)

    def _predict_with(self, X, transform):
        """Validate X and return ``transform`` of the raw network output.

        ``transform`` maps 2D raw outputs (one row per sample) to predictions
        (one per row). With one output per step, it gets a row per valid step, and
        the predictions come back in the form of X (see ``restore_steps``).
        """
        check_is_fitted(self)
        sequences = self._validate_X(X, reset=False)
        raw = self._forward_raw(sequences)
        if not self._network.per_step:
            return transform(raw)
        return restore_steps(transform(raw[valid_steps(sequences)]), sequences, X)

    def _step_rows(self, raw, X):
        """The raw outputs of each valid step (per step), or ``raw`` as it is."""
        return raw[valid_steps(X)] if self._network.per_step else raw

    def _score_steps(self, X, y, sample_weight):
        """``score`` of a model with one output per step: over all valid steps,
        each weighted by its sequence's ``sample_weight``."""
        sequences = self._validate_X(X, reset=False)
        rows = step_targets(y, sequences)
        if sample_weight is not None:
            weights = self._check_sample_weight(sample_weight, sequences)
            n_steps = valid_steps(sequences).sum(axis=1)
            sample_weight = np.repeat(weights, n_steps)
        raw = self._forward_raw(sequences)
        return self._score_rows(raw, sequences, rows, sample_weight)

    # ------------------------------------------------------ streams, generation
    def stream(self, n_streams=1):
        """A stream of this model's predictions, step by step.

        The stream holds the network's state for ``n_streams`` sequences and
        reads their next steps at each call of its ``predict`` (and, for a
        classifier, ``predict_proba``), carrying the state from one call to the
        next: one new step costs one step of the network, not a re-run of the
        history. Fed in chunks of any sizes, a sequence gets the predictions that
        ``predict`` gives for each of its prefixes (with ``pooling="none"``, the
        per-step predictions of the whole sequence).

        Parameters
        ----------
        n_streams : int, default=1
            Number of sequences read side by side.

        Returns
        -------
        stream : SequenceStream
            A copy of the weights as they are now, with every stream at its first
            step; picklable.

        Raises
        ------
        ValueError
            For a bidirectional model, whose backward direction needs each
            sequence's future.
        """
        check_is_fitted(self)
        return SequenceStream(self, n_streams)

    def generate(self, X_prefix, n_steps, *, temperature=1.0, random_state=None):
        """Continue sequences, each new step's input being the model's output
        after the step before.

        A regressor whose outputs are its input features (trained to predict
        the next step) feeds each prediction back: recursive multi-step
        forecasting past the end of a series. A classifier with an embedding
        whose classes are token ids (trained on next-token targets) draws each
        next token from ``predict_proba``, sharpened or flattened by
        ``temperature``. The state is carried from step to step: each new step
        costs one step of the network.

        Parameters
        ----------
        X_prefix : array-like or list of array-like
            The sequences to continue, in the form ``predict`` takes (of
            different lengths in a list or padded): each continues after its own
            last step.

        n_steps : int
            Number of steps to generate after each sequence.

        temperature : float, default=1.0
            Classifier only: each next token is drawn with probabilities
            proportional to ``predict_proba ** (1 / temperature)``; 0 takes the
            most probable token (``predict``), values below 1 sharpen, above 1
            flatten. A regressor's next step is its prediction.

        random_state : int, RandomState instance or None, default=None
            Classifier only: the draws. Step ``s`` draws one uniform number
            ``u`` per sequence, in order, from ``check_random_state(random_state)``
            and takes the first class whose cumulative probability exceeds ``u``.

        Returns
        -------
        X_new : ndarray
            The generated steps: token ids (n_sequences, n_steps) for a
            classifier; for a regressor (n_sequences, n_steps, n_features), or
            (n_sequences, n_steps) for a model fitted on 2D (univariate) X.
        """
        check_is_fitted(self)
        if (
            isinstance(n_steps, bool)
            or not isinstance(n_steps, Integral)
            or n_steps < 1
        ):
            raise ValueError(f"n_steps must be an int of at least 1, got {n_steps!r}.")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, Real)
            or not 0 <= temperature < np.inf
        ):
            raise ValueError(
                f"temperature must be a finite number of at least 0, got "
                f"{temperature!r}."
            )
        self._check_generative()
        rng = check_random_state(random_state)
        sequences = self._validate_X(X_prefix, reset=False)
        stream = SequenceStream(self, len(sequences.values))
        steps = stream._generate(
            sequences, int(n_steps), self._next_input(float(temperature), rng)
        )
        if self._network.embedding is None and self._input_ndim == 2:
            return steps[:, :, 0]  # univariate sequences in 2D form
        return steps

    @abstractmethod
    def _check_generative(self):
        """Raise a ValueError if this model's outputs cannot be its inputs."""

    @abstractmethod
    def _next_input(self, temperature, rng):
        """The function of raw outputs (n, n_outputs) that gives each sequence's
        next input step, for :meth:`generate`."""

    # ----------------------------------------------------------------- training
    def _dropout_masks(self, batch_size, dtype):
        """Scaled variational dropout masks for one mini-batch, or None."""
        if not self.dropout and not self.recurrent_dropout:
            return None
        rng = self._random_state
        return [
            (
                _dropout_mask(rng, shape_x, self.dropout, dtype),
                _dropout_mask(rng, shape_h, self.recurrent_dropout, dtype),
            )
            for shape_x, shape_h in self._network.mask_shapes(batch_size)
        ]

    def _loss_grad(
        self,
        X,
        y,
        sample_weight,
        params,
        lengths=None,
        masks=None,
        workspace=None,
        backend=None,
    ):
        """Loss of one mini-batch (with the L2 penalty) and its gradients.

        The loss is the ``sample_weight``-weighted mean over the batch, and the
        penalty ``alpha / (2 * sum(sample_weight)) * sum ||W||^2`` over kernels,
        recurrent kernels and output weights; biases are not penalised. With unit
        weights, these are MLP's mean loss and ``alpha / (2 n)`` penalty. With one
        output per step, ``y`` and ``sample_weight`` have one entry per step (see
        ``_objective.Batch``): the mean and ``n`` run over steps. The ``backend``
        (default: serial) computes the loss and gradients.
        """
        weight_sum = float(sample_weight.sum())
        batch = Batch(Sequences(X, lengths), y, sample_weight / weight_sum, masks)
        backend = SerialBackend() if backend is None else backend
        loss, grads = backend.loss_grad(
            self._network, params, batch, self.out_activation_, workspace
        )
        self._penalty_scale = self.alpha / weight_sum
        if self.alpha > 0:
            scale = self._penalty_scale
            penalty = 0.0
            for k in self._network.penalised:
                penalty += float(np.vdot(params[k], params[k]))
                grads[k] += scale * params[k]
            loss += 0.5 * scale * penalty
        return loss, grads

    def _fit(self, X, y, sample_weight=None, incremental=False):
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        layer_sizes = self._layer_sizes()
        # The names in frozen, checked before anything changes (a network of the
        # same layers has the same parts).
        embedding = None if self.embedding_dim is None else (2, self.embedding_dim)
        self._trainable_indices(Network.stack(1, layer_sizes, 1, embedding=embedding))
        if not first_pass:
            # Before y is read: its form depends on pooling, and a y fit for the
            # new pooling would fail there with a message that hides the change.
            self._check_same_network(layer_sizes)
            self._check_writeable()
        X, y, sample_weight = self._validate_input(
            X, y, sample_weight, incremental, reset=first_pass
        )
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        self._check_scale(
            y, sample_weight, X.dtype if first_pass else self.coefs_[0].dtype
        )
        if first_pass:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X, y.shape[-1], X.dtype)
        elif y.shape[-1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[-1]} output(s) but the fitted model has "
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

    def _check_same_network(self, layer_sizes):
        """Raise if the parameters describe another network than the fitted one."""
        fitted = self._network
        for name, now, then in [
            ("hidden_layer_sizes", tuple(layer_sizes), tuple(fitted.hidden_sizes)),
            ("bidirectional", bool(self.bidirectional), fitted.bidirectional),
            ("pooling", self.pooling, fitted.pooling),
            (
                "embedding_dim",
                self.embedding_dim,
                None if fitted.embedding is None else fitted.embedding.n_dims,
            ),
        ]:
            if now != then:
                raise ValueError(
                    f"{name} is {now!r} but the fitted model has {then!r}; "
                    "warm_start and partial_fit continue training the same "
                    "architecture."
                )

    def _check_writeable(self):
        """Raise if training cannot update the weights or the optimizer's state in
        place, as ``partial_fit`` and ``warm_start`` do: NumPy's own error would
        not say why they are read-only nor what to do."""
        arrays = self._params()
        if self._optimizer is not None:
            for value in vars(self._optimizer).values():
                arrays += value if isinstance(value, list) else [value]
        if all(a.flags.writeable for a in arrays if isinstance(a, np.ndarray)):
            return
        raise ValueError(
            "The weights or the optimizer's state of this model are read-only "
            '(e.g. loaded with joblib.load(path, mmap_mode="r")), so partial_fit and '
            "fit with warm_start=True cannot update them. To continue training, "
            "load it with mmap_mode=None (the default) or train a copy: "
            "copy.deepcopy(model). To train afresh, use sklearn.base.clone(model) "
            "or fit with warm_start=False."
        )

    @staticmethod
    def _check_sample_weight(sample_weight, X):
        """``sample_weight`` of the :class:`Sequences` ``X``, in the dtype of the
        computation."""
        return _check_sample_weight(
            sample_weight, X.values, dtype=X.dtype, ensure_non_negative=True
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
        # The optimizer sees the trainable parameters only: frozen ones get no
        # update, not even from momentum; a change of frozen restarts it.
        trainable = self._trainable_indices(self._network)
        if (
            optimizer is None
            or not isinstance(optimizer, _OPTIMIZERS[self.solver])
            or trainable != getattr(self, "_trainable", None)
        ):
            self._trainable = trainable
            self._optimizer = _OPTIMIZERS[self.solver](
                [params[i] for i in trainable], **settings
            )
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
        # With targets per step (3D y), a sample has no one class to stratify by.
        y_type = self._label_binarizer.y_type_ if is_classifier(self) else None
        if y.ndim == 2 and y_type == "binary":
            stratify = y[:, 0]
        elif y.ndim == 2 and y_type == "multiclass":
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
            X_val, y_val, weights_val = _take(X, y, sample_weight, val)
            if y.ndim == 3:  # score the valid steps
                steps = valid_steps(X_val)
                y_val, weights_val = y_val[steps], weights_val[steps]
            validation = (X_val, self._decode(y_val), weights_val)
            X, y, sample_weight = _take(X, y, sample_weight, train)
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
        # Underflow (saturated gates, tiny gradients) is never an error, even where
        # the caller made it one (np.seterr(all="raise")).
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
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
            warn_user(
                f"The training loss grew from {min(self.loss_curve_):.3g} to "
                f"{self.loss_:.3g}: training diverged. Lower learning_rate_init (now "
                f"{self.learning_rate_init}) or max_grad_norm (now "
                f"{self.max_grad_norm}).",
                ConvergenceWarning,
            )

    def _run_epochs(
        self, X, y, sample_weight, validation, params, batch_size, incremental
    ):
        n_samples = len(X)
        workspace = Workspace()
        start = time.perf_counter()
        backend = self._make_backend()
        n_steps = X.values.shape[1]
        with (
            _interrupt_after_batch() as interrupt,
            backend.session(self._network, "fit", batch_size, n_steps),
        ):
            for _ in range(self.max_iter):
                epoch_loss = epoch_weight = 0.0
                seen = 0
                for idx in self._batches(n_samples, batch_size, X.lengths):
                    batch, y_batch, weights = _take(X, y, sample_weight, idx)
                    batch_weight = float(weights.sum())
                    if batch_weight > 0:
                        masks = self._dropout_masks(len(idx), params[0].dtype)
                        loss, grads = self._loss_grad(
                            batch.values,
                            y_batch,
                            weights,
                            params,
                            batch.lengths,
                            masks,
                            workspace,
                            backend,
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
                    self._end_epoch(
                        seen,
                        epoch_loss / epoch_weight,
                        validation,
                        params,
                        workspace,
                        backend,
                    )
                    if self.verbose:
                        self._print_progress(time.perf_counter() - start)
                if interrupt.requested:
                    warn_user(
                        f"Training interrupted (KeyboardInterrupt) in epoch "
                        f"{self.n_iter_}, after {seen} of {n_samples} samples; the "
                        "model keeps the weights of the last completed mini-batch.",
                        UserWarning,
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
                    warn_user(
                        f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
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
        """Check, clip and apply one mini-batch's gradients (of the parameters
        that are not frozen)."""
        if len(self._trainable) < len(params):
            params = [params[i] for i in self._trainable]
            grads = [grads[i] for i in self._trainable]
        squared_norm = _squared_norm(grads)
        # Checked before the update, so the weights stay finite and usable.
        if not np.isfinite(loss + squared_norm):
            self._diverged("the training loss or its gradient")
        if self.max_grad_norm is not None:
            clip_grad_norm(grads, self.max_grad_norm, math.sqrt(squared_norm))
        self._optimizer.update_params(params, grads)

    def _end_epoch(self, n_seen, loss, validation, params, workspace, backend=None):
        self.n_iter_ += 1
        self.t_ += n_seen
        self.loss_ = loss
        self.loss_curve_.append(loss)
        if validation is not None:
            score = self._score_validated(*validation, workspace, backend)
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

    def _check_scale(self, y, sample_weight, dtype):
        """Raise if the targets or the weights are out of the range of ``dtype``
        that the loss needs, naming them rather than the learning rate."""
        limit = math.sqrt(np.finfo(dtype).max) * 1e-3
        if self.out_activation_ == "identity" and y.size:
            largest = float(np.abs(y).max())
            if not largest < limit:
                raise ValueError(
                    f"y holds values up to {largest:.3g}: beyond about {limit:.0e}, "
                    f"squared errors overflow {np.dtype(dtype).name}. Scale y first, "
                    "e.g. with sklearn.compose.TransformedTargetRegressor("
                    "transformer=StandardScaler())."
                )
        with np.errstate(over="ignore"):
            total = float(np.sum(sample_weight, dtype=dtype))
        if not total > 0:
            raise ValueError("The sample weights sum to zero: there is nothing to fit.")
        if not np.isfinite(total):
            raise ValueError(
                f"sample_weight sums to {total} in {np.dtype(dtype).name}: divide it "
                "by a constant (the loss depends only on the ratios of the weights; "
                "alpha's penalty is divided by their sum, see alpha)."
            )

    def _diverged(self, what):
        """Raise, saying what made the training non-finite and what to change."""
        message = (
            f"Training diverged: {what} became non-finite in epoch "
            f"{self.n_iter_ + 1} (the weights keep their last finite values): "
        )
        # The penalty's factor alpha / sum(sample_weight of the mini-batch) is
        # large enough to overflow the penalty's gradient on its own.
        scale = getattr(self, "_penalty_scale", 0.0)
        dtype = self.coefs_[0].dtype
        if self.alpha > 0 and not scale < math.sqrt(np.finfo(dtype).max) * 1e-6:
            weight_sum = self.alpha / scale if scale > 0 else 0.0
            if weight_sum >= 1.0:
                raise ValueError(
                    message + f"alpha={self.alpha:g} is out of range; the L2 "
                    f"penalty's factor alpha / sum(sample_weight) = {scale:.3g} of a "
                    "mini-batch overflows by itself. Use a far smaller alpha."
                )
            raise ValueError(
                message + f"the sample weights of a mini-batch sum to "
                f"{weight_sum:.3g}, so the L2 penalty's factor alpha / "
                f"sum(sample_weight) is {scale:.3g} and overflows. Multiply "
                "sample_weight by a constant "
                "(the loss depends only on the ratios of the weights) or set "
                "alpha=0."
            )
        raise ValueError(
            message + f"Lower learning_rate_init (now {self.learning_rate_init}) "
            f"or max_grad_norm (now {self.max_grad_norm})."
        )

    @abstractmethod
    def _validate_input(self, X, y, sample_weight, incremental, reset):
        """Validated 3D X, y encoded as the network's targets, and sample weights."""

    @abstractmethod
    def _decode(self, y):
        """Targets in the form that ``score`` compares with predictions."""

    def _score_validated(self, X, y, sample_weight, workspace=None, backend=None):
        """``score`` on validated X and targets ``y`` decoded by ``_decode``
        (one row per valid step with one output per step)."""
        raw = self._forward_raw(X, workspace, backend)
        return self._score_rows(raw, X, y, sample_weight)

    @abstractmethod
    def _score_rows(self, raw, X, y, sample_weight):
        """``score`` from the raw outputs ``raw`` of validated X (per step:
        ``y`` and ``sample_weight`` have one row per valid step)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
