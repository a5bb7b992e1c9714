"""Stochastic optimizers, independent of any estimator.

An optimizer holds its own state (velocities, moments, step count) and updates a
list of parameter arrays **in place**, so the arrays an estimator exposes stay the
live parameters. The interface follows scikit-learn's MLP optimizers:
``update_params(params, grads)`` after each mini-batch, ``iteration_ends(time_step)``
after each epoch and ``trigger_stopping(msg, verbose)`` when the training loss or the
validation score stops improving.
"""

import math

import numpy as np


class BaseOptimizer:
    """Shared logic: the learning-rate schedule and the in-place update.

    Parameters
    ----------
    learning_rate_init : float
        The initial learning rate.
    lr_schedule : {"constant", "invscaling", "adaptive"}, default="constant"
        ``"constant"`` keeps ``learning_rate_init``; ``"invscaling"`` sets the rate to
        ``learning_rate_init / (time_step + 1) ** power_t`` after each epoch, with
        ``time_step`` the number of samples seen (scikit-learn's MLP convention);
        ``"adaptive"`` divides the rate by 5 each time training stops improving, and
        stops once it falls below 1e-6.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    """

    def __init__(self, learning_rate_init=0.001, lr_schedule="constant", power_t=0.5):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.power_t = power_t

    def update_params(self, params, grads):
        """Add the update computed from ``grads`` to each of ``params`` in place."""
        for param, update in zip(params, self._get_updates(grads)):
            param += update

    def iteration_ends(self, time_step):
        """Called at the end of each epoch; ``time_step`` counts samples seen."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        """Decide whether training stops once no improvement was seen.

        Returns False (and lowers the rate) while an adaptive rate can still go down.
        """
        if self.lr_schedule != "adaptive" or self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:g}.")
        return False


class SGDOptimizer(BaseOptimizer):
    """Stochastic gradient descent with momentum.

    With ``v`` the velocity, ``mu`` the momentum and ``lr`` the learning rate::

        v <- mu v - lr g
        update = v                      (classical momentum)
        update = mu v - lr g            (Nesterov's momentum)

    With ``momentum=0`` both reduce to ``param <- param - lr g``.

    Parameters
    ----------
    params : list of ndarray
        The parameters, used for the shapes and dtypes of the velocities.
    learning_rate_init, lr_schedule, power_t : see :class:`BaseOptimizer`.
    momentum : float in [0, 1]
    nesterov : bool
    """

    def __init__(
        self,
        params,
        learning_rate_init=0.1,
        lr_schedule="constant",
        power_t=0.5,
        momentum=0.9,
        nesterov=True,
    ):
        super().__init__(learning_rate_init, lr_schedule, power_t)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocities = [np.zeros_like(param) for param in params]

    def _get_updates(self, grads):
        lr, mu = self.learning_rate, float(self.momentum)
        for velocity, grad in zip(self.velocities, grads):
            velocity *= mu
            velocity -= lr * grad
        if self.nesterov:
            return [mu * v - lr * g for v, g in zip(self.velocities, grads)]
        return self.velocities


class AdamOptimizer(BaseOptimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), as in PyTorch's ``torch.optim.Adam``.

    With step count ``t``, first and second moments ``m`` and ``v``::

        m <- beta_1 m + (1 - beta_1) g
        v <- beta_2 v + (1 - beta_2) g^2
        update = -lr * (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)

    Parameters
    ----------
    params : list of ndarray
    learning_rate_init, lr_schedule, power_t : see :class:`BaseOptimizer`.
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    """

    def __init__(
        self,
        params,
        learning_rate_init=0.001,
        lr_schedule="constant",
        power_t=0.5,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
    ):
        super().__init__(learning_rate_init, lr_schedule, power_t)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        # The moments of all parameters in one flat array each, so that an update
        # is a dozen NumPy calls whatever the number of parameter arrays.
        self._shapes = [param.shape for param in params]
        self._bounds = np.cumsum([0] + [param.size for param in params]).tolist()
        dtype = np.result_type(*params)
        size = self._bounds[-1]
        self._m, self._v = np.zeros(size, dtype), np.zeros(size, dtype)
        self._grad, self._step = np.empty(size, dtype), np.empty(size, dtype)
        self._updates = self._split(self._step)

    def __getstate__(self):
        # The update views would come back as arrays of their own (pickle, deepcopy).
        state = self.__dict__.copy()
        del state["_updates"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._updates = self._split(self._step)

    def _split(self, flat):
        return [
            flat[start:stop].reshape(shape)
            for start, stop, shape in zip(self._bounds, self._bounds[1:], self._shapes)
        ]

    @property
    def ms(self):
        """First moments, one array per parameter (views of the flat state)."""
        return self._split(self._m)

    @property
    def vs(self):
        """Second moments, one array per parameter (views of the flat state)."""
        return self._split(self._v)

    def _get_updates(self, grads):
        self.t += 1
        b1, b2 = float(self.beta_1), float(self.beta_2)
        step = self.learning_rate / (1.0 - b1**self.t)
        # Python floats: a NumPy float64 would make float32 updates slow and cast.
        v_correction = 1.0 / math.sqrt(1.0 - b2**self.t)
        m, v, grad, out = self._m, self._v, self._grad, self._step
        np.concatenate([g.reshape(-1) for g in grads], out=grad)
        m *= b1
        np.multiply(grad, 1.0 - b1, out=out)
        m += out
        v *= b2
        np.square(grad, out=out)
        out *= 1.0 - b2
        v += out
        np.sqrt(v, out=out)
        out *= v_correction
        out += float(self.epsilon)
        np.divide(m, out, out=out)
        out *= -step
        return self._updates


class RMSPropOptimizer(BaseOptimizer):
    """RMSProp (Tieleman & Hinton, 2012), as in PyTorch's ``torch.optim.RMSprop``.

    With ``v`` the running mean of squared gradients and decay ``rho``::

        v <- rho v + (1 - rho) g^2
        update = -lr * g / (sqrt(v) + epsilon)

    Parameters
    ----------
    params : list of ndarray
    learning_rate_init, lr_schedule, power_t : see :class:`BaseOptimizer`.
    rho : float in [0, 1)
    epsilon : float > 0
    """

    def __init__(
        self,
        params,
        learning_rate_init=0.001,
        lr_schedule="constant",
        power_t=0.5,
        rho=0.9,
        epsilon=1e-8,
    ):
        super().__init__(learning_rate_init, lr_schedule, power_t)
        self.rho = rho
        self.epsilon = epsilon
        self.vs = [np.zeros_like(param) for param in params]

    def _get_updates(self, grads):
        updates = []
        rho, epsilon = float(self.rho), float(self.epsilon)
        for v, grad in zip(self.vs, grads):
            v *= rho
            v += (1.0 - rho) * np.square(grad)
            denom = np.sqrt(v)
            denom += epsilon
            updates.append(-self.learning_rate * grad / denom)
        return updates


def clip_grad_norm(grads, max_norm, norm=None):
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (pass it as ``norm`` when already known). The
    norm is taken over all arrays at once, as PyTorch's ``clip_grad_norm_`` does, so
    the direction of the update is kept.
    """
    if norm is None:
        norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    scale = float(max_norm / (norm + 1e-6))  # a Python float: see _get_updates
    if scale < 1.0:
        for grad in grads:
            grad *= scale
    return norm
