"""Fitting scaling laws: power laws, Chinchilla's Approach 3 (parametric) and Approach 2 (IsoFLOP).

* :func:`fit_power_law` — least squares on log y = log k + p·log x.
* :func:`fit_chinchilla` — Approach 3 of Hoffmann et al. 2022 (Sec. 3.3 and App. D.2): minimise
  the Huber loss (δ = 1e-3) between the predicted and observed *log* loss, with
  L-BFGS, started from a grid of initialisations, keeping the best. Parametrised as
  ``log L̂ = LSE(a − α·log N, b − β·log D, e)`` with A = e^a, B = e^b, E = e^e, which keeps
  A, B, E positive and the problem smooth.
* :func:`fit_isoflop` / :func:`fit_isoflops` — Approach 2 (Sec. 3.2): for each compute budget,
  fit a parabola to loss against log N and read off the minimum N_opt(C).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from labutils.scaling.law import ChinchillaLaw, _check_finite_positive

# Hoffmann et al. 2022, App. D.2: the grid of L-BFGS initialisations for Approach 3.
HOFFMANN_GRID = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}
HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, Sec. 3.3


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run scipy's bundled OpenBLAS on one thread inside the block (restored afterwards).

    Why: scipy's L-BFGS-B calls BLAS on 5-vectors; with two BLAS threads on a busy 2-core
    machine each call waits for a spinning helper thread, and one fit took 15-25x longer
    (measured here: 1.0 s vs 0.05 s per L-BFGS run). This is what ``threadpoolctl`` does; if the
    library is not found (another scipy build), the block simply runs unchanged.
    """
    lib = None
    try:
        import scipy

        pattern = os.path.join(os.path.dirname(scipy.__file__) + ".libs", "libscipy_openblas*.so*")
        paths = glob.glob(pattern)
        if paths:
            lib = ctypes.CDLL(paths[0])
            old = lib.scipy_openblas_get_num_threads()
            lib.scipy_openblas_set_num_threads(1)
    except (OSError, AttributeError):
        lib = None
    try:
        yield
    finally:
        if lib is not None:
            lib.scipy_openblas_set_num_threads(old)


def _same_length_arrays(**arrays: object) -> list[np.ndarray]:
    out = [np.ravel(_check_finite_positive(k, v)) for k, v in arrays.items()]
    n = {len(a) for a in out}
    if len(n) != 1:
        sizes = ", ".join(f"{k}: {len(a)}" for k, a in zip(arrays, out))
        raise ValueError(f"inputs must have the same length, got {sizes}")
    return out


def fit_power_law(x: object, y: object) -> tuple[float, float]:
    """Fit y = coefficient · x^exponent by least squares in log–log space.

    ``x`` and ``y`` are positive, finite, same length (at least 2, not all x equal).
    Returns ``(coefficient, exponent)``.
    """
    lx, ly = (np.log(a) for a in _same_length_arrays(x=x, y=y))
    if len(lx) < 2:
        raise ValueError(f"need at least 2 points, got {len(lx)}")
    if np.ptp(lx) == 0:
        raise ValueError("x must take at least two distinct values")
    exponent, intercept = np.polyfit(lx, ly, 1)
    return float(np.exp(intercept)), float(exponent)


def _check_delta(delta: object) -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
        raise TypeError(f"delta must be a positive finite number, got {type(delta).__name__} ({delta!r})")
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be positive and finite (in (0, inf)), got {delta!r}")
    return float(delta)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: r²/2 for |r| <= delta, delta·(|r| − delta/2) beyond (Huber 1964).

    ``r`` (residuals, any shape) must be finite; ``delta`` > 0 is where the quadratic turns linear.
    """
    delta = _check_delta(delta)
    if isinstance(r, (bool, str)):
        raise TypeError(f"r must be a number or an array of numbers, got {r!r}")
    r = np.asarray(r, dtype=float)
    if not np.all(np.isfinite(r)):
        raise ValueError("r must be finite (no NaN or inf)")
    return _huber(r, delta)


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    """:func:`huber` without the checks, for the optimiser's inner loop (which may probe inf)."""
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r**2, delta * (ar - 0.5 * delta))


