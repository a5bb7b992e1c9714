"""LSTMRegressor and LSTMClassifier: thin layers over BaseLSTM."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._base import BaseLSTM
from ._losses import OUT_ACTIVATIONS
from ._validation import (
    FLOAT_DTYPES,
    spread_steps,
    step_targets,
)
from ._warnings import warn_user

_SHARED_PARAMETERS = """hidden_layer_sizes : int or sequence of int, default=(100,)
        Number of hidden units of each LSTM layer; one layer per entry, stacked so
        that the hidden states of one layer are the inputs of the next.

    bidirectional : bool, default=False
        Whether each LSTM layer also reads every sequence backward, from its own
        last step to its first (padding never enters), with its own weights (the
        ``"*_reverse"`` arrays of ``lstm_coefs_``). A layer's output at step t is
        then ``[h_forward_t | h_backward_t]``, twice its hidden units, as in
        PyTorch's ``nn.LSTM(bidirectional=True)`` and Keras' ``Bidirectional``.
        A bidirectional model needs whole sequences: its output at a step depends
        on the steps after it.

    pooling : {"last", "mean", "max", "none"}, default="last"
        What the output layer reads from the top LSTM layer's outputs:

        - ``"last"``: the output at each sequence's last step (with
          ``bidirectional``, ``[h_forward at the last step | h_backward at the
          first step]``, PyTorch's ``h_n``);
        - ``"mean"``, ``"max"``: the mean or the elementwise maximum of the
          outputs over each sequence's steps (never over padding), as Keras'
          ``GlobalAveragePooling1D`` / ``GlobalMaxPooling1D``; they help with
          long sequences, whose last state forgets the beginning;
        - ``"none"``: every step's output: one prediction per time step
          (sequence labelling). ``y`` then holds one target per step, in the form
          of X (see ``fit``), and ``predict`` returns one prediction per step in
          that form.

    embedding_dim : int or None, default=None
        With an int, X holds one integer token id per time step (as
        :class:`~sklearn_lstm.preprocessing.TextSequenceVectorizer` gives), and
        a learned table ``embedding_`` of vectors of ``embedding_dim`` values, one
        row per id, feeds the first LSTM layer (Keras' ``Embedding``, PyTorch's
        ``nn.Embedding``). X is then a list of 1D integer arrays, each element a
        step, or a 2D array (n_samples, n_timesteps) whose trailing zeros are
        padding. Id 0 is padding, never a token: a 0 in a list's sequence, or
        before the last nonzero id of an array's row, is an error, and every
        sequence needs a nonzero id. Integral floats are read as ids. The table
        has a row for each id up to the largest seen in the first fit; a larger
        id later (in ``predict``, ``score`` or ``partial_fit``) is an error.
        Sequences of any length can be predicted. The computation runs in
        float32 when the ids of the first fit come as float32 (an array, or a
        list of arrays, as ``TextSequenceVectorizer(dtype=np.float32)`` gives
        them), as for float32 numbers, else in float64. Dropout applies to the
        embedded vectors.

    solver : {"adam", "rmsprop", "sgd"}, default="adam"
        The optimizer of the weights: Adam (Kingma & Ba, as in PyTorch), RMSProp
        (``rho``, ``epsilon``), or stochastic gradient descent (``momentum``,
        ``nesterovs_momentum``).

    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / (2 * n) * sum ||W||^2`` over kernels,
        recurrent kernels and output weights (not biases), added to each
        mini-batch's loss, ``n`` being the sum of the mini-batch's sample weights
        (its number of samples without ``sample_weight``), as in MLP.

    batch_size : int or "auto", default="auto"
        Size of the mini-batches; ``"auto"`` is ``min(200, n_samples)``. Larger
        values are clipped to the number of samples.

    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the learning rate, for every solver. ``"invscaling"`` sets it to
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, ``t`` being the
        number of samples seen; ``"adaptive"`` divides it by 5 each time
        ``n_iter_no_change`` epochs bring no ``tol`` improvement.

    learning_rate_init : float, default=0.001
        The initial learning rate.

    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to shuffle the samples before each epoch.

    random_state : int, RandomState instance or None, default=None
        Decides the initial weights, the shuffling, the dropout masks and the
        validation split. Pass an int for reproducible results across calls: for
        given parameters and data they are the same bit for bit whether helper
        processes ran or not, whatever the joblib backend of a search, BLAS's
        thread limits or other fits running in other threads (every computation
        runs with BLAS on one thread: see ``n_jobs``).

    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with
        ``early_stopping``) has not improved by at least ``tol`` for
        ``n_iter_no_change`` consecutive epochs.

    verbose : bool, default=False
        Print one line per epoch: epoch number, training loss, validation score
        (with ``early_stopping``) and elapsed time.

    warm_start : bool, default=False
        When True, ``fit`` continues from the current weights and the optimizer's
        state (moments, step count, learning rate); ``n_iter_`` and ``loss_curve_``
        keep growing.

    momentum : float, default=0.9
        Momentum of the ``"sgd"`` solver, between 0 and 1.

    nesterovs_momentum : bool, default=True
        Whether the ``"sgd"`` solver uses Nesterov's momentum.

    early_stopping : bool, default=False
        Set aside ``validation_fraction`` of the training data{stratified}, stop when
        the validation score has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights with the best validation score.

    validation_fraction : float, default=0.1
        Proportion of the training data set aside with ``early_stopping``.

    beta_1 : float, default=0.9
        Decay of Adam's first-moment estimate, in [0, 1).

    beta_2 : float, default=0.999
        Decay of Adam's second-moment estimate, in [0, 1).

    rho : float, default=0.9
        Decay of RMSProp's running mean of squared gradients, in [0, 1).

    epsilon : float, default=1e-8
        Term added to the denominator of Adam and RMSProp for numerical stability.

    n_iter_no_change : int, default=10
        Number of epochs without ``tol`` improvement before training stops.

    max_grad_norm : float or None, default=5.0
        Before each update, the gradients of all weights are scaled down together
        when their global L2 norm exceeds this value (as PyTorch's
        ``clip_grad_norm_``). Recurrent networks occasionally meet a batch whose
        gradient is orders of magnitude larger than usual ("exploding gradients");
        clipping keeps such a batch from throwing the weights far away, while
        ordinary batches (norms well below 5 with standardised data) pass
        unchanged. None disables clipping.

    dropout : float, default=0.0
        Fraction of each LSTM layer's inputs dropped during training. The dropout
        is variational: one mask per sequence, shared by all its time steps, with
        the kept inputs scaled by ``1 / (1 - dropout)``; masks are drawn from
        ``random_state``. Never applied by ``predict``.

    recurrent_dropout : float, default=0.0
        Fraction of the hidden state fed back into each layer's recurrence dropped
        during training, variational like ``dropout``.

    n_jobs : int or None, default=None
        Into how many shares each mini-batch (and each large prediction) is cut,
        to be computed in parallel by this process and helper processes, each
        with BLAS on one thread. None means 1: one share computed in the calling
        thread, also with BLAS on one thread; no process is ever started with
        None or 1. ``-1`` means as many shares as the cores this process may
        use, counted as joblib counts them (so its results depend on the
        machine: pass an int to reproduce them elsewhere). The shares, and the
        order in which their gradients are added, depend on ``n_jobs`` alone;
        how many processes compute them is capped by the cores available and
        BLAS's thread limit (e.g. inside joblib workers), and falls back to this
        process when helpers cannot run or other programs keep the cores busy,
        with the same results. See Notes.

    init : dict or None, default=None
        Starting weights of every fit that is not a warm start (as ``init`` of
        :class:`~sklearn.cluster.KMeans` or :class:`~sklearn.decomposition.NMF`
        takes an array): a dict with any of the keys ``"lstm_coefs_"``,
        ``"coefs_"``, ``"intercepts_"`` and ``"embedding_"``, each in the form of
        the fitted attribute of that name, e.g. ``{"lstm_coefs_":
        other.lstm_coefs_, "coefs_": other.coefs_, "intercepts_":
        other.intercepts_}`` of another fitted model. The weights it holds are
        copied (into the dtype of the computation) at the start of each fit;
        those it lacks are drawn as usual, so a pretrained ``"embedding_"`` alone
        is a valid start (its rows then fix the ids the model reads). As a
        constructor parameter, it is kept by :func:`~sklearn.base.clone`, so every
        fit of a :class:`~sklearn.model_selection.GridSearchCV` starts from it.
        The shapes must be those of the network that the other parameters and
        the data describe. ``random_state`` still decides the shuffling, the
        dropout masks and the validation split (the same draws as without
        ``init``). ``warm_start`` and ``partial_fit`` continue from the current
        weights instead. :func:`sklearn_lstm.interop.from_torch` and
        :func:`~sklearn_lstm.interop.from_keras` set it to the weights they
        read.

    frozen : str, list of str or None, default=None
        Parts of the network that training leaves bit for bit unchanged (in
        ``fit``, with ``warm_start``, and in ``partial_fit``): ``"embedding"``,
        ``"lstm"`` (every LSTM layer), ``"lstm_0"``, ``"lstm_1"``, ... (one
        layer, counted from the input) and ``"output"`` (the dense layer).
        Neither their gradient, nor ``alpha``'s penalty, nor the optimizer's
        momentum moves them, and ``max_grad_norm`` clips the gradient of the
        other parts only, as PyTorch's ``requires_grad=False``. Typical with
        ``init``: fine-tune the output layer (``frozen="lstm"``) of a pretrained
        network, or keep a pretrained embedding (``frozen="embedding"``).
        Changing ``frozen`` between warm starts restarts the optimizer's state."""

