"""What tensor (and sequence) parallelism costs: bytes moved, time, parameters and activations.

Chapter 6. Per transformer layer and micro-batch of b sequences of s tokens, width h, TP degree t:

* **Communication.** TP calls 2 all-reduces of the b·s·h activations in forward (after attention
  and after the MLP, operator g) and 2 in backward (operator f) (Shoeybi et al. 2019, Sec. 3,
  Fig. 4). A ring all-reduce sends 2(t−1)/t·n bytes per rank. Sequence parallelism replaces each
  all-reduce by an all-gather + reduce-scatter, each (t−1)/t·n: the same bytes (Korthikanti et
  al. 2022, Sec. 4.2.2).
* **Compute.** A layer's forward matmuls are 24·b·s·h² + 4·b·s²·h FLOPs, training 3× that
  (Narayanan et al. 2021, Sec. 5.1, without recomputation), split evenly over the t ranks.
* Communication is on the critical path (the next matmul needs its result), so we model a layer
  as compute + communication, no overlap: efficiency = compute / (compute + comm).

Activation memory is :func:`labutils.activations.activation_bytes_per_layer` (not repeated here).
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.flops import training_multiplier
from labutils.hardware import GPUS_PER_NODE, INFINIBAND, NVSWITCH, Link, check_link, link_for
from labutils.model import TransformerConfig
from labutils.parallel.alpha_beta import link_all_reduce_time
from labutils.validate import fraction, integer, positive

ALL_REDUCES_PER_LAYER = {"forward": 2, "backward": 2}  # Shoeybi et al. 2019, Fig. 4


def _check_tp(tp: object) -> int:
    return integer("tp", tp, 1)


def _check_tp_width(d_model: object, tp: object) -> tuple[int, int]:
    """(h, t) if t divides h: TP cuts each weight matrix into t equal column or row blocks."""
    h, t = integer("d_model", d_model, 1), _check_tp(tp)
    if h % t:
        raise ValueError(f"tp={t} must divide d_model={h} (each rank holds h/t columns)")
    return h, t


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return value


def tp_collectives_per_layer(sequence_parallel: bool = False) -> dict[str, dict[str, int]]:
    """Collective calls per layer, by direction: {"forward": {"all_reduce": 2}, ...}; with
    sequence parallelism 2 all-gathers and 2 reduce-scatters each way. Each moves a b·s·h tensor."""
    if _check_bool("sequence_parallel", sequence_parallel):
        return {d: {"all_gather": n, "reduce_scatter": n} for d, n in ALL_REDUCES_PER_LAYER.items()}
    return {d: {"all_reduce": n} for d, n in ALL_REDUCES_PER_LAYER.items()}


def tp_comm_bytes_per_layer(seq_len: int, micro_batch: int, d_model: int, tp: int, *,
                            bytes_per_element: int = 2, sequence_parallel: bool = False) -> float:
    """Bytes **one rank sends** per layer per training step (forward + backward), ring algorithms.

    TP: 4 all-reduces × 2(t−1)/t·b·s·h·e. TP + SP: 4 all-gathers + 4 reduce-scatters, each
    (t−1)/t·b·s·h·e, which is the same total. 0 when t = 1.
    """
    s, b = integer("seq_len", seq_len, 1), integer("micro_batch", micro_batch, 1)
    h, t = _check_tp_width(d_model, tp)
    e = integer("bytes_per_element", bytes_per_element, 1)
    n = s * b * h * e  # bytes of one activation tensor
    calls = tp_collectives_per_layer(sequence_parallel)
    total = 0.0
    for per_dir in calls.values():
        for kind, count in per_dir.items():
            factor = 2.0 if kind == "all_reduce" else 1.0  # reduce-scatter + all-gather = all-reduce
            total += count * factor * (t - 1) / t * n
    return total


def tp_block_param_count(cfg: TransformerConfig, tp: int) -> int:
    """Parameters one rank holds of one :class:`labutils.nn.gpt.Block` under TP degree ``tp``:
    the norms and the row-parallel biases (wo, fc_out) replicated, every matrix and the
    column-parallel biases divided by t."""
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a TransformerConfig, got {cfg!r}")
    t = _check_tp(tp)
    h, f = cfg.d_model, cfg.ffn_dim
    if h % t or f % t or cfg.n_heads % t:
        raise ValueError(f"tp={t} must divide d_model={h}, d_ff={f} and n_heads={cfg.n_heads}")
    n_in = 2 if cfg.mlp == "swiglu" else 1  # column matrices into the MLP
    norm = 2 * h if (cfg.norm == "layernorm" and cfg.bias) else h
    sharded = 4 * h * h // t + (n_in + 1) * h * f // t
    bias = (3 * h // t + n_in * f // t + 2 * h) if cfg.bias else 0
    return 2 * norm + sharded + bias


def layer_train_flops(seq_len: int, micro_batch: int, d_model: int) -> float:
    """FLOPs of one layer's forward + backward matmuls (all ranks together):
    3·(24·b·s·h² + 4·b·s²·h) (Narayanan et al. 2021, Sec. 5.1, no recomputation; 4h MLP)."""
    s, b = integer("seq_len", seq_len, 1), integer("micro_batch", micro_batch, 1)
    h = integer("d_model", d_model, 1)
    return training_multiplier() * (24.0 * b * s * h * h + 4.0 * b * s * s * h)


def tp_weight_bytes_per_layer(d_model: int, tp: int, *, bytes_per_element: int = 2) -> float:
    """Bytes of one layer's matmul weights on one rank: 12·h²/t·e (Q, K, V, O: 4h²; a 4h GELU
    MLP: 8h²); biases and the replicated norms (O(h)) are left out, see
    :func:`tp_block_param_count` for the exact count."""
    h, t = _check_tp_width(d_model, tp)
    return 12.0 * h * h / t * integer("bytes_per_element", bytes_per_element, 1)


def tp_layer_comm_time_s(seq_len: int, micro_batch: int, d_model: int, tp: int, link: Link, *,
                         bytes_per_element: int = 2) -> float:
    """Seconds of one layer's TP communication per training step: 4 ring all-reduces of
    b·s·h·e bytes on ``link`` (α–β model; sequence parallelism costs the same)."""
    h, t = _check_tp_width(d_model, tp)
    n_bytes = (integer("seq_len", seq_len, 1) * integer("micro_batch", micro_batch, 1)
               * h * integer("bytes_per_element", bytes_per_element, 1))
    return sum(ALL_REDUCES_PER_LAYER.values()) * link_all_reduce_time(n_bytes, t, link)


def link_for_tp(tp: int, gpus_per_node: int = GPUS_PER_NODE, intra: Link = NVSWITCH,
                inter: Link = INFINIBAND) -> Link:
    """The slowest link a TP group of ``tp`` GPUs uses: NVSwitch inside a node, else InfiniBand."""
    return link_for(_check_tp(tp), gpus_per_node, intra, inter)  # a TP group spans tp GPUs


@dataclass(frozen=True)
class TPLayerCost:
    """One layer, one micro-batch, one training step, on one rank (seconds)."""

    tp: int
    link: str
    compute_s: float  # matmuls of this rank's 1/t share, at peak · MFU
    comm_s: float  # 4 all-reduces of b·s·h·e bytes over the link (α–β ring)
    comm_bytes: float  # bytes this rank sends

    @property
    def step_s(self) -> float:
        return self.compute_s + self.comm_s

    @property
    def efficiency(self) -> float:
        """Time spent computing / total time: 1.0 means communication is free."""
        return self.compute_s / self.step_s


def tp_layer_cost(seq_len: int, micro_batch: int, d_model: int, tp: int, *, peak_flops: float,
                  mfu: float = 0.5, link: Link | None = None, bytes_per_element: int = 2,
                  gpus_per_node: int = GPUS_PER_NODE) -> TPLayerCost:
    """Compute and communication time of one layer under TP degree ``tp``.

    ``peak_flops`` (FLOP/s, e.g. ``labutils.hardware.get("H100-SXM").peak_flops("bf16")``) times
    ``mfu`` is the matmul rate; ``link`` defaults to :func:`link_for_tp` (NVSwitch for tp ≤ 8).
    """
    _, t = _check_tp_width(d_model, tp)
    peak, mfu = positive("peak_flops", peak_flops), fraction("mfu", mfu)
    if mfu == 0:
        raise ValueError("mfu must be in (0, 1], got 0")
    link = check_link("link", link) if link is not None else link_for_tp(t, gpus_per_node)
    comm_s = tp_layer_comm_time_s(seq_len, micro_batch, d_model, t, link,
                                  bytes_per_element=bytes_per_element)
    compute_s = layer_train_flops(seq_len, micro_batch, d_model) / t / (peak * mfu)
    return TPLayerCost(t, link.name if t > 1 else "none", compute_s, comm_s,
                       tp_comm_bytes_per_layer(seq_len, micro_batch, d_model, t,
                                               bytes_per_element=bytes_per_element))


def tp_efficiency_curve(seq_len: int, micro_batch: int, d_model: int, tps: list[int], *,
                        peak_flops: float, mfu: float = 0.5, link: Link | None = None,
                        bytes_per_element: int = 2) -> list[TPLayerCost]:
    """:func:`tp_layer_cost` for each TP degree in ``tps`` (same link for all if given)."""
    if not isinstance(tps, (list, tuple)) or not tps:
        raise TypeError(f"tps must be a non-empty list of TP degrees, got {tps!r}")
    return [tp_layer_cost(seq_len, micro_batch, d_model, t, peak_flops=peak_flops, mfu=mfu,
                          link=link, bytes_per_element=bytes_per_element) for t in tps]

