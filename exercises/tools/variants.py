"""Reference implementations of the assignments' *variant* parts (instructor only).

Every assignment has at least one implementation part that asks for something ``labutils`` does
not contain (a variant or an extension of what the chapter builds), so that reading the package
helps a student but does not hand over the answer. Their references live here, in the
instructor's tools, never in ``labutils`` (which students get). The hidden tests import this
module in the clean grader (``clean_check.py`` puts this folder on ``sys.path``);
tests/test_grading_variants.py checks each function against hand-worked values and independent
formulas or simulations.

Units: FLOPs, bytes, seconds and elements as the names say; learning rates in the optimiser's
units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# 01_flops: a Llama-style block (GQA attention, SwiGLU MLP, untied LM head) with a sliding window
# ---------------------------------------------------------------------------------------------


def llama_train_flops_per_token(vocab_size: int, seq_len: int, d_model: int, n_layers: int,
                                n_heads: int, n_kv_heads: int, d_ff: int,
                                window: int | None = None) -> float:
    """Training matmul FLOPs per token (forward + backward) of a GQA + SwiGLU decoder whose
    attention sees the last ``window`` positions (None: all of them).

    Per layer, the weights that take part in a matmul: W_Q and W_O (d×d), W_K and W_V
    (d × n_kv·d/n_heads, grouped-query attention, Ainslie et al. 2023), and SwiGLU's gate, up
    (d×d_ff) and down (d_ff×d) matrices; plus the LM head (V×d). Each costs 6 FLOPs per token in
    training. Q·Kᵀ and P·V add 12·L·d·min(T, W): every query meets min(T, W) keys (sliding-window
    attention, Mistral 7B, Jiang et al. 2023, Sec. 2; W = T gives PaLM's 12·L·d·T, App. B).
    """
    d, head_dim = d_model, d_model // n_heads
    kv = n_kv_heads * head_dim  # width of K and of V
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * d_ff  # Q, O; K, V; gate, up, down
    matmul_weights = n_layers * per_layer + vocab_size * d
    keys = seq_len if window is None else min(seq_len, window)
    return float(6 * matmul_weights + 12 * n_layers * d * keys)


# ---------------------------------------------------------------------------------------------
# 02_scaling_laws: the cheapest (N, D) that reaches a target loss
# ---------------------------------------------------------------------------------------------


def cheapest_for_loss(target_loss: float, E: float, A: float, B: float, alpha: float,
                      beta: float) -> tuple[float, float]:
    """(N, D) minimising C = 6·N·D subject to E + A/N^α + B/D^β = target_loss.

    Lagrange: α·A/N^α = β·B/D^β at the optimum, so the reducible loss L* − E splits into
    A/N^α = (L* − E)·β/(α + β) and B/D^β = (L* − E)·α/(α + β).
    """
    if not target_loss > E:
        raise ValueError(f"target_loss must be above E={E}, got {target_loss}")
    gap = target_loss - E
    model_term = gap * beta / (alpha + beta)  # A / N^alpha
    data_term = gap * alpha / (alpha + beta)  # B / D^beta
    return (A / model_term) ** (1 / alpha), (B / data_term) ** (1 / beta)


# ---------------------------------------------------------------------------------------------
# 03_throughput: the serial fraction a measured speedup implies
# ---------------------------------------------------------------------------------------------


def serial_fraction_from_speedup(speedup: float, n: int) -> float:
    """Amdahl's law solved for the serial fraction: 1/S = s + (1 − s)/n gives
    s = (1/S − 1/n) / (1 − 1/n), for a measured speedup S on n > 1 processors."""
    return (1 / speedup - 1 / n) / (1 - 1 / n)


# ---------------------------------------------------------------------------------------------
# 04_memory: ZeRO with another optimizer
# ---------------------------------------------------------------------------------------------

# Optimizer-state bytes per parameter, K in ZeRO's 2Ψ + 2Ψ + KΨ (Rajbhandari et al. 2020,
# Sec. 3.1: K = 12 for mixed-precision Adam: fp32 master weights, momentum and variance). The
# others follow the same bookkeeping: fp32 master + one fp32 momentum (8), fp32 master only (4).
OPTIMIZER_K = {"adam": 12, "sgd_momentum": 8, "sgd": 4}


def zero_bytes_with_optimizer(n_params: int, zero_stage: int, dp: int, optimizer: str) -> int:
    """Model-state bytes on one device: 16-bit weights and gradients, K bytes of optimizer state
    per parameter (``OPTIMIZER_K``), ZeRO stage 0-3 over ``dp`` ranks (shards of ceil(n/dp))."""
    shard = -(-n_params // dp)
    weights = 2 * (shard if zero_stage == 3 else n_params)
    grads = 2 * (shard if zero_stage >= 2 else n_params)
    states = OPTIMIZER_K[optimizer] * (n_params if zero_stage == 0 else shard)
    return weights + grads + states


# ---------------------------------------------------------------------------------------------
# 05_data_parallel: a hierarchical (two-level) ring all-reduce
# ---------------------------------------------------------------------------------------------


def hierarchical_allreduce_time_s(n_bytes: float, gpus_per_node: int, n_nodes: int,
                                  alpha_intra_s: float, beta_intra_s_per_byte: float,
                                  alpha_inter_s: float, beta_inter_s_per_byte: float) -> float:
    """Seconds for reduce-scatter inside each node (ring of g GPUs), an all-reduce of each 1/g
    shard across the nodes (ring of N nodes, all shards in parallel on separate links) and an
    all-gather inside each node, in the α–β model."""
    g, N = gpus_per_node, n_nodes
    intra = 2 * (g - 1) * alpha_intra_s + 2 * (g - 1) / g * n_bytes * beta_intra_s_per_byte
    inter = 2 * (N - 1) * alpha_inter_s + 2 * (N - 1) / N * (n_bytes / g) * beta_inter_s_per_byte
    return intra + inter


# ---------------------------------------------------------------------------------------------
# 06_tensor_parallel: a SwiGLU MLP under tensor parallelism
# ---------------------------------------------------------------------------------------------


def silu(x: np.ndarray) -> np.ndarray:
    """x·sigmoid(x), elementwise."""
    return x / (1.0 + np.exp(-x))


def swiglu_mlp(X: np.ndarray, W_gate: np.ndarray, W_up: np.ndarray, W_down: np.ndarray) -> np.ndarray:
    """(silu(X·W_gate) ⊙ (X·W_up))·W_down on one device (Shazeer 2020). X: (n, d); W_gate,
    W_up: (d, f); W_down: (f, d) -> (n, d)."""
    return (silu(X @ W_gate) * (X @ W_up)) @ W_down


def tp_swiglu_partials(X, W_gate, W_up, W_down, t: int) -> list[np.ndarray]:
    """Rank r's partial output: column block r of W_gate and W_up, row block r of W_down (no
    communication until the final all-reduce, which sums the partials)."""
    gates, ups = np.split(W_gate, t, axis=1), np.split(W_up, t, axis=1)
    downs = np.split(W_down, t, axis=0)
    return [swiglu_mlp(X, g, u, w) for g, u, w in zip(gates, ups, downs)]


# ---------------------------------------------------------------------------------------------
# 07_pipeline: stages of unequal cost (an event simulation, the reference)
# ---------------------------------------------------------------------------------------------


def _order(schedule: str, p: int, m: int, s: int) -> list[tuple[str, int]]:
    if schedule == "afab":
        return [("F", k) for k in range(m)] + [("B", k) for k in range(m)]
    warm = min(p - s - 1, m)
    ops = [("F", k) for k in range(warm)]
    for k in range(m - warm):
        ops += [("F", warm + k), ("B", k)]
    return ops + [("B", k) for k in range(m - warm, m)]


def simulate_step_time_s(schedule: str, t_f: Sequence[float], t_b: Sequence[float], m: int) -> float:
    """Makespan of one step: stage s runs its ops in the schedule's order ("afab" or "1f1b"),
    each as soon as the stage is free and its input is ready (F(k) after F(k) on stage s−1,
    B(k) after B(k) on stage s+1, or after F(k) on the last stage); transfers are free.
    ``t_f[s]``, ``t_b[s]``: seconds of one micro-batch's forward/backward on stage s."""
    p = len(t_f)
    orders = [_order(schedule, p, m, s) for s in range(p)]
    end: dict[tuple[int, str, int], float] = {}
    nxt, free = [0] * p, [0.0] * p
    left = sum(len(o) for o in orders)
    while left:
        moved = False
        for s in range(p):
            while nxt[s] < len(orders[s]):
                kind, k = orders[s][nxt[s]]
                if kind == "F":
                    dep = (s - 1, "F", k) if s > 0 else None
                else:
                    dep = (s + 1, "B", k) if s < p - 1 else (s, "F", k)
                if dep is not None and dep not in end:
                    break
                start = max(free[s], end[dep] if dep else 0.0)
                free[s] = end[(s, kind, k)] = start + (t_f[s] if kind == "F" else t_b[s])
                nxt[s] += 1
                left -= 1
                moved = True
        if not moved:
            raise RuntimeError("deadlock")
    return max(end.values())