_SHARED_ATTRIBUTES = """loss_ : float
        Mean training loss of the last epoch, L2 penalty included.

    loss_curve_ : list of float
        Mean training loss of each epoch.

    best_loss_ : float or None
        Lowest training loss seen; None with ``early_stopping``.

    validation_scores_ : list of float or None
        Score on the validation set after each epoch ({score}); None without
        ``early_stopping``.

    best_validation_score_ : float or None
        Best of ``validation_scores_``; None without ``early_stopping``.

    n_iter_ : int
        Number of epochs run.

    t_ : int
        Number of training samples seen by the optimizer.

    embedding_ : ndarray of shape (n_tokens, embedding_dim)
        Only with ``embedding_dim``: the vector of each token id, ``n_tokens``
        being the largest id seen in the first fit plus one (at least 2). Row 0
        is padding's, which training never moves. Initialised uniform in
        [-0.05, 0.05] (Keras' default), not penalised by ``alpha``; a live
        parameter like ``lstm_coefs_``.

    lstm_coefs_ : list of dict
        The weights of each LSTM layer, with ``H`` its number of hidden units:
        ``"kernel"`` of shape (n_inputs_of_layer, 4 * H), ``"recurrent_kernel"`` of
        shape (H, 4 * H) and ``"bias"`` of shape (4 * H,); the gates are stacked
        ``[input | forget | cell | output]`` along the last axis, the order of
        PyTorch and Keras. With ``bidirectional``, also ``"kernel_reverse"``,
        ``"recurrent_kernel_reverse"`` and ``"bias_reverse"``, the same for the
        backward direction (PyTorch's ``*_reverse`` tensors). A layer's inputs
        are the features per time step (first layer) or the outputs of the layer
        below (``2 * H_below`` with ``bidirectional``, forward half first). These
        are the live parameters: writing into them changes what ``predict``
        computes and is where ``partial_fit`` and ``warm_start`` continue from.

    coefs_ : list of one ndarray of shape (D, n_outputs)
        Weights of the dense output layer, applied to what ``pooling`` reads from
        the last layer's outputs; ``D`` is its number of hidden units, twice that
        with ``bidirectional``.

    intercepts_ : list of one ndarray of shape (n_outputs,)
        Bias of the dense output layer.

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Name of the output activation.

    n_features_in_ : int
        Features per time step for 3D input; number of columns (time steps) for 2D
        input, as in every scikit-learn estimator; 1 (one id per step) with
        ``embedding_dim``, whatever the number of columns.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when fitted on a 2D DataFrame with string column names."""