def _objective(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """Sum of Huber(LSE(a − α logN, b − β logD, e) − log L) and its gradient in (a, b, e, α, β)."""
    a, b, e, alpha, beta = theta
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])  # (3, n)
    m = t.max(axis=0)
    w = np.exp(t - m)  # (3, n)
    s = w.sum(axis=0)
    pred = m + np.log(s)  # log L̂, (n,)
    r = pred - logL
    dh = np.clip(r, -delta, delta)  # Huber derivative
    p = w / s  # softmax weights = ∂pred/∂(a, b, e), (3, n)
    grad = np.array([
        (dh * p[0]).sum(),
        (dh * p[1]).sum(),
        (dh * p[2]).sum(),
        -(dh * p[0] * logN).sum(),
        -(dh * p[1] * logD).sum(),
    ])
    return float(_huber(r, delta).sum()), grad


def _grid_objective(starts: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
                    delta: float) -> np.ndarray:
    """Objective at every start at once: starts (S, 5) → (S,)."""
    a, b, e, alpha, beta = (starts[:, i : i + 1] for i in range(5))  # each (S, 1)
    t = np.stack([a - alpha * logN, b - beta * logD, np.broadcast_to(e, (len(starts), len(logN)))])
    pred = np.logaddexp.reduce(t, axis=0)  # (S, n)
    return _huber(pred - logL, delta).sum(axis=1)


@dataclass(frozen=True)
class ChinchillaFit:
    """Result of :func:`fit_chinchilla_detailed`: the law plus how the optimiser got there."""

    law: ChinchillaLaw
    objective: float  # the minimised sum of Huber losses
    n_points: int
    n_starts: int  # L-BFGS runs actually made
    n_grid: int  # size of the initialisation grid


def fit_chinchilla_detailed(N: object, D: object, loss: object, *, delta: float = HUBER_DELTA,
                            grid: dict[str, tuple[float, ...]] | None = None,
                            n_starts: int | None = 32, source: str = "") -> ChinchillaFit:
    """Approach 3 of Hoffmann et al. 2022 (App. D.2), returning diagnostics too.

    ``N`` (parameters), ``D`` (tokens) and ``loss`` (nats/token) are same-length positive arrays
    (at least 5 points: the law has 5 parameters). ``grid`` maps ``alpha, beta, e, a, b`` to
    initial values (default :data:`HOFFMANN_GRID`, 4,500 starts). The paper runs L-BFGS from every
    grid point; to keep a notebook fast we evaluate the objective on the whole grid, then run
    L-BFGS from the ``n_starts`` best points (``n_starts=None``: from all of them, as the paper).
    """
    n, d, l = _same_length_arrays(N=N, D=D, loss=loss)
    if len(n) < 5:
        raise ValueError(f"need at least 5 (N, D, loss) points to fit 5 parameters, got {len(n)}")
    delta = _check_delta(delta)
    if n_starts is not None and (isinstance(n_starts, bool) or not isinstance(n_starts, int)
                                 or n_starts < 1):
        raise ValueError(f"n_starts must be a positive int or None, got {n_starts!r}")
    g = HOFFMANN_GRID if grid is None else grid
    missing = {"alpha", "beta", "e", "a", "b"} - set(g)
    if missing:
        raise ValueError(f"grid must give values for alpha, beta, e, a, b; missing {sorted(missing)}")
    for key in ("alpha", "beta", "e", "a", "b"):
        values = np.asarray(g[key], dtype=float).ravel()
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"grid[{key!r}] must hold at least one finite value, got {g[key]!r}")
    logN, logD, logL = np.log(n), np.log(d), np.log(l)
    starts = np.array(list(itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])),
                      dtype=float)  # (S, 5) in the order (a, b, e, alpha, beta)
    if n_starts is not None and n_starts < len(starts):
        order = np.argsort(_grid_objective(starts, logN, logD, logL, delta), kind="stable")
        chosen = starts[order[:n_starts]]
    else:
        chosen = starts
    best = None
    with np.errstate(over="ignore", invalid="ignore"), _single_threaded_blas():
        for x0 in chosen:
            res = minimize(_objective, x0, args=(logN, logD, logL, delta), jac=True,
                           method="L-BFGS-B", options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-12})
            if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
                best = res
    if best is None:
        raise RuntimeError("every L-BFGS run diverged; check the data")
    a, b, e, alpha, beta = best.x
    if alpha <= 0 or beta <= 0:
        raise RuntimeError(
            f"the best fit has a non-positive exponent (alpha={alpha:.3g}, beta={beta:.3g}); "
            "the data do not constrain the law (too few sizes or budgets?)")
    label = source or f"Approach 3 fit (Huber δ={delta:g}, L-BFGS) to {len(n)} runs"
    law = ChinchillaLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)),
                        alpha=float(alpha), beta=float(beta), source=label)
    return ChinchillaFit(law=law, objective=float(best.fun), n_points=len(n),
                         n_starts=len(chosen), n_grid=len(starts))


