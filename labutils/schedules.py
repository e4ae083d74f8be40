"""Learning-rate schedules: constant, cosine, warm-up-stable-decay (WSD) and inverse square root.

Every schedule maps a 0-based optimiser ``step`` to a learning rate (same units as ``peak_lr``)
and starts with the same linear warm-up, ``peak_lr · (step + 1) / warmup_steps`` for
``step < warmup_steps``. After the warm-up:

* :func:`constant`: ``peak_lr`` until the end;
* :func:`cosine`: half a cosine from ``peak_lr`` down to ``peak_lr · min_lr_ratio`` over the rest
  of the run (SGDR without restarts, Loshchilov & Hutter 2017);
* :func:`wsd`: flat at ``peak_lr`` (the *stable* phase), then a cooldown over the last
  ``decay_steps`` to ``peak_lr · min_lr_ratio``, either linear or "1-sqrt"
  (Hu et al. 2024, MiniCPM; Hägele et al. 2024, who found the 1-sqrt cooldown best);
* :func:`inverse_sqrt`: ``peak_lr · sqrt(warmup_steps / (step + 1))`` (Vaswani et al. 2017).

:func:`lr_schedule` picks one by name (widgets and notebooks), :func:`schedule_curve` evaluates a
whole run. ``labutils.train`` trains with :func:`cosine` by default, and
:mod:`labutils.schedule_runs` trains the tiny GPT under two of them (cosine against WSD).
"""

from __future__ import annotations

import math

import numpy as np

from labutils.validate import fraction, integer, number

KINDS = ("constant", "cosine", "wsd", "inverse_sqrt")
COOLDOWNS = ("linear", "1-sqrt")


def _check(step: int, total_steps: int, peak_lr: float, warmup_steps: int) -> None:
    integer("total_steps", total_steps, 1)
    integer("step", step, 0, total_steps - 1)
    number("peak_lr", peak_lr, low=0, low_open=True)
    integer("warmup_steps", warmup_steps, 0, total_steps)


def _warmup(step: int, peak_lr: float, warmup_steps: int) -> float:
    """Linear warm-up value at ``step < warmup_steps``: reaches ``peak_lr`` on its last step."""
    return peak_lr * (step + 1) / warmup_steps


def constant(step: int, total_steps: int, *, peak_lr: float, warmup_steps: int = 0) -> float:
    """Linear warm-up, then ``peak_lr`` for the rest of the run."""
    _check(step, total_steps, peak_lr, warmup_steps)
    return _warmup(step, peak_lr, warmup_steps) if step < warmup_steps else peak_lr


def cosine(step: int, total_steps: int, *, peak_lr: float, warmup_steps: int = 0,
           min_lr_ratio: float = 0.0) -> float:
    """Linear warm-up, then a half cosine from ``peak_lr`` to ``peak_lr · min_lr_ratio``.

    ``progress = (step − warmup_steps) / (total_steps − warmup_steps)`` runs from 0 to just
    below 1, so the last step sits a hair above the floor (the formula chapter 2 trained with).
    """
    _check(step, total_steps, peak_lr, warmup_steps)
    fraction("min_lr_ratio", min_lr_ratio)
    if step < warmup_steps:
        return _warmup(step, peak_lr, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 → 1 over the decay
    cos = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return peak_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cos)


def wsd(step: int, total_steps: int, *, peak_lr: float, warmup_steps: int = 0,
        decay_steps: int, min_lr_ratio: float = 0.0, cooldown: str = "linear") -> float:
    """Warm-up, stable at ``peak_lr``, then a cooldown over the last ``decay_steps`` steps.

    In the cooldown, ``progress = (step − decay_start + 1) / decay_steps`` (so the last step,
    ``total_steps − 1``, lands exactly on the floor ``peak_lr · min_lr_ratio``) and the LR is
    ``floor + (peak − floor) · (1 − progress)`` (``"linear"``) or
    ``floor + (peak − floor) · (1 − sqrt(progress))`` (``"1-sqrt"``, Hägele et al. 2024).
    The warm-up and the cooldown may not overlap.
    """
    _check(step, total_steps, peak_lr, warmup_steps)
    integer("decay_steps", decay_steps, 0, total_steps - warmup_steps)
    fraction("min_lr_ratio", min_lr_ratio)
    if cooldown not in COOLDOWNS:
        raise ValueError(f"cooldown must be one of {COOLDOWNS}, got {cooldown!r}")
    if step < warmup_steps:
        return _warmup(step, peak_lr, warmup_steps)
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return peak_lr
    progress = (step - decay_start + 1) / decay_steps  # 1/decay_steps … 1
    shape = 1.0 - progress if cooldown == "linear" else 1.0 - math.sqrt(progress)
    return peak_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * shape)


def inverse_sqrt(step: int, total_steps: int, *, peak_lr: float, warmup_steps: int = 1) -> float:
    """Linear warm-up, then ``peak_lr · sqrt(warmup_steps / (step + 1))`` (Vaswani et al. 2017).

    Needs ``warmup_steps >= 1`` (the decay is scaled by it); ``total_steps`` only bounds ``step``.
    """
    _check(step, total_steps, peak_lr, warmup_steps)
    integer("warmup_steps", warmup_steps, 1, total_steps)
    if step < warmup_steps:
        return _warmup(step, peak_lr, warmup_steps)
    return peak_lr * math.sqrt(warmup_steps / (step + 1))


def lr_schedule(kind: str, step: int, total_steps: int, *, peak_lr: float, warmup_steps: int = 0,
                decay_steps: int = 0, min_lr_ratio: float = 0.0, cooldown: str = "linear") -> float:
    """The LR of schedule ``kind`` (one of :data:`KINDS`) at ``step``; unused arguments ignored."""
    if kind == "constant":
        return constant(step, total_steps, peak_lr=peak_lr, warmup_steps=warmup_steps)
    if kind == "cosine":
        return cosine(step, total_steps, peak_lr=peak_lr, warmup_steps=warmup_steps,
                      min_lr_ratio=min_lr_ratio)
    if kind == "wsd":
        return wsd(step, total_steps, peak_lr=peak_lr, warmup_steps=warmup_steps,
                   decay_steps=decay_steps, min_lr_ratio=min_lr_ratio, cooldown=cooldown)
    if kind == "inverse_sqrt":
        return inverse_sqrt(step, total_steps, peak_lr=peak_lr, warmup_steps=max(1, warmup_steps))
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def schedule_curve(kind: str, total_steps: int, **kwargs: object) -> np.ndarray:
    """The LR at every step 0 … total_steps − 1 (float64 array), see :func:`lr_schedule`."""
    integer("total_steps", total_steps, 1)
    return np.array([lr_schedule(kind, s, total_steps, **kwargs) for s in range(total_steps)])


def wsd_branch_steps(stable_end: int, decay_steps: int) -> int:
    """Total steps of a run branched from a WSD run's stable phase at step ``stable_end``.

    WSD's LR before the cooldown does not depend on the total budget, so a checkpoint taken at
    ``stable_end`` plus a cooldown of ``decay_steps`` gives the model of a run of
    ``stable_end + decay_steps`` steps: only the cooldown costs extra compute.
    """
    integer("stable_end", stable_end, 0)
    integer("decay_steps", decay_steps, 1)
    return stable_end + decay_steps
