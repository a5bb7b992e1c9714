"""Generators of synthetic sequence problems, in the style of ``sklearn.datasets``.

Three problems are provided, each one chosen because a model without memory
cannot solve it:

* :func:`make_adding_problem` -- the adding problem (regression): add up the two
  values that a marker channel points at, anywhere in a long sequence;
* :func:`make_order_problem` -- the temporal order problem (classification):
  tell in which order a few events happened, when every class contains exactly
  the same events;
* :func:`make_forecasting_series` -- a chaotic time series (Mackey-Glass or
  Lorenz) for one-step or multi-step forecasting.

The first two return ``X`` of shape ``(n_samples, n_timesteps, n_features)``
and ``y``; the third returns a single long series, to be cut into windows.
All of them take ``random_state`` and give identical arrays for identical
arguments and an identical integer seed.
"""

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_adding_problem", "make_order_problem", "make_forecasting_series"]


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def _check_int(value, name, min_value, reason=""):
    """Return ``value`` as an int, or raise naming the argument ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer, got {value!r} of type "
            f"{type(value).__name__}."
        )
    if value < min_value:
        raise ValueError(f"{name} must be >= {min_value}{reason}, got {value}.")
    return int(value)


def _check_noise(noise):
    """Return ``noise`` as a float, or raise naming the argument."""
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real):
        raise TypeError(
            f"noise must be a real number, got {noise!r} of type "
            f"{type(noise).__name__}."
        )
    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}.")
    return noise


# ---------------------------------------------------------------------------
# Adding problem
# ---------------------------------------------------------------------------


def make_adding_problem(n_samples=1000, n_timesteps=50, *, random_state=None):
    """Generate the adding problem, a sequence regression task that needs memory.

    Each sequence has two channels: random values, and a marker that is 1 at
    exactly two time steps and 0 elsewhere. The target is the sum of the two
    marked values.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences, at least 1.
    n_timesteps : int, default=50
        Length of each sequence, at least 2 (one step for each half).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for the values and the marker positions. Pass an int
        for reproducible output across calls.

    Returns
    -------
    X : ndarray of shape (n_samples, n_timesteps, 2), dtype float64
        ``X[:, :, 0]`` holds the values, drawn independently and uniformly in
        ``[0, 1)``; ``X[:, :, 1]`` holds the markers (0.0 or 1.0), with exactly
        two 1.0 per sequence.
    y : ndarray of shape (n_samples,), dtype float64
        The sum of the two marked values, in ``[0, 2)``.

    See Also
    --------
    make_order_problem : A classification task that needs memory.

    Notes
    -----
    This is the setup of Hochreiter & Schmidhuber (1997), "Long short-term
    memory". Let ``h = n_timesteps // 2``. The first marker is placed uniformly
    at random in the first half, steps ``0 .. h - 1``, and the second uniformly
    at random in the second half, steps ``h .. n_timesteps - 1``; the two
    positions are therefore always distinct, and the gap between them ranges
    from 1 to ``n_timesteps - 1`` steps.

    A model reading the sequence step by step has to store the first marked
    value for up to ``n_timesteps - 1`` steps, while ignoring every unmarked
    value in between; the target cannot be computed from any fixed subset of
    the time steps.

    Baseline: ``y`` is the sum of two independent uniform values, so its mean
    is 1 and its variance is ``2 / 12 = 1/6``. A model that always predicts 1.0
    has a mean squared error of about ``1/6 ~ 0.167`` (and an R^2 of about 0);
    a model that learned the task does much better than that.

    Examples
    --------
    >>> from sklearn_lstm.datasets import make_adding_problem
    >>> X, y = make_adding_problem(n_samples=100, n_timesteps=30, random_state=0)
    >>> X.shape, y.shape
    ((100, 30, 2), (100,))
    >>> X.dtype, y.dtype
    (dtype('float64'), dtype('float64'))
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_timesteps = _check_int(
        n_timesteps, "n_timesteps", 2, " for the adding problem (one mark per half)"
    )
    rng = check_random_state(random_state)

    values = rng.uniform(0.0, 1.0, size=(n_samples, n_timesteps))
    half = n_timesteps // 2
    first = rng.randint(0, half, size=n_samples)
    second = rng.randint(half, n_timesteps, size=n_samples)

    rows = np.arange(n_samples)
    markers = np.zeros((n_samples, n_timesteps))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0

    X = np.stack([values, markers], axis=-1)
    y = values[rows, first] + values[rows, second]
    return X, y


