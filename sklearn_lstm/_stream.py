"""Step-by-step prediction: the state of a fitted network carried from one call
to the next, and generation by feeding outputs back as inputs.

A :class:`SequenceStream` holds, for each of its streams, what the network knows
after the steps it has read: ``h`` and ``c`` of every layer, and what the pooling
keeps (the running sum and count of the top layer's outputs for ``"mean"``, their
running maximum for ``"max"``; nothing more for ``"last"`` and ``"none"``, whose
output after step ``t`` reads ``h_t`` alone). One new step costs one step of the
network, whatever the length of the history.

The equations are those of ``_engine``; the layout is the row-major one, ``(n, H)``
per stream, because a stream advances few sequences a few steps at a time, where
the count of NumPy calls per step is the whole cost. Per layer and step::

    z = [h_{t-1} | x_t | 1] M      M = [U; W; b] (H + F + 1, 4H), gates [g | i | f | o]
    z = tanh(z)                     the sigmoid columns of M are halved, so that
    i, f, o = (z + 1) / 2           sigmoid(a) = (tanh(a / 2) + 1) / 2
    c = f c + i g;  h = o tanh(c)

``h`` is written straight into the first ``H`` columns of ``[h | x | 1]``.
"""

import copy

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils._available_if import available_if

__all__ = ["SequenceStream"]


def _stream_gates(UWb, H):
    """``[U; W; b]`` (rows, 4H) in the public gate order ``[i | f | g | o]``
    reordered as ``[g | i | f | o]``, the sigmoid columns halved (exactly)."""
    i, f, g, o = (UWb[:, k * H : (k + 1) * H] for k in range(4))
    return np.ascontiguousarray(np.hstack([g, 0.5 * i, 0.5 * f, 0.5 * o]))


