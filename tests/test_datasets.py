"""Tests of the synthetic sequence problems in ``sklearn_lstm.datasets``.

Statistical checks use a fixed seed, so they are deterministic; their
tolerances are still set from the sampling standard error (a few standard
errors wide), so that they test the documented distribution and not a
particular draw.
"""

import itertools
import math

import numpy as np
import pytest

from sklearn_lstm.datasets import (
    _lorenz,
    _mackey_glass,
    make_adding_problem,
    make_forecasting_series,
    make_order_problem,
)


def _order_label_from_positions(positions):
    """Class of each row of ``positions`` (time of the event of each channel).

    Written independently of the library: channels sorted by the time of their
    event, looked up in the lexicographic list of all permutations.
    """
    k = positions.shape[1]
    table = {perm: i for i, perm in enumerate(sorted(itertools.permutations(range(k))))}
    return np.array([table[tuple(np.argsort(row))] for row in positions])


# ---------------------------------------------------------------------------
# Adding problem
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_samples, n_timesteps", [(1, 2), (7, 3), (50, 20), (3, 101)])
def test_adding_shapes_and_dtypes(n_samples, n_timesteps):
    X, y = make_adding_problem(n_samples, n_timesteps, random_state=0)
    assert X.shape == (n_samples, n_timesteps, 2)
    assert y.shape == (n_samples,)
    assert X.dtype == np.float64
    assert y.dtype == np.float64


def test_adding_defaults():
    X, y = make_adding_problem(random_state=0)
    assert X.shape == (1000, 50, 2)
    assert y.shape == (1000,)


def test_adding_values_marks_and_target():
    n, T = 500, 31
    X, y = make_adding_problem(n, T, random_state=1)
    values, marks = X[:, :, 0], X[:, :, 1]

    assert np.all(values >= 0.0) and np.all(values < 1.0)
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks.sum(axis=1) == 2)

    # y is exactly the sum of the two marked values.
    marked = values[marks == 1.0].reshape(n, 2)
    np.testing.assert_array_equal(y, marked[:, 0] + marked[:, 1])

    # One mark in each half, as documented (h = T // 2).
    t_first = np.argmax(marks, axis=1)
    t_second = T - 1 - np.argmax(marks[:, ::-1], axis=1)
    h = T // 2
    assert np.all(t_first < h)
    assert np.all(t_second >= h)


def test_adding_shortest_sequences_mark_both_steps():
    X, y = make_adding_problem(20, 2, random_state=0)
    np.testing.assert_array_equal(X[:, :, 1], np.ones((20, 2)))
    np.testing.assert_array_equal(y, X[:, 0, 0] + X[:, 1, 0])


def test_adding_positions_cover_each_half():
    n, T = 4000, 10
    X, _ = make_adding_problem(n, T, random_state=2)
    # Each step is marked with probability 1/5 (a half has 5 steps), i.e. about
    # 800 times; not seeing one of them would be wildly unlikely.
    counts = X[:, :, 1].sum(axis=0)
    expected = n / (T // 2)
    sd = math.sqrt(n * (1 / 5) * (4 / 5))
    assert np.all(np.abs(counts - expected) < 5 * sd)


def test_adding_constant_baseline_mse_is_one_sixth():
    # y - 1 is triangular on (-1, 1): E[(y-1)^2] = 1/6, E[(y-1)^4] = 1/15,
    # so the squared error has variance 1/15 - 1/36 = 7/180.
    n = 20_000
    _, y = make_adding_problem(n, 10, random_state=3)
    mse = np.mean((y - 1.0) ** 2)
    se = math.sqrt(7 / 180 / n)
    assert abs(mse - 1 / 6) < 5 * se
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(1 / 6 / n)


def test_adding_reproducible():
    X1, y1 = make_adding_problem(100, 12, random_state=42)
    X2, y2 = make_adding_problem(100, 12, random_state=42)
    X3, y3 = make_adding_problem(100, 12, random_state=np.random.RandomState(42))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(X1, X3)
    np.testing.assert_array_equal(y1, y3)
    X4, y4 = make_adding_problem(100, 12, random_state=43)
    assert not np.array_equal(X1, X4)
    assert not np.array_equal(y1, y4)


def test_adding_random_state_none_gives_fresh_draws():
    _, y1 = make_adding_problem(50, 10)
    _, y2 = make_adding_problem(50, 10)
    assert not np.array_equal(y1, y2)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": -3}, ValueError, "n_samples"),
        ({"n_timesteps": 1}, ValueError, "n_timesteps must be >= 2"),
        ({"n_timesteps": 0}, ValueError, "n_timesteps"),
        ({"n_samples": 10.5}, TypeError, "n_samples"),
        ({"n_timesteps": "50"}, TypeError, "n_timesteps"),
        ({"n_samples": True}, TypeError, "n_samples"),
    ],
)
def test_adding_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_adding_problem(**kwargs)


