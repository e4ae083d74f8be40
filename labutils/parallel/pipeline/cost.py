"""Pipeline parallelism's cost model in closed form: bubble, step time, messages, memory.

Chapter 7. The simulator (:func:`labutils.parallel.pipeline.schedule.simulate`) is the
reference these formulas are tested against. Two definitions of "bubble" are in use:
``"ratio"`` (Narayanan et al. 2021, Sec. 2.2.1: bubble over ideal compute, (p − 1)/m) and
``"idle"`` (the share of the step a rank sits idle; GPipe's (K − 1)/(M + K − 1)).
"""

from __future__ import annotations

from labutils.activations import activation_bytes_per_layer
from labutils.validate import non_negative, positive_int

DEFINITIONS = ("ratio", "idle")


def bubble_fraction(p: int, m: int, v: int = 1, definition: str = "ratio") -> float:
    """Pipeline bubble of AFAB / 1F1B (v = 1) or interleaved 1F1B (v chunks per rank).

    ``"ratio"``: bubble over ideal compute, (p - 1)/(v·m) (Narayanan et al. 2021, Sec. 2.2);
    ``"idle"``: bubble over the whole step, (p - 1)/(v·m + p - 1) (GPipe's form for v = 1).
    """
    p, m, v = positive_int("p", p), positive_int("m", m), positive_int("v", v)
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    if definition == "ratio":
        return (p - 1) / (v * m)
    return (p - 1) / (v * m + p - 1)


def pipeline_step_time_s(p: int, m: int, t_f_s: float, t_b_s: float, v: int = 1,
                         t_p2p_s: float = 0.0) -> float:
    """Seconds per step: (m + (p - 1)/v)·(t_f + t_b), plus 2(p - 1)·t_p2p of transfers on the
    fill and drain path. Exact for AFAB; exact for 1F1B and interleaved when t_p2p = 0 (with
    t_p2p > 0 their steady state can expose more transfers: the simulator is the reference)."""
    p, m, v = positive_int("p", p), positive_int("m", m), positive_int("v", v)
    t_f_s, t_b_s = non_negative("t_f_s", t_f_s), non_negative("t_b_s", t_b_s)
    return (m + (p - 1) / v) * (t_f_s + t_b_s) + 2 * (p - 1) * non_negative("t_p2p_s", t_p2p_s)


def p2p_messages(p: int, m: int, v: int = 1) -> int:
    """Point-to-point messages per step: each micro-batch crosses v·p - 1 rank boundaries forward
    (its activation) and as many backward (its gradient). Interleaving sends about v times more."""
    p, m, v = positive_int("p", p), positive_int("m", m), positive_int("v", v)
    return 0 if p == 1 else 2 * m * (v * p - 1)


def p2p_bytes_per_message(seq_len: int, micro_batch: int, d_model: int,
                          bytes_per_element: int = 2) -> int:
    """Bytes of one activation (or gradient) tensor sent between stages: s·b·h elements."""
    return (positive_int("seq_len", seq_len) * positive_int("micro_batch", micro_batch)
            * positive_int("d_model", d_model) * positive_int("bytes_per_element", bytes_per_element))


def stage_activation_bytes(peak_microbatches: float, layers_per_stage: int, seq_len: int,
                           micro_batch: int, d_model: int, n_heads: int, **kwargs) -> float:
    """Peak activation bytes a stage holds: peak micro-batches in flight × layers on the stage ×
    :func:`labutils.activations.activation_bytes_per_layer` (keyword options passed on: tp,
    sequence_parallel, recompute, bytes_per_element, dropout). ``peak_microbatches`` is in
    whole-stage units (for interleaved, chunks / v)."""
    peak_microbatches = non_negative("peak_microbatches", peak_microbatches)
    per_layer = activation_bytes_per_layer(seq_len, micro_batch, d_model, n_heads, **kwargs)
    return peak_microbatches * positive_int("layers_per_stage", layers_per_stage) * per_layer