class SequenceStream:
    """The state of a fitted LSTM estimator over ``n_streams`` sequences, read a
    few steps at a time.

    Made by :meth:`LSTMRegressor.stream` and :meth:`LSTMClassifier.stream`. Each
    call to :meth:`predict` (or :meth:`predict_proba` for a classifier) reads the
    next steps of every stream and returns the prediction after each of them: what
    the estimator's ``predict`` returns for the sequence read so far (with
    ``pooling="none"``, its prediction for that step). The weights are copied when
    the stream is made: training the estimator afterwards does not change it.

    Attributes
    ----------
    n_streams : int
        Number of sequences read side by side.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm import LSTMRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(40, 12, 2))
    >>> reg = LSTMRegressor(8, max_iter=30, random_state=0).fit(X, X[:, :, 0].sum(1))
    >>> stream = reg.stream()
    >>> first = stream.predict(X[0, :5])      # 5 steps of one stream: 5 predictions
    >>> last = stream.predict(X[0, 5:])       # the 7 steps after them
    >>> bool(np.allclose(last[-1], reg.predict(X[:1])[0]))
    True
    """

    def __init__(self, estimator, n_streams=1):
        network = estimator._network
        if network.bidirectional:
            raise ValueError(
                "A bidirectional model cannot be streamed: its backward direction "
                "reads each sequence from its last step, which a stream has not "
                "seen yet. Fit a model with bidirectional=False to predict step by "
                "step."
            )
        if isinstance(n_streams, bool) or not isinstance(n_streams, int | np.integer):
            raise TypeError(f"n_streams must be an int, got {n_streams!r}.")
        if n_streams < 1:
            raise ValueError(f"n_streams must be at least 1, got {n_streams}.")
        self.n_streams = int(n_streams)
        params = estimator._check_weights()
        self._dtype = params[-1].dtype
        *layers, (W_out, b_out) = network.layer_params(params)
        self._table = None
        if network.embedding is not None:
            (table,), *layers = layers
            self._table = table.copy()
        self._weights = [
            _stream_gates(np.vstack([U, W, b[np.newaxis]]), U.shape[0])
            for W, U, b in layers
        ]
        self._W_out, self._b_out = W_out.copy(), b_out.copy()
        self._n_inputs = network.lstm[0].n_inputs
        self._pooling = network.pooling
        # What turns raw outputs into predictions: the estimator as it is now
        # (a shallow copy: a later fit replaces these attributes, it does not
        # change them in place).
        self._estimator = copy.copy(estimator)
        self._classifier = is_classifier(estimator)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self):
        """Forget every step read: each stream starts a new sequence.

        Returns
        -------
        self : SequenceStream
        """
        n, dtype = self.n_streams, self._dtype
        self._hx, self._c = [], []
        for M in self._weights:
            H = M.shape[1] // 4
            hx = np.zeros((n, M.shape[0]), dtype=dtype)  # [h | x | 1]
            hx[:, -1] = 1.0
            self._hx.append(hx)
            self._c.append(np.zeros((n, H), dtype=dtype))
        D = self._W_out.shape[0]
        self._pool = self._seen = None
        if self._pooling == "mean":
            self._pool = np.zeros((n, D), dtype=dtype)  # running sum
            self._seen = np.zeros((n, 1), dtype=dtype)  # steps read by each stream
        elif self._pooling == "max":
            self._pool = np.full((n, D), -np.inf, dtype=dtype)
        self._views = None
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_views"] = None  # views of the state arrays, rebuilt on use
        return state

    def _step_views(self):
        """Per layer: the views and work arrays one step uses."""
        if self._views is None:
            views = []
            n = self.n_streams
            for M, hx, c in zip(self._weights, self._hx, self._c):
                H = c.shape[1]
                z = np.empty((n, 4 * H), dtype=self._dtype)
                views.append(
                    (M, hx, c, hx[:, :H], hx[:, H:-1], z, z[:, H:], z[:, :H],
                     z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :],
                     np.empty_like(c), np.empty_like(c))
                )
            self._views = views
        return self._views

    # ------------------------------------------------------------------ steps
    def _step(self, x, active=None):
        """Advance every stream by one step of inputs ``x`` ((n, F), or (n,) ids)
        and return what the output layer reads after it (n, D). Streams where
        ``active`` is False keep their state."""
        views = self._step_views()
        if active is not None:
            kept = ~active
            saved = [(hx[kept].copy(), c[kept].copy()) for _, hx, c, *_ in views]
        dot, tanh, multiply, add = np.dot, np.tanh, np.multiply, np.add
        for k, (M, hx, c, h, inp, z, sig, g, i, f, o, ig, tc) in enumerate(views):
            if k == 0:
                if self._table is None:
                    inp[...] = x
                else:
                    inp[...] = self._table[x]
            else:
                inp[...] = views[k - 1][3]
            dot(hx, M, out=z)
            tanh(z, out=z)
            multiply(sig, 0.5, out=sig)
            add(sig, 0.5, out=sig)  # i, f, o = sigmoid; g = tanh
            multiply(i, g, out=ig)
            multiply(c, f, out=c)
            add(c, ig, out=c)  # c_t = f * c_{t-1} + i * g
            tanh(c, out=tc)
            multiply(o, tc, out=h)  # h_t = o * tanh(c_t)
        top = views[-1][3]
        if active is not None:
            for (_, hx, c, *_), (hx_kept, c_kept) in zip(views, saved):
                hx[kept], c[kept] = hx_kept, c_kept
        # The pooling reads this step only where a stream is active.
        where = True if active is None else active[:, np.newaxis]
        if self._pooling == "mean":
            add(self._seen, 1, out=self._seen, where=where)
            add(self._pool, top, out=self._pool, where=where)
            return self._pool / self._seen
        if self._pooling == "max":
            np.maximum(self._pool, top, out=self._pool, where=where)
            return self._pool
        return top

    def _advance(self, X, lengths=None):
        """Read the steps ``X`` ((n, k, F), or (n, k) ids) of every stream and
        return what the output layer reads after each (k, n, D). With
        ``lengths``, stream ``b`` reads only its first ``lengths[b]`` steps."""
        n, k = X.shape[:2]
        pooled = np.empty((k, n, self._W_out.shape[0]), dtype=self._dtype)
        for t in range(k):
            active = None
            if lengths is not None and t >= lengths.min():
                active = t < lengths
            pooled[t] = self._step(X[:, t], active)
        return pooled

    def _raw(self, pooled):
        """Raw outputs (..., n_outputs) of the output layer on ``pooled`` (..., D)."""
        out = pooled @ self._W_out
        out += self._b_out
        return out

    # ------------------------------------------------------------------ input
    def _check_steps(self, X_new):
        """``X_new`` as (n_streams, k, F) floats or (n_streams, k) ids, and whether
        it was given for a single stream (without the streams' axis)."""
        ids = self._table is not None
        if ids:
            every, one = "(n_streams, n_new_steps) token ids", "(n_new_steps,)"
        else:
            every = "(n_streams, n_new_steps, n_features)"
            one = "(n_new_steps, n_features)"
        try:
            X = np.asarray(X_new)
        except ValueError as exc:  # sequences of different shapes
            raise ValueError(
                f"X_new must be one array of shape {every}: every stream reads "
                "the same number of new steps in a call, but X_new holds "
                "sequences of different shapes."
            ) from exc
        one_stream_ndim = 1 if ids else 2
        single = X.ndim == one_stream_ndim
        if X.ndim not in (one_stream_ndim, one_stream_ndim + 1):
            raise ValueError(
                f"X_new must be an array of shape {every}, or {one} for a single "
                f"stream; got shape {X.shape}."
            )
        if single:
            if self.n_streams != 1:
                raise ValueError(
                    f"This stream reads {self.n_streams} sequences; X_new must be of "
                    f"shape {every}, got shape {X.shape}."
                )
            X = X[np.newaxis]
        if X.shape[0] != self.n_streams:
            raise ValueError(
                f"X_new holds {X.shape[0]} sequences but this stream reads "
                f"{self.n_streams}."
            )
        if X.shape[1] == 0:
            raise ValueError("X_new holds no step; at least 1 is required.")
        if ids:
            return self._check_ids(X), single
        if X.shape[2] != self._n_inputs:
            raise ValueError(
                f"X_new has {X.shape[2]} features per step, but the model reads "
                f"{self._n_inputs}."
            )
        if X.dtype.kind not in "fiub":
            raise TypeError(f"X_new must hold numbers, got dtype {X.dtype}.")
        if not np.isfinite(X).all():
            raise ValueError(
                "X_new holds NaN or infinity: a stream reads real steps only, "
                "without padding."
            )
        return X, single

    def _check_ids(self, X):
        if X.dtype.kind == "f":
            if not np.isfinite(X).all() or (X != np.round(X)).any():
                raise ValueError("X_new holds token ids that are not integers.")
        elif X.dtype.kind not in "iu":
            raise TypeError(f"X_new must hold integer token ids, got dtype {X.dtype}.")
        n_tokens = len(self._table)
        bad = (X <= 0) | (X >= n_tokens)
        if bad.any():
            s, t = np.argwhere(bad)[0]
            raise ValueError(
                f"id {X[s, t]} of stream {s}, new step {t} is not a token of the "
                f"embedding: ids run from 1 to {n_tokens - 1} (0 is padding, never "
                "a step)."
            )
        return X.astype(np.intp, copy=False)

    # -------------------------------------------------------------- predictions
    def _predict(self, X_new, transform):
        X, single = self._check_steps(X_new)
        pooled = self._advance(X)
        k, n = pooled.shape[:2]
        out = transform(self._raw(pooled).reshape(k * n, -1))  # rows step-major
        out = out.reshape((k, n) + out.shape[1:]).swapaxes(0, 1)
        return out[0] if single else np.ascontiguousarray(out)

    def predict(self, X_new):
        """Read the next steps of every stream and predict after each.

        Parameters
        ----------
        X_new : array-like of shape (n_streams, n_new_steps, n_features), or \
                (n_new_steps, n_features) for a single stream
            The next steps. With an embedding, token ids of shape (n_streams,
            n_new_steps), or (n_new_steps,) for a single stream.

        Returns
        -------
        y : ndarray of shape (n_streams, n_new_steps) or (n_streams, \
                n_new_steps, n_outputs)
            The estimator's prediction for each stream after each new step (without
            the first axis for a single stream).
        """
        est = self._estimator
        transform = est._labels if self._is_classifier() else est._values
        return self._predict(X_new, transform)

    def _is_classifier(self):
        return self._classifier

    @available_if(_is_classifier)
    def predict_proba(self, X_new):
        """Read the next steps of every stream and give the class probabilities
        after each.

        Parameters
        ----------
        X_new : array-like, as in :meth:`predict`

        Returns
        -------
        proba : ndarray of shape (n_streams, n_new_steps, n_classes)
            Probability of each class, in the order of ``classes_`` (without the
            first axis for a single stream).
        """
        return self._predict(X_new, self._estimator._probabilities)

    # --------------------------------------------------------------- generation
    def _generate(self, sequences, n_steps, next_input):
        """Read the validated ``sequences`` (ragged or not), from the streams'
        first step, then ``n_steps`` steps more, each one's input being
        ``next_input(raw)`` of the raw output (n, n_outputs) after the step
        before. Returns the inputs chosen, stacked along the second axis."""
        raw = self._raw(self._advance(sequences.values, sequences.lengths)[-1])
        chosen = []
        for step in range(n_steps):
            chosen.append(next_input(raw))
            if step + 1 < n_steps:
                raw = self._raw(self._step(chosen[-1]))
        return np.stack(chosen, axis=1)