def test_adding_accepts_numpy_integers():
    X, _ = make_adding_problem(np.int64(5), np.int32(4), random_state=0)
    assert X.shape == (5, 4, 2)


def test_adding_extra_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        make_adding_problem(10, 5, 0)


# ---------------------------------------------------------------------------
# Order problem
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_shapes_dtypes_and_label_range(n_events):
    X, y = make_order_problem(200, 9, n_events=n_events, random_state=0)
    assert X.shape == (200, 9, n_events)
    assert y.shape == (200,)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    assert y.min() >= 0 and y.max() < math.factorial(n_events)


def test_order_defaults():
    X, y = make_order_problem(random_state=0)
    assert X.shape == (1000, 20, 2)
    assert set(np.unique(y)) == {0, 1}


@pytest.mark.parametrize("n_events, n_timesteps", [(2, 2), (2, 15), (3, 3), (3, 12)])
def test_order_noise_free_structure(n_events, n_timesteps):
    X, _ = make_order_problem(
        300, n_timesteps, n_events=n_events, random_state=4
    )
    assert set(np.unique(X)) == {0.0, 1.0}
    # One spike per channel, never two spikes at the same step.
    np.testing.assert_array_equal(X.sum(axis=1), np.ones((300, n_events)))
    assert X.sum(axis=2).max() == 1.0


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_label_follows_documented_rule(n_events):
    X, y = make_order_problem(1000, 16, n_events=n_events, random_state=5)
    positions = np.argmax(X, axis=1)  # (n_samples, n_events): time of each event
    np.testing.assert_array_equal(y, _order_label_from_positions(positions))
    if n_events == 2:
        # "0 when the event of channel 0 comes first".
        channel_1_first = positions[:, 1] < positions[:, 0]
        np.testing.assert_array_equal(y, channel_1_first.astype(int))


def test_order_label_recoverable_with_noise():
    # Spikes of height 1 in noise of std 0.1: the argmax in time of each channel
    # is the spike (a 7-sigma miss would be needed otherwise).
    X, y = make_order_problem(1000, 16, n_events=3, noise=0.1, random_state=6)
    positions = np.argmax(X, axis=1)
    np.testing.assert_array_equal(y, _order_label_from_positions(positions))


def test_order_noise_does_not_change_events():
    X0, y0 = make_order_problem(2000, 10, noise=0.0, random_state=7)
    X1, y1 = make_order_problem(2000, 10, noise=0.5, random_state=7)
    np.testing.assert_array_equal(y0, y1)
    residual = X1 - X0
    # The std of a sample std of m Gaussian values is about sigma / sqrt(2 m).
    m = residual.size
    assert abs(residual.std() - 0.5) < 5 * 0.5 / math.sqrt(2 * m)
    assert abs(residual.mean()) < 5 * 0.5 / math.sqrt(m)


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_classes_balanced(n_events):
    n = 6000
    _, y = make_order_problem(n, 8, n_events=n_events, random_state=8)
    n_classes = math.factorial(n_events)
    counts = np.bincount(y, minlength=n_classes)
    assert counts.shape == (n_classes,)
    # Each count is Binomial(n, 1/n_classes) if all orders are equally likely.
    p = 1 / n_classes
    sd = math.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 4 * sd), counts


def test_order_positions_uniform_over_time():
    # The event of channel 0 is at each step with probability 1/T.
    n, T = 6000, 12
    X, _ = make_order_problem(n, T, random_state=9)
    counts = X[:, :, 0].sum(axis=0)
    sd = math.sqrt(n * (1 / T) * (1 - 1 / T))
    assert np.all(np.abs(counts - n / T) < 5 * sd), counts


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_sorted_sequences_identical_without_noise(n_events):
    # Sorting each channel over time forgets the order: without noise, every
    # sequence then becomes the same array, whatever its class.
    X, y = make_order_problem(500, 10, n_events=n_events, random_state=10)
    X_sorted = np.sort(X, axis=1)
    np.testing.assert_array_equal(X_sorted, np.broadcast_to(X_sorted[0], X.shape))
    assert len(np.unique(y)) == math.factorial(n_events)