_NOTES = """The network reads each sequence step by step::

        z_t = x_t W + h_(t-1) U + b,   [i | f | g | o] = gates of z_t
        i, f, o = sigmoid(.),  g = tanh(.)
        c_t = f * c_(t-1) + i * g,    h_t = o * tanh(c_t)

    with ``h_0 = c_0 = 0``, ``W``, ``U``, ``b`` the ``"kernel"``,
    ``"recurrent_kernel"`` and ``"bias"`` of ``lstm_coefs_``; the output layer reads
    ``h_T`` of the last LSTM layer (or, as ``pooling`` says, the mean or maximum
    of its ``h_t`` over the valid steps, or each ``h_t``). These are the
    equations of PyTorch's ``nn.LSTM``, whose single bias is ``bias_ih +
    bias_hh``; ``bidirectional=True`` runs them a second time from each
    sequence's last step back to its first, as ``nn.LSTM(bidirectional=True)``
    on packed sequences.

    X may be a 3D array-like of shape (n_samples, n_timesteps, n_features), a list
    of sequences of any lengths (each (n_timesteps_i, n_features), or
    (n_timesteps_i,) for one feature), or a 2D array-like of shape
    (n_samples, n_timesteps) read as univariate sequences. Arrays may be
    right-padded with NaN: trailing steps that are NaN in every feature are
    padding, and each sequence is read up to its own last step; NaN anywhere else
    is an error (the ``allow_nan`` tag is False: NaN marks padding, not missing
    values). Fitted on 3D input or a list, the model predicts sequences of any
    length; fitted on 2D input, it follows scikit-learn's convention that the
    number of columns is fixed. With ``embedding_dim``, X holds token ids
    instead (see ``embedding_dim``).

    Computations run in float32 when X is float32 and in float64 otherwise (and
    with ``embedding_dim``).
    Kernels are initialised Glorot-uniform, recurrent kernels orthogonal, biases to
    zero except the forget gate's, set to 1.

    Cores: with the default ``n_jobs=None``, a fit or a prediction runs in the
    calling thread. With ``n_jobs=k``, each mini-batch is cut into ``k``
    interleaved shares whose losses and gradients are added in the order of the
    shares. Either way every share is computed with BLAS on one thread (this
    process's BLAS is held to one thread meanwhile, and given back its limit
    afterwards): a BLAS cuts a product among its threads in ways that change the
    last bits of its sums, so results would otherwise depend on the machine and
    on joblib's limits in a search; when a mini-batch is large enough (and on
    POSIX systems), this process computes one share and helper processes the
    others. Helpers are fresh, isolated Python processes (``python -I``) that
    run the engine this process loaded and NumPy only; they start with the
    first fit or prediction that needs them, are never pinned to cores, and
    exit after 45 s without work or with this process. A helper that stops
    answering, dies or cannot start is ended with a warning and its shares are
    computed here: the result does not change. Two ``n_jobs`` values give
    results that differ in the order of floating-point sums, a difference that
    many epochs can grow."""