def fit_chinchilla(N: object, D: object, loss: object, *, delta: float = HUBER_DELTA,
                   grid: dict[str, tuple[float, ...]] | None = None, n_starts: int | None = 32,
                   source: str = "") -> ChinchillaLaw:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta by Approach 3 (see :func:`fit_chinchilla_detailed`)."""
    return fit_chinchilla_detailed(N, D, loss, delta=delta, grid=grid, n_starts=n_starts,
                                   source=source).law


@dataclass(frozen=True)
class IsoFLOPFit:
    """A parabola loss = c0 + c1·x + c2·x², x = ln N, fitted to one IsoFLOP curve."""

    budget_flops: float
    n_opt: float  # parameters at the parabola's minimum
    loss_min: float  # loss at that minimum, nats/token
    coeffs: tuple[float, float, float]  # (c0, c1, c2)
    n_points: int

    def predict(self, N: object) -> float | np.ndarray:
        """The parabola's loss at N parameters."""
        x = np.log(_check_finite_positive("N", N))
        c0, c1, c2 = self.coeffs
        out = c0 + c1 * x + c2 * x**2
        return float(out) if out.ndim == 0 else out

    @property
    def d_opt(self) -> float:
        """Tokens at the minimum: D = C / (6·N_opt)."""
        return self.budget_flops / (6.0 * self.n_opt)


def fit_isoflop(N: object, loss: object, budget_flops: float) -> IsoFLOPFit:
    """Approach 2 for one budget: parabola in ln N through (N, loss), minimum → N_opt.

    Needs at least 3 distinct sizes and an upward-opening parabola (a real minimum); otherwise
    ValueError, because a budget whose runs do not bracket the optimum cannot locate it.
    """
    n, l = _same_length_arrays(N=N, loss=loss)
    _check_finite_positive("budget_flops", budget_flops)
    if len(np.unique(n)) < 3:
        raise ValueError(f"need at least 3 distinct model sizes per IsoFLOP curve, got {len(np.unique(n))}")
    x = np.log(n)
    c2, c1, c0 = np.polyfit(x, l, 2)
    if c2 <= 0:
        raise ValueError(f"the IsoFLOP parabola at C={budget_flops:.3g} opens downward (no minimum)")
    x_opt = -c1 / (2 * c2)
    return IsoFLOPFit(budget_flops=float(budget_flops), n_opt=float(np.exp(x_opt)),
                      loss_min=float(c0 + c1 * x_opt + c2 * x_opt**2),
                      coeffs=(float(c0), float(c1), float(c2)), n_points=len(n))


def fit_isoflops(N: object, budget_flops: object, loss: object) -> list[IsoFLOPFit]:
    """:func:`fit_isoflop` for every distinct budget (sorted); each run is tagged with its budget."""
    n, c, l = _same_length_arrays(N=N, budget_flops=budget_flops, loss=loss)
    return [fit_isoflop(n[c == b], l[c == b], float(b)) for b in np.unique(c)]