def _max_class_mean_z(Z, y):
    """Largest |z-score| of a per-class mean of ``Z`` against the other classes."""
    z_max = 0.0
    flat = Z.reshape(Z.shape[0], -1)
    for c in np.unique(y):
        a, b = flat[y == c], flat[y != c]
        se = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b))
        z = np.abs(a.mean(axis=0) - b.mean(axis=0)) / np.maximum(se, 1e-12)
        z_max = max(z_max, float(z.max()))
    return z_max


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_only_order_carries_information(n_events):
    # With noise, the sorted (per channel, over time) sequences must have the
    # same distribution in every class: their per-class means agree within
    # sampling error (|z| < 5 over a few hundred comparisons has a
    # false-alarm probability below 1e-3). As a control, the unsorted
    # sequences do carry the label: their per-class means differ by far more
    # (e.g. the event of channel 0 is at step 0 with probability 2/T in class 0
    # and never in class 1, for two events), so the check is able to fail.
    n, T = 6000, 10
    X, y = make_order_problem(n, T, n_events=n_events, noise=0.3, random_state=11)
    assert _max_class_mean_z(np.sort(X, axis=1), y) < 5.0
    assert _max_class_mean_z(X, y) > 10.0


@pytest.mark.parametrize("n_events", [2, 3])
def test_order_reproducible(n_events):
    a = make_order_problem(100, 10, n_events=n_events, noise=0.2, random_state=3)
    b = make_order_problem(100, 10, n_events=n_events, noise=0.2, random_state=3)
    c = make_order_problem(100, 10, n_events=n_events, noise=0.2, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_events": 1}, ValueError, "n_events"),
        ({"n_timesteps": 1}, ValueError, "n_timesteps"),
        ({"n_timesteps": 2, "n_events": 3}, ValueError, "n_timesteps must be >= 3"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"noise": float("nan")}, ValueError, "noise"),
        ({"noise": float("inf")}, ValueError, "noise"),
        ({"noise": "0.1"}, TypeError, "noise"),
        ({"n_events": 2.0}, TypeError, "n_events"),
    ],
)
def test_order_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_order_problem(**kwargs)


# ---------------------------------------------------------------------------
# Forecasting series: integrators
# ---------------------------------------------------------------------------


def test_mackey_glass_fixed_point():
    # x = 1 solves beta x / (1 + x^10) = gamma x for beta = 0.2, gamma = 0.1.
    out = _mackey_glass(np.ones(1701), 60, burn_in_steps=0)
    np.testing.assert_allclose(out, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("c", [0.0, 0.5, 1.3])
def test_mackey_glass_first_delay_interval_is_exact(c):
    # With a constant history c, the delayed term is the constant
    # g = 0.2 c / (1 + c^10) on [0, tau], and dx/dt = g - 0.1 x has the
    # solution x(t) = g/0.1 + (c - g/0.1) exp(-0.1 t) there.
    out = _mackey_glass(np.full(1701, c), 18, burn_in_steps=0)  # t = 0, 1, ..., 17
    t = np.arange(18.0)
    g = 0.2 * c / (1 + c**10)
    expected = g / 0.1 + (c - g / 0.1) * np.exp(-0.1 * t)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


def test_mackey_glass_decay_from_zero_history():
    # History 0 on [-tau, -dt] and 1.2 at 0: nothing feeds the equation until
    # t = tau - dt, so x(t) = 1.2 exp(-0.1 t).
    history = np.zeros(1701)
    history[-1] = 1.2
    out = _mackey_glass(history, 17, burn_in_steps=0)  # t = 0 .. 16
    np.testing.assert_allclose(out, 1.2 * np.exp(-0.1 * np.arange(17.0)), rtol=1e-12)


def _mackey_glass_heun(c, t_end, dt):
    """Reference: Heun's method on a grid where the delay is a whole number of steps."""
    m = round(17 / dt)
    n = round(t_end / dt)
    x = [c] * (m + 1) + [0.0] * n

    def f(v):
        return 0.2 * v / (1 + v**10)

    for i in range(m, m + n):
        k1 = f(x[i - m]) - 0.1 * x[i]
        k2 = f(x[i - m + 1]) - 0.1 * (x[i] + dt * k1)
        x[i + 1] = x[i] + 0.5 * dt * (k1 + k2)
    return np.array(x[m :: round(1 / dt)])


def test_mackey_glass_matches_reference_integrator():
    # Over 60 time units (several delays, so the delayed feedback matters),
    # both second-order schemes agree to a few 1e-7 (a first-order slip, such
    # as a rectangle rule for the delayed term, gives errors near 1e-3).
    reference = _mackey_glass_heun(0.5, 60, dt=0.002)
    out = _mackey_glass(np.full(1701, 0.5), 61, burn_in_steps=0)
    assert reference.shape == out.shape
    np.testing.assert_allclose(out, reference, rtol=0, atol=2e-6)
    assert np.ptp(out) > 0.3  # the trajectory is not trivially flat


def test_mackey_glass_sampling_and_burn_in_are_consistent():
    history = np.full(1701, 0.8)
    fine = _mackey_glass(history, 401, burn_in_steps=0, sample_steps=50)
    coarse = _mackey_glass(history, 50, burn_in_steps=1000, sample_steps=300)
    # coarse[i] is x at step 1000 + 300 i, i.e. fine[20 + 6 i].
    np.testing.assert_array_equal(coarse, fine[20::6][:50])


def _lorenz_rhs(s):
    x, y, z = s
    return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])