class LSTMRegressor(RegressorMixin, BaseLSTM):
    __doc__ = f"""Long short-term memory network regressor.

    Trains a stack of LSTM layers and a dense identity output on the last time step
    (or on pooled steps, or on every step: see ``pooling``) by backpropagation
    through time, minimising the mean over samples (over steps) of
    ``0.5 * ||y - y_pred||^2`` plus the L2 penalty.

    Parameters
    ----------
    {_SHARED_PARAMETERS.replace("{stratified}", "")}

    Attributes
    ----------
    {_SHARED_ATTRIBUTES.replace("{score}", "R^2")}

    See Also
    --------
    LSTMClassifier : LSTM network classifier.
    sklearn.neural_network.MLPRegressor : Feed-forward network on flat features.
    sklearn_lstm.interop.from_torch : A fitted model from PyTorch modules.
    sklearn_lstm.interop.to_torch : The fitted network as a PyTorch module.

    Notes
    -----
    {_NOTES}

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm import LSTMRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(size=(200, 10, 1))
    >>> y = X[:, :, 0].sum(axis=1)
    >>> reg = LSTMRegressor(hidden_layer_sizes=16, learning_rate_init=0.01,
    ...                     max_iter=50, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    >>> [w.shape for w in reg.lstm_coefs_[0].values()]
    [(1, 64), (16, 64), (64,)]
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        bidirectional=False,
        pooling="last",
        embedding_dim=None,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        rho=0.9,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_grad_norm=5.0,
        dropout=0.0,
        recurrent_dropout=0.0,
        n_jobs=None,
        init=None,
        frozen=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            bidirectional=bidirectional,
            pooling=pooling,
            embedding_dim=embedding_dim,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            rho=rho,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_grad_norm=max_grad_norm,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            n_jobs=n_jobs,
            init=init,
            frozen=frozen,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences (see Notes for the forms and NaN padding).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values. With ``pooling="none"``, one target per time step in
            the form of X: array-like of shape (n_samples, n_timesteps) or
            (n_samples, n_timesteps, n_outputs) (entries at X's padding steps are
            ignored, whatever they hold), or a list of array-likes of shape
            (n_timesteps_i,) or (n_timesteps_i, n_outputs).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the sequences: the loss is the weighted mean
            over samples (over all steps with ``pooling="none"``, each step
            weighted by its sequence's weight).

        Returns
        -------
        self : LSTMRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over (X, y), continuing from the current weights.

        The optimizer's state is kept between calls; the first call initialises
        the weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences (see Notes for the forms and NaN padding).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values. With ``pooling="none"``, one target per time step in
            the form of X: array-like of shape (n_samples, n_timesteps) or
            (n_samples, n_timesteps, n_outputs) (entries at X's padding steps are
            ignored, whatever they hold), or a list of array-likes of shape
            (n_timesteps_i,) or (n_timesteps_i, n_outputs).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the sequences: the loss is the weighted mean
            over samples (over all steps with ``pooling="none"``, each step
            weighted by its sequence's weight).

        Returns
        -------
        self : LSTMRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict with the LSTM network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the same form as in ``fit`` (a list and a 3D array
            are interchangeable).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values. With ``pooling="none"``, one prediction per time
            step in the form of X: a list of arrays (n_timesteps_i,) or
            (n_timesteps_i, n_outputs) for a list of sequences, else an array
            (n_samples, n_timesteps) or (n_samples, n_timesteps, n_outputs)
            holding NaN at padding steps.
        """
        return self._predict_with(X, self._values)

    def _values(self, raw):
        return raw.ravel() if self.n_outputs_ == 1 else raw

    def _check_generative(self):
        network = self._network
        if network.embedding is not None:
            raise ValueError(
                "generate feeds each prediction back as the next step's input, but "
                "this model reads token ids (embedding_dim) and predicts numbers. "
                "Use an LSTMClassifier whose classes are the token ids."
            )
        n_inputs = network.lstm[0].n_inputs
        if self.n_outputs_ != n_inputs:
            raise ValueError(
                f"generate feeds each prediction back as the next step's input, but "
                f"this model predicts {self.n_outputs_} value(s) and reads "
                f"{n_inputs} feature(s) per step. Train it to predict the next step "
                "(y of shape (n_samples, n_features), or per step with "
                'pooling="none").'
            )

    def _next_input(self, temperature, rng):
        return lambda raw: raw  # the identity output activation

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of the predictions.

        With ``pooling="none"``, over all valid time steps of all sequences (each
        step a row of ``r2_score``, weighted by its sequence's weight).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Test sequences.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values; one per time step with ``pooling="none"``, as in ``fit``.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the sequences.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)`` against ``y``.
        """
        check_is_fitted(self)
        if self._network.per_step:
            return self._score_steps(X, y, sample_weight)
        return super().score(X, y, sample_weight)

    def _validate_input(self, X, y, sample_weight, incremental, reset):
        X = self._validate_X(X, reset=reset)
        y = _check_y_present(self, y)
        per_step = self.pooling == "none"
        if per_step:
            y = step_targets(y, X)  # one row per valid step
        y = check_array(
            y, ensure_2d=False, dtype=FLOAT_DTYPES, input_name="y", estimator=self
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = _single_column(y, per_step)
        if y.ndim > 2:
            raise ValueError(f"y must be 1D or 2D, got an array of shape {y.shape}.")
        sample_weight = self._check_sample_weight(sample_weight, X)
        self.out_activation_ = "identity"
        if per_step:
            return X, *spread_steps(y, X, sample_weight)
        check_consistent_length(X.values, y)
        return X, y, sample_weight

    def _decode(self, y):
        return y

    def _score_rows(self, raw, X, y, sample_weight):
        y_pred = self._values(self._step_rows(raw, X))
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class LSTMClassifier(ClassifierMixin, BaseLSTM):
    _parameter_constraints: dict = {
        **BaseLSTM._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, list, None],
    }

    __doc__ = f"""Long short-term memory network classifier.

    Trains a stack of LSTM layers and a dense output on the last time step (or on
    pooled steps, or on every step: see ``pooling``) by backpropagation through
    time, minimising the log-loss plus the L2 penalty.
    Binary targets use one logistic output unit, multiclass targets a softmax over
    ``n_classes`` units, and multilabel indicator targets one independent logistic
    unit per label. Labels may be of any type, strings included.

    Parameters
    ----------
    {_SHARED_PARAMETERS.replace("{stratified}", " (stratified by class)")}

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``: a dict
        ``{{label: weight}}`` (a list of such dicts for multilabel targets), or
        ``"balanced"`` for ``n_samples / (n_classes * np.bincount(y))``, computed on
        the data given to ``fit``. ``partial_fit`` takes only a dict, since one
        batch does not show the class frequencies.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.

    {_SHARED_ATTRIBUTES.replace("{score}", "accuracy")}

    See Also
    --------
    LSTMRegressor : LSTM network regressor.
    sklearn.neural_network.MLPClassifier : Feed-forward network on flat features.
    sklearn_lstm.interop.from_torch : A fitted model from PyTorch modules.
    sklearn_lstm.interop.to_torch : The fitted network as a PyTorch module.

    Notes
    -----
    {_NOTES}

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm import LSTMClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 8, 2))
    >>> y = np.where(X[:, 0, 0] > 0, "up", "down")
    >>> clf = LSTMClassifier(hidden_layer_sizes=8, max_iter=20,
    ...                      random_state=0).fit(X, y)
    >>> clf.classes_
    array(['down', 'up'], dtype='<U4')
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        bidirectional=False,
        pooling="last",
        embedding_dim=None,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        rho=0.9,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_grad_norm=5.0,
        dropout=0.0,
        recurrent_dropout=0.0,
        n_jobs=None,
        init=None,
        frozen=None,
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            bidirectional=bidirectional,
            pooling=pooling,
            embedding_dim=embedding_dim,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            rho=rho,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_grad_norm=max_grad_norm,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            n_jobs=n_jobs,
            init=init,
            frozen=frozen,
        )
        self.class_weight = class_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences (see Notes for the forms and NaN padding).

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator matrix for multilabel targets.
            With ``pooling="none"``, one label (or indicator row) per time step
            in the form of X, as for :class:`LSTMRegressor`: entries at X's
            padding steps are ignored, whatever they hold.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, multiplied by the ``class_weight`` of each
            sample's class: the loss is the weighted mean over samples.

        Returns
        -------
        self : LSTMClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over (X, y), continuing from the current weights.

        The optimizer's state is kept between calls; the first call initialises
        the weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences (see Notes for the forms and NaN padding).

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator matrix for multilabel targets.
            With ``pooling="none"``, one label (or indicator row) per time step
            in the form of X, as for :class:`LSTMRegressor`: entries at X's
            padding steps are ignored, whatever they hold.

        classes : array-like of shape (n_classes,), default=None
            Every class that may appear in any call; required on the first call
            (it may be omitted on later calls and after ``fit``).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, multiplied by the ``class_weight`` of each
            sample's class.

        Returns
        -------
        self : LSTMClassifier
            The updated estimator.
        """
        if classes is not None and not hasattr(self, "classes_"):
            distinct = np.unique(np.asarray(classes))
            if len(distinct) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes, but classes "
                    f"holds {len(distinct)}: {distinct.tolist()!r}."
                )
        if _check_partial_fit_first_call(self, classes):
            # Fitted by _validate_input, from y's rows: with pooling="none" the raw
            # y holds steps, and (n, T) labels would read as a multilabel matrix.
            self._label_binarizer = None
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, sample_weight, incremental, reset):
        X = self._validate_X(X, reset=reset)
        y = _check_y_present(self, y)
        per_step = self.pooling == "none"
        if per_step:
            y = step_targets(y, X)  # one row per valid step
        y = check_array(
            y, ensure_2d=False, dtype=None, input_name="y", estimator=self
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = _single_column(y, per_step)
        if not per_step:
            check_consistent_length(X.values, y)
        check_classification_targets(y)

        if not incremental and (not self.warm_start or not hasattr(self, "classes_")):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes, but "
                    f"the data contains only one class: {self.classes_[0]!r}."
                )
        else:
            if self._label_binarizer is None:  # partial_fit's first call
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(self.classes_)
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where y has the same classes as "
                        f"in the previous call to fit. Previously got {self.classes_}, "
                        f"y has {classes}."
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"y has classes not in self.classes_. self.classes_ has "
                    f"{self.classes_}; y has {classes}."
                )
        binarizer = self._label_binarizer
        self.out_activation_ = (
            "softmax" if binarizer.y_type_ == "multiclass" else "logistic"
        )
        sample_weight = self._check_sample_weight(sample_weight, X)
        class_weights = None
        if self.class_weight is not None:
            if incremental and self.class_weight == "balanced":
                raise ValueError(
                    'class_weight="balanced" needs the class frequencies of the whole '
                    "data set, which partial_fit does not see; pass a dict, e.g. "
                    "computed by sklearn.utils.class_weight.compute_class_weight."
                )
            class_weights = compute_sample_weight(self.class_weight, y)
            if not (np.isfinite(class_weights) & (class_weights >= 0)).all():
                raise ValueError(
                    "class_weight must give every class a finite, non-negative "
                    f"weight; got {self.class_weight!r}."
                )
        y = binarizer.transform(y).astype(X.dtype, copy=False)
        if per_step:  # class weights weigh steps, sample weights sequences
            return X, *spread_steps(y, X, sample_weight, class_weights)
        if class_weights is not None:
            sample_weight = sample_weight * class_weights
        return X, y, sample_weight

    def _decode(self, y):
        return self._label_binarizer.inverse_transform(y)

    def _score_rows(self, raw, X, y, sample_weight):
        y_pred = self._decode(self._proba(self._step_rows(raw, X)))
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of the predictions.

        With ``pooling="none"``, over all valid time steps of all sequences (each
        step weighted by its sequence's weight). For multilabel targets, the
        subset accuracy, as in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Test sequences.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            True labels; one per time step with ``pooling="none"``, as in ``fit``.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the sequences.

        Returns
        -------
        score : float
            Accuracy of ``self.predict(X)`` against ``y``.
        """
        check_is_fitted(self)
        if self._network.per_step:
            return self._score_steps(X, y, sample_weight)
        return super().score(X, y, sample_weight)

    def _proba(self, raw):
        return OUT_ACTIVATIONS[self.out_activation_](raw)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the same form as in ``fit`` (a list and a 3D array
            are interchangeable).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predicted classes (an indicator matrix for multilabel targets).
        """
        return self._predict_with(X, self._labels)

    def _labels(self, raw):
        return self._decode(self._proba(raw))

    def _check_generative(self):
        network = self._network
        reason = None
        if network.embedding is None:
            reason = (
                "this model reads numbers, not token ids: fit it with embedding_dim "
                "on token ids"
            )
        elif self._label_binarizer.y_type_ == "multilabel-indicator":
            reason = "a multilabel model predicts several labels per step"
        elif self.classes_.dtype.kind not in "iu":
            reason = f"its classes are not integer ids (dtype {self.classes_.dtype})"
        else:
            n_tokens = network.embedding.n_tokens
            bad = self.classes_[(self.classes_ < 1) | (self.classes_ >= n_tokens)]
            if len(bad):
                reason = (
                    f"class {bad[0]} is not a token of the embedding (ids 1 to "
                    f"{n_tokens - 1}; 0 is padding)"
                )
        if reason is not None:
            raise ValueError(
                "generate feeds each predicted class back as the next step's token "
                f"id, but {reason}. Train on next-token targets: y holds the token "
                'that follows each step (pooling="none") or each sequence.'
            )

    def _next_input(self, temperature, rng):
        classes = self.classes_
        if temperature == 0:
            return self._labels

        def draw(raw):
            log_proba = self._log_probabilities(raw)
            weights = np.exp((log_proba - log_proba.max(axis=1, keepdims=True))
                             / temperature)
            cumulative = np.cumsum(weights, axis=1)
            u = rng.random_sample(len(raw)) * cumulative[:, -1]
            chosen = (cumulative <= u[:, np.newaxis]).sum(axis=1)
            return classes[np.minimum(chosen, len(classes) - 1)]

        return draw

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the same form as in ``fit`` (a list and a 3D array
            are interchangeable).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``. For multilabel
            targets, the probability of each label, independently.
        """
        return self._predict_with(X, self._probabilities)

    def _probabilities(self, raw):
        proba = self._proba(raw)
        if self._label_binarizer.y_type_ == "binary":
            return np.hstack([1.0 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates, computed from the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the same form as in ``fit`` (a list and a 3D array
            are interchangeable).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class, in the order of ``classes_``.
        """
        return self._predict_with(X, self._log_probabilities)

    def _log_probabilities(self, raw):
        if self.out_activation_ == "softmax":
            shifted = raw - raw.max(axis=1, keepdims=True)
            return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        # log sigmoid(z) = -log(1 + exp(-z)), without overflow.
        log_p = -np.logaddexp(0.0, -raw)
        if self._label_binarizer.y_type_ == "binary":
            return np.hstack([-np.logaddexp(0.0, raw), log_p])
        return log_p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _single_column(y, per_step):
    """The one column of the 2D rows ``y`` as a 1D array, with scikit-learn's
    DataConversionWarning: predictions will be 1D, not one column.

    With one target per step, the rows are steps, and the advice of
    ``column_or_1d`` (reshape y to (n_samples,) with ``ravel()``) would be wrong.
    """
    if not per_step:
        return column_or_1d(y, warn=True)
    warn_user(
        "y has one target per time step and a last axis of size 1: predictions "
        "will have one value per step, without that axis. Pass y of shape "
        "(n_samples, n_timesteps), or a list of arrays of shape (n_timesteps_i,), "
        "to silence this warning.",
        DataConversionWarning,
    )
    return y[:, 0]


def _check_y_present(estimator, y):
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y "
            "is None."
        )
    return y