# ---------------------------------------------------------------------------
# Temporal order problem
# ---------------------------------------------------------------------------


def _permutation_rank(perms):
    """Lexicographic rank of each row of ``perms`` among all permutations.

    ``perms`` is an integer array of shape (n, k) whose rows are permutations of
    ``0 .. k-1``; the result is in ``0 .. k! - 1`` (Lehmer code).
    """
    n, k = perms.shape
    rank = np.zeros(n, dtype=np.int64)
    for i in range(k):
        smaller_later = (perms[:, i + 1 :] < perms[:, i : i + 1]).sum(axis=1)
        rank += smaller_later * math.factorial(k - 1 - i)
    return rank


def make_order_problem(
    n_samples=1000, n_timesteps=20, *, n_events=2, noise=0.0, random_state=None
):
    """Generate the temporal order problem, a classification task on event order.

    Each sequence has ``n_events`` channels. Channel ``c`` is 0 everywhere
    except for a single spike of height 1 (its "event") at a random time step;
    the spikes of different channels are at distinct steps. The label tells in
    which order the events happened. Every sequence contains exactly the same
    events, only their order differs between classes.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences, at least 1.
    n_timesteps : int, default=20
        Length of each sequence, at least ``n_events`` (each event needs its
        own step).
    n_events : int, default=2
        Number of event types, hence of channels, at least 2. The number of
        classes is ``n_events!``: 2 for 2 events, 6 for 3 events, 24 for 4.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to every entry of ``X``
        (spikes and background alike), at least 0.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for the event positions and the noise. Pass an int
        for reproducible output across calls.

    Returns
    -------
    X : ndarray of shape (n_samples, n_timesteps, n_events), dtype float64
        With ``noise=0``, ``X[i, t, c]`` is 1.0 if event ``c`` of sequence ``i``
        happens at step ``t`` and 0.0 otherwise.
    y : ndarray of shape (n_samples,), dtype int64
        The class, in ``0 .. n_events! - 1``. Write down the channel indices
        sorted by the time of their event: ``y`` is the rank of that
        permutation in lexicographic order. With two events, ``y`` is 0 when
        the event of channel 0 comes first and 1 when the event of channel 1
        comes first.

    See Also
    --------
    make_adding_problem : A regression task that needs memory.

    Notes
    -----
    In the spirit of the "temporal order" problem of Hochreiter & Schmidhuber
    (1997), designed so that *only* the order carries information. The
    positions of the ``n_events`` events are a uniformly random ordered tuple
    of distinct time steps, so all ``n_events!`` orders are equally likely and
    the classes are balanced in expectation.

    Whatever the class, the time steps of a sequence, taken as an unordered
    collection of vectors, are the same: one step per event, with a 1 in that
    event's channel and 0 elsewhere, and ``n_timesteps - n_events`` steps of
    zeros. Shuffling the time axis therefore destroys all the information
    about the label: a bag-of-steps model, or any model of sorted or pooled
    features, does no better than chance (``1 / n_events!``). The same holds
    with noise, which is drawn independently of the positions.

    The events can occur anywhere, possibly at the very first steps, while
    the label is only known once the last event has been seen; a model reading
    the sequence step by step must remember which events it has already met,
    and in which order, for up to ``n_timesteps - 1`` steps.

    Examples
    --------
    >>> from sklearn_lstm.datasets import make_order_problem
    >>> X, y = make_order_problem(n_samples=100, n_timesteps=15, random_state=0)
    >>> X.shape, y.shape
    ((100, 15, 2), (100,))
    >>> X.dtype, y.dtype
    (dtype('float64'), dtype('int64'))
    >>> X, y = make_order_problem(n_samples=100, n_events=3, random_state=0)
    >>> X.shape
    (100, 20, 3)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_events = _check_int(n_events, "n_events", 2)
    n_timesteps = _check_int(
        n_timesteps,
        "n_timesteps",
        n_events,
        f" (n_events={n_events}, each event needs its own step)",
    )
    noise = _check_noise(noise)
    rng = check_random_state(random_state)

    # The first n_events entries of a random permutation of the steps: a
    # uniformly random ordered tuple of distinct positions, one per channel.
    keys = rng.random_sample((n_samples, n_timesteps))
    positions = np.argsort(keys, axis=1)[:, :n_events]

    X = np.zeros((n_samples, n_timesteps, n_events))
    rows = np.arange(n_samples)[:, None]
    X[rows, positions, np.arange(n_events)] = 1.0
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)

    # Channels sorted by the time of their event, then ranked.
    order = np.argsort(positions, axis=1)
    y = _permutation_rank(order)
    return X, y


# ---------------------------------------------------------------------------
# Chaotic series for forecasting
# ---------------------------------------------------------------------------

# Mackey-Glass: dx/dt = beta * x(t - tau) / (1 + x(t - tau)**power) - gamma * x(t)
_MG_BETA = 0.2
_MG_GAMMA = 0.1
_MG_POWER = 10
_MG_TAU = 17.0
_MG_DT = 0.01  # integration step
_MG_SAMPLE_STEPS = 100  # one sample every 100 * 0.01 = 1.0 time unit
_MG_BURN_IN_STEPS = 100_000  # 1000 time units discarded

# Lorenz: dx/dt = sigma (y - x), dy/dt = x (rho - z) - y, dz/dt = x y - b z
_LORENZ_SIGMA = 10.0
_LORENZ_RHO = 28.0
_LORENZ_BETA = 8.0 / 3.0
_LORENZ_DT = 0.01  # RK4 step
_LORENZ_SAMPLE_STEPS = 5  # one sample every 5 * 0.01 = 0.05 time unit
_LORENZ_BURN_IN_STEPS = 5_000  # 50 time units discarded

_SYSTEMS = ("mackey_glass", "lorenz")


def _mackey_glass(
    history,
    n_samples,
    *,
    dt=_MG_DT,
    sample_steps=_MG_SAMPLE_STEPS,
    burn_in_steps=_MG_BURN_IN_STEPS,
    beta=_MG_BETA,
    gamma=_MG_GAMMA,
    power=_MG_POWER,
):
    """Integrate the Mackey-Glass equation from a given history.

    ``history`` holds ``m + 1`` values of ``x`` on the grid ``-m*dt, ..., 0``,
    where ``tau = m * dt`` is the delay; between grid points ``x`` is linear.
    Returns ``x(t)`` at ``t = (burn_in_steps + i * sample_steps) * dt`` for
    ``i = 0 .. n_samples - 1``.

    Scheme: within a step the delayed term ``g(t) = f(x(t - tau))`` is known
    (it only involves values at least ``tau`` old) and is taken linear between
    grid points, and the linear part ``-gamma x`` is integrated exactly
    (exponential integrator). This gives ``x[n+1] = a x[n] + w0 g[n] + w1 g[n+1]``
    with ``a = exp(-gamma dt)``, a linear recurrence that is solved in closed
    form for ``m`` steps at a time, with NumPy, since a block of ``m`` steps only
    depends on the previous block.
    """
    history = np.asarray(history, dtype=np.float64)
    m = history.shape[0] - 1
    a = math.exp(-gamma * dt)
    # Weights of g[n] and g[n+1] in the integral of exp(-gamma (dt - s)) g(s).
    i0 = (1.0 - a) / gamma
    i1 = i0 - (1.0 - a * (1.0 + gamma * dt)) / (gamma * gamma * dt)
    w0, w1 = i0 - i1, i1
    k = np.arange(1, m + 1)
    decay = a**k  # a^k, k = 1..m
    growth = a ** (-k)  # a^-k, at most exp(gamma * tau)

    out = np.empty(n_samples)
    filled = 0
    wanted = burn_in_steps  # global index of the next sample to record
    if wanted == 0:
        out[0] = history[-1]
        filled = 1
        wanted += sample_steps
    block = history
    start = 0  # global index of block[-1]
    while filled < n_samples:
        delayed = block**power
        g = beta * block / (1.0 + delayed)
        b = w0 * g[:-1] + w1 * g[1:]
        x = decay * (block[-1] + np.cumsum(b * growth))  # global start+1 .. start+m
        if wanted <= start + m:
            local = np.arange(wanted - start, m + 1, sample_steps)
            take = min(local.shape[0], n_samples - filled)
            out[filled : filled + take] = x[local[:take] - 1]
            filled += take
            wanted += take * sample_steps
        block = np.concatenate((block[-1:], x))
        start += m
    return out


def _lorenz(
    state,
    n_samples,
    *,
    dt=_LORENZ_DT,
    sample_steps=_LORENZ_SAMPLE_STEPS,
    burn_in_steps=_LORENZ_BURN_IN_STEPS,
    sigma=_LORENZ_SIGMA,
    rho=_LORENZ_RHO,
    beta=_LORENZ_BETA,
):
    """Integrate the Lorenz system with classical RK4 from ``state = (x, y, z)``.

    Returns the state at ``t = (burn_in_steps + i * sample_steps) * dt`` for
    ``i = 0 .. n_samples - 1``, shape (n_samples, 3). Plain Python floats: for a
    3-dimensional state they are much faster than NumPy arrays.
    """
    x, y, z = (float(v) for v in state)
    h2 = 0.5 * dt
    h6 = dt / 6.0
    out = np.empty((n_samples, 3))
    n_steps = burn_in_steps + (n_samples - 1) * sample_steps
    next_record = burn_in_steps
    filled = 0
    for step in range(n_steps + 1):
        if step == next_record:
            out[filled] = (x, y, z)
            filled += 1
            next_record += sample_steps
            if filled == n_samples:
                break
        k1x = sigma * (y - x)
        k1y = x * (rho - z) - y
        k1z = x * y - beta * z
        x2, y2, z2 = x + h2 * k1x, y + h2 * k1y, z + h2 * k1z
        k2x = sigma * (y2 - x2)
        k2y = x2 * (rho - z2) - y2
        k2z = x2 * y2 - beta * z2
        x3, y3, z3 = x + h2 * k2x, y + h2 * k2y, z + h2 * k2z
        k3x = sigma * (y3 - x3)
        k3y = x3 * (rho - z3) - y3
        k3z = x3 * y3 - beta * z3
        x4, y4, z4 = x + dt * k3x, y + dt * k3y, z + dt * k3z
        k4x = sigma * (y4 - x4)
        k4y = x4 * (rho - z4) - y4
        k4z = x4 * y4 - beta * z4
        x += h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y += h6 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        z += h6 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
    return out


def make_forecasting_series(
    n_samples=1000, *, system="mackey_glass", noise=0.0, random_state=None
):
    """Generate a chaotic time series for forecasting.

    Returns one long, evenly sampled series (not windows): cut it into
    (window, target) pairs to train a forecaster.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of time points, at least 1.
    system : {"mackey_glass", "lorenz"}, default="mackey_glass"
        The dynamical system: the univariate Mackey-Glass delay differential
        equation, or the three-dimensional Lorenz system. See Notes.
    noise : float, default=0.0
        Standard deviation of Gaussian observation noise added to every value
        of the series, at least 0. It is added after integration: the dynamics
        themselves are noise-free.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for the initial condition and the noise. Pass an int
        for reproducible output across calls.

    Returns
    -------
    series : ndarray of shape (n_samples,) or (n_samples, 3), dtype float64
        ``(n_samples,)`` for ``"mackey_glass"``; ``(n_samples, 3)`` for
        ``"lorenz"``, with columns x, y, z. Values are in the natural units of
        each system (roughly ``[0.2, 1.4]`` for Mackey-Glass; about
        ``[-20, 20]`` for x and y and ``[0, 50]`` for z for Lorenz): scale them
        before training.

    See Also
    --------
    make_adding_problem, make_order_problem : Sequence problems that need memory.

    Notes
    -----
    **Mackey-Glass** (Mackey & Glass, 1977), with the usual chaotic parameters
    ``beta = 0.2``, ``gamma = 0.1``, ``n = 10`` and delay ``tau = 17``::

        dx/dt = beta * x(t - tau) / (1 + x(t - tau)**n) - gamma * x(t)

    It is integrated with a fixed step ``dt = 0.01`` (1700 steps per delay)
    by an exponential integrator: the term ``-gamma * x`` is integrated
    exactly and the delayed term, known from the past, is taken linear
    between grid points. The series is sampled every 1.0 time unit (every 100
    steps). The initial history on ``[-tau, 0]`` is random: linear between
    values drawn uniformly in ``[0.5, 1.5]`` at ``t = -17, -16, ..., 0``.
    The first 1000 time units are discarded as burn-in, so the series starts
    on the attractor.

    **Lorenz** (Lorenz, 1963), with ``sigma = 10``, ``rho = 28``,
    ``b = 8/3``::

        dx/dt = sigma * (y - x)
        dy/dt = x * (rho - z) - y
        dz/dt = x * y - b * z

    It is integrated with the classical fourth-order Runge-Kutta method with
    a fixed step ``dt = 0.01``, and sampled every 0.05 time unit (every 5
    steps). The initial state is drawn uniformly in ``[-15, 15]`` for x and y
    and ``[0, 40]`` for z; the first 50 time units are discarded as burn-in.

    Both systems are chaotic: nearby states separate exponentially fast, so
    forecasting further than a short horizon requires a model of the dynamics
    built from a long enough window of the past, not a local extrapolation.

    Examples
    --------
    >>> from sklearn_lstm.datasets import make_forecasting_series
    >>> series = make_forecasting_series(n_samples=500, random_state=0)
    >>> series.shape
    (500,)
    >>> series = make_forecasting_series(
    ...     n_samples=500, system="lorenz", noise=0.1, random_state=0
    ... )
    >>> series.shape
    (500, 3)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    if not isinstance(system, str) or system not in _SYSTEMS:
        raise ValueError(
            f"system must be one of {', '.join(repr(s) for s in _SYSTEMS)}; "
            f"got {system!r}."
        )
    noise = _check_noise(noise)
    rng = check_random_state(random_state)

    if system == "mackey_glass":
        m = int(round(_MG_TAU / _MG_DT))
        knots_t = np.arange(-int(_MG_TAU), 1, dtype=np.float64)
        knots_x = rng.uniform(0.5, 1.5, size=knots_t.shape[0])
        grid_t = (np.arange(m + 1) - m) * _MG_DT
        history = np.interp(grid_t, knots_t, knots_x)
        series = _mackey_glass(history, n_samples)
    else:
        state = (
            rng.uniform(-15.0, 15.0),
            rng.uniform(-15.0, 15.0),
            rng.uniform(0.0, 40.0),
        )
        series = _lorenz(state, n_samples)

    if noise > 0:
        series = series + noise * rng.standard_normal(series.shape)
    return series
