"""A real comparison of learning-rate schedules (Chapter 11): the shared tiny GPT trained on the
Markov source under cosine and WSD schedules, and a WSD run branched from another's stable phase.

The schedules themselves are in :mod:`labutils.schedules`; the training loop in
:mod:`labutils.train`. Keeping this experiment apart keeps those two free of each other's imports
(``train`` uses ``schedules.cosine``; this module uses both).
"""

from __future__ import annotations

from labutils.markov import make_source
from labutils.model import tiny_config
from labutils.schedules import cosine, wsd
from labutils.train import TrainConfig, train
from labutils.validate import fraction, integer


def cosine_vs_wsd(long_steps: int = 400, short_steps: int = 240, *, decay_frac: float = 0.2,
                  peak_lr: float = 1e-2, warmup_steps: int = 20, batch_size: int = 16,
                  cooldown: str = "1-sqrt", seed: int = 0, progress: bool = True) -> dict:
    """Train the tiny GPT (:func:`labutils.train.train`) on an order-1 Markov source four times.

    Runs (all decay to 0): ``cosine_long`` and ``wsd_long`` over ``long_steps``; ``cosine_short``
    over ``short_steps`` (a cosine must be re-run for a new budget); ``wsd_branch``: the WSD run
    whose stable phase is ``wsd_long``'s first ``short_steps − decay`` steps, then its own
    cooldown of ``decay = round(decay_frac · long_steps)`` steps. Training is deterministic on
    CPU, so the branch's stable phase reproduces ``wsd_long``'s bit for bit
    (``prefix_identical``): in practice one would resume from the checkpoint at that step and pay
    only the cooldown (``steps_paid``).

    Returns a dict: ``runs`` (name → TrainResult), ``prefix_identical`` (bool), ``steps_paid``
    (schedule → optimiser steps to get both budgets' models), ``entropy_nats`` (the source's
    entropy rate, the best possible loss), ``decay_steps``.
    """
    integer("long_steps", long_steps, 2)
    integer("short_steps", short_steps, 2, long_steps)
    fraction("decay_frac", decay_frac)
    decay = max(1, round(decay_frac * long_steps))
    if decay > short_steps - warmup_steps:
        raise ValueError(f"decay_frac · long_steps = {decay} must leave room for warm-up in "
                         f"short_steps = {short_steps}")
    src = make_source(vocab_size=64, order=1, concentration=0.3, seed=seed)
    tokens, held_out = src.sample(64, 2048, seed=seed + 1), src.sample(16, 512, seed=seed + 2)
    model_cfg = tiny_config(vocab_size=64, seq_len=32, d_model=32, n_heads=2)

    def cos_fn(step: int, total: int) -> float:
        return cosine(step, total, peak_lr=peak_lr, warmup_steps=warmup_steps)

    def wsd_fn(step: int, total: int) -> float:
        return wsd(step, total, peak_lr=peak_lr, warmup_steps=warmup_steps, decay_steps=decay,
                   cooldown=cooldown)

    plan = {"cosine_long": (long_steps, cos_fn), "wsd_long": (long_steps, wsd_fn),
            "cosine_short": (short_steps, cos_fn), "wsd_branch": (short_steps, wsd_fn)}
    runs = {}
    for name, (steps, fn) in plan.items():
        tc = TrainConfig(tokens=steps * batch_size * model_cfg.seq_len, batch_size=batch_size,
                         log_every=4, eval_batches=16, seed=seed, threads=1, progress=progress,
                         label=name)
        runs[name] = train(model_cfg, tc, tokens, held_out, lr_fn=fn)
    branch_at = short_steps - decay
    n_shared = sum(1 for s, _ in runs["wsd_branch"].train_losses
                   if s <= branch_at * batch_size * model_cfg.seq_len)
    prefix = runs["wsd_branch"].train_losses[:n_shared] == runs["wsd_long"].train_losses[:n_shared]
    return {"runs": runs, "prefix_identical": bool(prefix and n_shared > 0),
            "steps_paid": {"cosine": long_steps + short_steps, "wsd": long_steps + decay},
            "entropy_nats": src.entropy_rate(), "decay_steps": decay, "branch_at": branch_at}