def test_lorenz_right_hand_side():
    # A single tiny step moves the state by dt times the Lorenz vector field.
    state = np.array([1.5, -2.0, 20.0])
    dt = 1e-7
    out = _lorenz(state, 2, dt=dt, sample_steps=1, burn_in_steps=0)
    np.testing.assert_array_equal(out[0], state)
    np.testing.assert_allclose((out[1] - out[0]) / dt, _lorenz_rhs(state), rtol=1e-6)


def test_lorenz_fixed_points():
    r = math.sqrt(8.0 / 3.0 * 27.0)
    for c in ([r, r, 27.0], [-r, -r, 27.0], [0.0, 0.0, 0.0]):
        out = _lorenz(np.array(c), 100, burn_in_steps=0)  # 5 time units
        np.testing.assert_allclose(out, np.tile(c, (100, 1)), rtol=0, atol=1e-8)


def test_lorenz_rk4_is_fourth_order():
    # Over 1 time unit, halving the step divides the change of the trajectory
    # by about 2^4 = 16 for a fourth-order method (by 2, 4 or 8 for a method of
    # order 1, 2 or 3, e.g. with a wrong Runge-Kutta weight).
    state = np.array([-5.0, 3.0, 25.0])
    runs = [
        _lorenz(state, 21, dt=0.05 / k, sample_steps=k, burn_in_steps=0)
        for k in (5, 10, 20)
    ]
    e1 = np.abs(runs[0] - runs[1]).max()
    e2 = np.abs(runs[1] - runs[2]).max()
    assert e1 < 1e-3
    assert 12 < e1 / e2 < 22
    assert np.ptp(runs[0][:, 0]) > 5  # it moves


# ---------------------------------------------------------------------------
# Forecasting series: public function
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "system, trailing", [("mackey_glass", ()), ("lorenz", (3,))]
)
@pytest.mark.parametrize("n_samples", [1, 2, 300])
def test_forecasting_shapes_and_dtypes(system, trailing, n_samples):
    s = make_forecasting_series(n_samples, system=system, random_state=0)
    assert s.shape == (n_samples, *trailing)
    assert s.dtype == np.float64


def test_forecasting_default_is_mackey_glass():
    np.testing.assert_array_equal(
        make_forecasting_series(random_state=0),
        make_forecasting_series(1000, system="mackey_glass", random_state=0),
    )


def test_mackey_glass_series_finite_bounded_not_constant():
    s = make_forecasting_series(5000, random_state=12)
    assert np.all(np.isfinite(s))
    # For x > 0, 0.2 x / (1 + x^10) <= 0.2 * 0.7225 (maximum at x^10 = 1/9), so
    # dx/dt < 0 above 1.445: the attractor lies in (0, 1.445).
    assert s.min() > 0.0 and s.max() < 1.445
    assert s.std() > 0.1
    assert np.all(np.diff(s) != 0)


def test_lorenz_series_finite_bounded_not_constant():
    s = make_forecasting_series(5000, system="lorenz", random_state=12)
    assert np.all(np.isfinite(s))
    # The Lorenz attractor spans about |x| < 20, |y| < 28, 0 < z < 50.
    assert np.all(np.abs(s[:, 0]) < 30) and np.all(np.abs(s[:, 1]) < 40)
    assert np.all(s[:, 2] > 0) and np.all(s[:, 2] < 60)
    assert np.all(s.std(axis=0) > 3)
    # It visits both wings: x changes sign.
    assert (s[:, 0] > 5).any() and (s[:, 0] < -5).any()