# ---------------------------------------------------------------------------------------------
# 08_context_parallel: the striped (round-robin) layout
# ---------------------------------------------------------------------------------------------


def striped_work(seq_len: int, p: int) -> list[int]:
    """Unmasked causal (query, key) pairs per rank when token t lives on rank t mod p
    (Striped Attention, Brandon et al. 2023); query t sees keys 0..t (t + 1 of them)."""
    work = [0] * p
    for t in range(seq_len):
        work[t % p] += t + 1
    return work


# ---------------------------------------------------------------------------------------------
# 09_precision: block-wise absmax int8
# ---------------------------------------------------------------------------------------------


def blockwise_absmax_int8(x, block: int):
    """(int8 codes, float32 scales) with one absmax scale per ``block`` consecutive elements of
    the flattened tensor (the last block may be shorter); a block of zeros gets scale 1.0.
    Codes have x's shape; scales have ceil(numel/block) entries."""
    import torch

    flat = x.reshape(-1).to(torch.float32)
    n_blocks = -(-flat.numel() // block)
    q = torch.empty(flat.numel(), dtype=torch.int8)
    scales = torch.empty(n_blocks, dtype=torch.float32)
    for i in range(n_blocks):
        part = flat[i * block:(i + 1) * block]
        amax = float(part.abs().max())
        scale = amax / 127 if amax > 0 else 1.0
        scales[i] = scale
        q[i * block:(i + 1) * block] = torch.round(part / scale).clamp(-127, 127).to(torch.int8)
    return q.reshape(x.shape), scales


# ---------------------------------------------------------------------------------------------
# 10_mup: the same table after an abc shift (multipliers instead of init scaling)
# ---------------------------------------------------------------------------------------------


def mup_layer_multiplier_form(kind: str, width_ratio: float, n_layers: int, sigma: float,
                              eta: float, alpha_out: float = 1.0, batch_ratio: float = 1.0):
    """(init_std, multiplier, lr) of the lecture's muP table for Adam, rewritten with the abc
    symmetry so that every layer keeps the base init std: a layer whose table std is σ_t gets
    θ = σ_t/σ_base (σ_base = sigma, times (2L)^-1/2 for residual_out), multiplier × θ, init std
    ÷ θ and LR ÷ θ (Yang et al. 2022, Sec. 3 "abc-symmetry"; Adam with ε = 0)."""
    matrix = kind in ("hidden", "residual_out")
    base_std = sigma * ((2 * n_layers) ** -0.5 if kind == "residual_out" else 1.0)
    table_std = base_std * (width_ratio ** -0.5 if matrix else 1.0)  # TP-V Table 3, Init. Var.
    table_mult = alpha_out / width_ratio if kind == "readout" else 1.0
    table_lr = eta * batch_ratio ** 0.5 / (width_ratio if matrix else 1.0)
    theta = table_std / base_std  # the shift that brings the init std back to the base value
    return table_std / theta, table_mult * theta, table_lr / theta


# ---------------------------------------------------------------------------------------------
# 11_recipe: WSD with a half-cosine cooldown and a warm-up from zero
# ---------------------------------------------------------------------------------------------


def wsd_cosine(step: int, total_steps: int, peak_lr: float, warmup_steps: int, decay_steps: int,
               min_lr_ratio: float = 0.0) -> float:
    """LR at 0-based ``step``: peak·step/warmup during the warm-up (0 at step 0), then peak,
    then over the last ``decay_steps`` steps floor + (peak − floor)·(1 + cos(π·progress))/2 with
    progress = (step − (total − decay) + 1)/decay (the last step lands on the floor)."""
    floor = peak_lr * min_lr_ratio
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    first_decay_step = total_steps - decay_steps
    if step < first_decay_step:
        return peak_lr
    progress = (step + 1 - first_decay_step) / decay_steps
    return floor + (peak_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------------------------
# 12_capstone: 4-D layouts with TP and CP kept inside a node
# ---------------------------------------------------------------------------------------------


def valid_layouts_cp(n_gpus: int, gpus_per_node: int, n_layers: int, n_heads: int, seq_len: int,
                     global_batch_seqs: int) -> list[tuple[int, int, int, int]]:
    """Sorted (dp, tp, pp, cp) with dp·tp·pp·cp = n_gpus, tp·cp dividing gpus_per_node (both
    groups inside one node), tp | n_heads, pp | n_layers, 2·cp | seq_len when cp > 1 (zigzag),
    dp | global_batch_seqs. Brute force over every triple of divisors of n_gpus."""
    divisors = [k for k in range(1, n_gpus + 1) if n_gpus % k == 0]
    out = []
    for tp in divisors:
        for cp in divisors:
            for pp in divisors:
                if n_gpus % (tp * cp * pp):
                    continue
                dp = n_gpus // (tp * cp * pp)
                ok = (gpus_per_node % (tp * cp) == 0 and n_heads % tp == 0 and n_layers % pp == 0
                      and (cp == 1 or seq_len % (2 * cp) == 0) and global_batch_seqs % dp == 0)
                if ok:
                    out.append((dp, tp, pp, cp))
    return sorted(out)