@pytest.mark.parametrize("system", ["mackey_glass", "lorenz"])
def test_forecasting_halves_have_similar_statistics(system):
    s = make_forecasting_series(10_000, system=system, random_state=13)
    first, second = s[:5000], s[5000:]
    spread = s.std(axis=0)
    np.testing.assert_allclose(first.std(axis=0), second.std(axis=0), rtol=0.1)
    if system == "mackey_glass":
        assert abs(first.mean() - second.mean()) < 0.1 * spread
    else:
        # x and y wander between the wings slowly, z does not.
        assert abs(first[:, 2].mean() - second[:, 2].mean()) < 0.1 * spread[2]


def _nearest_distance(points, reference):
    d2 = ((points[:, None, :] - reference[None, :, :]) ** 2).sum(axis=-1)
    return np.sqrt(d2.min(axis=1))


def test_lorenz_starts_on_the_attractor():
    # The first state of each series is close to a long trajectory of the
    # attractor (from another seed), whereas random states drawn like the
    # initial conditions are typically far from it: this is the burn-in.
    reference = make_forecasting_series(20_000, system="lorenz", random_state=1000)
    firsts = np.concatenate(
        [make_forecasting_series(1, system="lorenz", random_state=s) for s in range(20)]
    )
    rng = np.random.RandomState(0)
    raw = np.column_stack(
        [rng.uniform(-15, 15, 20), rng.uniform(-15, 15, 20), rng.uniform(0, 40, 20)]
    )
    assert np.median(_nearest_distance(firsts, reference)) < 1.0
    assert np.median(_nearest_distance(raw, reference)) > 3.0


def test_mackey_glass_starts_on_the_attractor():
    # Same idea with windows of 20 consecutive values (a delay embedding): the
    # first window of a series is close to some window of a long reference
    # series, while the first window integrated without burn-in is not.
    w = 20
    reference = np.lib.stride_tricks.sliding_window_view(
        make_forecasting_series(20_000, random_state=1000), w
    )
    firsts = np.array([make_forecasting_series(w, random_state=s) for s in range(20)])
    raw = []
    for seed in range(20):
        knots = np.random.RandomState(seed).uniform(0.5, 1.5, 18)
        grid = (np.arange(1701) - 1700) * 0.01
        history = np.interp(grid, np.arange(-17.0, 1.0), knots)
        raw.append(_mackey_glass(history, w, burn_in_steps=0))
    assert np.median(_nearest_distance(firsts, reference)) < 0.05
    assert np.median(_nearest_distance(np.array(raw), reference)) > 0.15


@pytest.mark.parametrize("system", ["mackey_glass", "lorenz"])
def test_forecasting_reproducible(system):
    a = make_forecasting_series(300, system=system, random_state=5)
    b = make_forecasting_series(300, system=system, random_state=5)
    rng = np.random.RandomState(5)
    c = make_forecasting_series(300, system=system, random_state=rng)
    d = make_forecasting_series(300, system=system, random_state=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, d)


@pytest.mark.parametrize("system", ["mackey_glass", "lorenz"])
def test_forecasting_noise_is_additive_observation_noise(system):
    clean = make_forecasting_series(4000, system=system, random_state=21)
    noisy = make_forecasting_series(4000, system=system, noise=0.05, random_state=21)
    residual = noisy - clean
    m = residual.size
    assert abs(residual.std() - 0.05) < 5 * 0.05 / math.sqrt(2 * m)
    assert abs(residual.mean()) < 5 * 0.05 / math.sqrt(m)
    # Noise is drawn anew for each value, independently of its neighbours.
    r = residual.reshape(len(residual), -1)[:, 0]
    lag1 = np.corrcoef(r[:-1], r[1:])[0, 1]
    assert abs(lag1) < 5 / math.sqrt(len(r))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 1.0}, TypeError, "n_samples"),
        ({"system": "rossler"}, ValueError, "system"),
        ({"system": None}, ValueError, "system"),
        ({"noise": -1.0}, ValueError, "noise"),
        ({"noise": float("nan")}, ValueError, "noise"),
        ({"noise": None}, TypeError, "noise"),
    ],
)
def test_forecasting_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_forecasting_series(**kwargs)

