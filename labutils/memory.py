"""Training memory per device: model states, ZeRO sharding, communication volume, 3D parallelism.

Chapter 4 (memory) turns the lectures' and papers' memory formulas into functions; the chapter
then checks each prediction against bytes measured on real tensors
(:mod:`labutils.parallel.data.zero` for model states and communication, :mod:`labutils.activations`
for activations and recomputation).

Notation (Rajbhandari et al. 2020, "ZeRO", Sec. 3.1 and 5): Ψ = number of parameters,
N_d = data-parallel degree, K = optimizer-state bytes per parameter. Mixed-precision Adam holds
2Ψ bytes of fp16 parameters, 2Ψ of fp16 gradients and KΨ = 12Ψ of fp32 optimizer state
(fp32 master copy, momentum and variance): 16 bytes per parameter.

Units: every ``*_bytes`` value is an int number of bytes **per device**; GB = 1e9 bytes.
Communication volumes are in **elements** per device per step, in the ZeRO paper's convention
(Sec. 7.1: an all-reduce of Ψ elements moves 2Ψ, a reduce-scatter or an all-gather Ψ each).
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.course import L2, L3, lecture_cite
from labutils.validate import integer, non_negative

ZERO_STAGES = (0, 1, 2, 3)
LECTURE_BYTES = lecture_cite(L3, "'Additional GPU RAM needed to train 1B parameters'")
LECTURE_3D = lecture_cite(L2, "Sec. 4 'Memory Requirements' and 5.2.1")
ZERO_PAPER = "Rajbhandari et al. 2020 (ZeRO), Sec. 3.1 and 5, Fig. 1, Table 1"


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    """An integer in [low, high]; integral floats such as 7e9 parameters are accepted."""
    return integer(name, value, low, high, integral_float=True)


def check_zero_stage(zero_stage: object) -> int:
    """Validate a ZeRO stage: an int in 0..3 (0 = plain data parallelism, i.e. DDP)."""
    if isinstance(zero_stage, bool) or not isinstance(zero_stage, int):
        raise TypeError(f"zero_stage must be an int in {ZERO_STAGES}, got {zero_stage!r}")
    if zero_stage not in ZERO_STAGES:
        raise ValueError(f"zero_stage must be one of {ZERO_STAGES}, got {zero_stage}")
    return zero_stage


# ----------------------------------------------------------------------------------------------
# Bytes per parameter of a precision and optimizer recipe
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Bytes held per parameter by one precision and optimizer recipe (activations excluded).

    "Recipe" here always means this: which dtypes hold the weights, gradients and optimizer
    state. Chapter 11's *training* recipe (schedules, data, objectives) is a different idea and
    is never called plain "recipe" in code (:mod:`labutils.widgets.training_recipe`).
    """

    name: str
    param_bytes: int  # bytes per parameter of the weights the forward pass reads
    grad_bytes: int  # bytes per parameter of the gradients
    optimizer_bytes: int  # K: bytes per parameter of optimizer state (incl. any fp32 master copy)
    source: str

    def __post_init__(self) -> None:
        for field_name in ("param_bytes", "grad_bytes", "optimizer_bytes"):
            _int(field_name, getattr(self, field_name), 0)

    @property
    def total_bytes_per_param(self) -> int:
        """Model-state bytes per parameter (params + grads + optimizer)."""
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes


RECIPES: dict[str, Recipe] = {
    # Lecture 003: weights 4 B, Adam's two states +8 B, gradients +4 B (activations +8 B aside).
    "fp32_adam": Recipe("fp32_adam", 4, 4, 8, LECTURE_BYTES),
    # ZeRO Sec. 3.1: fp16 weights 2Ψ + fp16 grads 2Ψ + KΨ with K = 12 (fp32 master, m, v).
    "mixed_adam": Recipe("mixed_adam", 2, 2, 12, "Rajbhandari et al. 2020, Sec. 3.1 (K = 12)"),
    # Plain SGD (no momentum) keeps no optimizer state: 4 B weights + 4 B gradients.
    "sgd": Recipe("sgd", 4, 4, 0, "SGD without momentum: no optimizer state"),
    # SGD with momentum keeps one fp32 buffer.
    "sgd_momentum": Recipe("sgd_momentum", 4, 4, 4, "SGD with momentum: one fp32 buffer"),
}

# Lecture 003's "activations and temp memory" allowance (high-end estimate), bytes per parameter.
LECTURE_ACTIVATION_BYTES_PER_PARAM = 8


def get_recipe(recipe: str) -> Recipe:
    """Look up a recipe by name (see ``RECIPES``)."""
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    return RECIPES[recipe]


def lecture_training_bytes(n_params: int) -> int:
    """Lecture 003's rule of thumb: 4 B weights + 20 extra B (Adam 8, grads 4, activations 8).

    For 1B parameters this is 24e9 bytes, the lecture's "24 GB @ 32-bit full precision".
    """
    n = _int("n_params", n_params, 1)
    return n * (get_recipe("fp32_adam").total_bytes_per_param + LECTURE_ACTIVATION_BYTES_PER_PARAM)


# ----------------------------------------------------------------------------------------------
# Model states per device under ZeRO
# ----------------------------------------------------------------------------------------------


def shard_numel(n: int, dp: int) -> int:
    """Elements of an ``n``-element buffer one of ``dp`` ranks holds: ceil(n / dp) (padded shard)."""
    n = _int("n", n, 0)
    dp = _int("dp", dp, 1)
    return -(-n // dp)


def model_state_bytes(n_params: int, *, recipe: str = "mixed_adam", zero_stage: int = 0,
                      dp: int = 1) -> dict[str, int]:
    """Bytes of parameters, gradients and optimizer state held by **one** data-parallel device.

    ZeRO-DP (Rajbhandari et al. 2020, Sec. 5, Fig. 1) shards across the ``dp`` ranks:
    stage 1 (P_os) the optimizer states, stage 2 (P_os+g) also the gradients, stage 3
    (P_os+g+p) also the parameters. Stage 0 is plain data parallelism (every rank holds all).

    A sharded buffer of Ψ elements becomes a padded shard of ceil(Ψ / dp) elements per rank
    (:func:`shard_numel`), which is what a flat-buffer implementation holds. Our teaching ZeRO
    shards each tensor separately; for models whose every tensor divides by ``dp`` (the tiny
    config with dp in {1, 2, 4}) the two agree to the byte.

    Returns a dict with int byte counts: ``params``, ``grads``, ``optimizer``, ``total``.
    """
    n = _int("n_params", n_params, 1)
    stage = check_zero_stage(zero_stage)
    dp = _int("dp", dp, 1)
    r = get_recipe(recipe)
    shard = shard_numel(n, dp)
    # ZeRO, Fig. 1: baseline (2 + 2 + K)Ψ; P_os 2Ψ + 2Ψ + KΨ/N_d; P_os+g 2Ψ + (2 + K)Ψ/N_d;
    # P_os+g+p (2 + 2 + K)Ψ/N_d.
    params = r.param_bytes * (shard if stage >= 3 else n)
    grads = r.grad_bytes * (shard if stage >= 2 else n)
    optimizer = r.optimizer_bytes * (shard if stage >= 1 else n)
    return {"params": params, "grads": grads, "optimizer": optimizer,
            "total": params + grads + optimizer}


# The ZeRO paper's worked example (Fig. 1, restated in Sec. 5.1-5.3): Ψ = 7.5B, N_d = 64, K = 12,
# in GB (1e9 bytes). Checked against the arXiv text (1910.02054): 120, 31.4, 16.6 and 1.9 GB.
ZERO_FIG1 = {"n_params": 7_500_000_000, "dp": 64,
             "total_gb": {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9},
             "source": "Rajbhandari et al. 2020, Fig. 1 and Sec. 5.1-5.3"}

# ZeRO paper, Table 1 (Sec. 5, discussed in Sec. 5.4): per-device model-state memory (GB) for
# stages 1, 2, 3 by DP degree. Every cell checked against the paper's table (arXiv 1910.02054).
# The paper rounds the 7.5B entries (41.25 -> 41.3, 1.875 -> 1.88) but truncates the large ones
# (4187.5 -> 4187, 257.75 -> 257); the DP = 1 row is plain data parallelism, (2 + 2 + K)Ψ.
ZERO_TABLE1 = {
    "source": "Rajbhandari et al. 2020, Table 1 (K = 12, mixed-precision Adam)",
    "n_params": {"7.5B": 7_500_000_000, "128B": 128_000_000_000, "1T": 1_000_000_000_000},
    "rows": {  # dp: {model: (P_os, P_os+g, P_os+g+p) in GB}
        1: {"7.5B": (120, 120, 120), "128B": (2048, 2048, 2048), "1T": (16000, 16000, 16000)},
        4: {"7.5B": (52.5, 41.3, 30), "128B": (896, 704, 512), "1T": (7000, 5500, 4000)},
        16: {"7.5B": (35.6, 21.6, 7.5), "128B": (608, 368, 128), "1T": (4750, 2875, 1000)},
        64: {"7.5B": (31.4, 16.6, 1.88), "128B": (536, 284, 32), "1T": (4187, 2218, 250)},
        256: {"7.5B": (30.4, 15.4, 0.47), "128B": (518, 263, 8), "1T": (4046, 2054, 62.5)},
        1024: {"7.5B": (30.1, 15.1, 0.12), "128B": (513, 257, 2), "1T": (4011, 2013, 15.6)},
    },
}


def max_params_that_fit(memory_bytes: int, *, recipe: str = "mixed_adam", zero_stage: int = 0,
                        dp: int = 1) -> int:
    """Largest Ψ whose model states fit in ``memory_bytes`` per device (activations ignored)."""
    mem = _int("memory_bytes", memory_bytes, 1)
    stage = check_zero_stage(zero_stage)
    dp = _int("dp", dp, 1)
    r = get_recipe(recipe)
    # Bytes per parameter per device, as a fraction: replicated parts count fully, sharded /dp.
    per_param = (r.param_bytes / (dp if stage >= 3 else 1) + r.grad_bytes / (dp if stage >= 2 else 1)
                 + r.optimizer_bytes / (dp if stage >= 1 else 1))
    n = int(mem / per_param)
    while n > 0 and model_state_bytes(n, recipe=recipe, zero_stage=stage, dp=dp)["total"] > mem:
        n -= 1
    return n


# ----------------------------------------------------------------------------------------------
# Communication volume
# ----------------------------------------------------------------------------------------------


def zero_comm_volume(n_params: int, zero_stage: int) -> float:
    """Elements each device sends per step, in the ZeRO paper's convention (Sec. 7.1-7.2).

    The result is in **parameter elements** (multiply by bytes per element for bytes), counting
    an all-reduce of Ψ as 2Ψ (a reduce-scatter Ψ plus an all-gather Ψ), and a reduce-scatter or
    all-gather of a Ψ-element buffer as Ψ. The exact per-rank traffic of a ring collective is
    (N_d − 1)/N_d times this (:func:`ring_comm_bytes`).

    * stage 0 (DDP): all-reduce of gradients = 2Ψ (ZeRO Sec. 7.1);
    * stages 1 and 2: reduce-scatter gradients (Ψ) + all-gather updated parameters (Ψ) = 2Ψ,
      the same as DDP (ZeRO Sec. 7 and 7.2.1);
    * stage 3: all-gather parameters for the forward (Ψ) and again for the backward (Ψ), plus a
      reduce-scatter of gradients (Ψ) = 3Ψ, 1.5x DDP (ZeRO Sec. 7.2.2; lecture 002, Sec. 5.1.2:
      FSDP "C ∼ 3 × M_p", "increased compared to DDP (by 1.5x ...)").
    """
    n = _int("n_params", n_params, 1)
    stage = check_zero_stage(zero_stage)
    return float(3 * n if stage == 3 else 2 * n)


def ring_comm_bytes(volume_elements: float, dp: int, bytes_per_element: int = 4) -> float:
    """Bytes one rank sends for ``volume_elements`` of ZeRO-convention volume on a ring of ``dp``.

    A ring reduce-scatter or all-gather of n elements sends (dp − 1)/dp · n per rank
    (Patarasuk & Yuan 2009); with dp = 1 nothing is sent.
    """
    dp = _int("dp", dp, 1)
    bpe = _int("bytes_per_element", bytes_per_element, 1)
    volume = non_negative("volume_elements", volume_elements)
    return volume * bpe * (dp - 1) / dp


# ----------------------------------------------------------------------------------------------
# Lecture 002: memory and communication with DP x PP x TP (DeepSpeed-Megatron) and FSDP
# ----------------------------------------------------------------------------------------------


def three_d_memory_bytes(param_bytes: int, *, dp: int = 1, tp: int = 1, pp: int = 1,
                         optimizer_factor: float = 2.0, grad_factor: float = 2.0,
                         residue_factor: float = 1.0) -> float:
    """Lecture 002's memory per device for DeepSpeed-Megatron with ZeRO-1 over DP, in bytes.

    M = M_p/(PP·TP) + M_o/DP + M_g/(PP·TP) + M_e, with M_p = ``param_bytes`` (bytes of all
    parameters), M_o = 2·M_p (Adam), M_g = 2·M_p and M_e = M_p (residue), as the lecture notes
    define them (Sec. 4, "Memory Requirements") and sum them (Sec. 5.2.1).

    Caveats the chapter discusses: as written, M_o is divided by DP only, so the optimizer state
    is not also split by PP·TP (a model already split over PP·TP would give M_o/(DP·PP·TP)); the
    residue M_e is not split at all. The notes' closed form "2(DP + PP + + 1)/N·M_p" is garbled;
    this function evaluates the sum term by term.
    """
    mp = _int("param_bytes", param_bytes, 1)
    dp = _int("dp", dp, 1)
    tp = _int("tp", tp, 1)
    pp = _int("pp", pp, 1)
    optimizer_factor = non_negative("optimizer_factor", optimizer_factor)
    grad_factor = non_negative("grad_factor", grad_factor)
    residue_factor = non_negative("residue_factor", residue_factor)
    # Lecture 002, Sec. 5.2.1: M = M_p/(PP·TP) + M_o/DP + M_g/(PP·TP) + M_e
    return (mp / (pp * tp) + optimizer_factor * mp / dp + grad_factor * mp / (pp * tp)
            + residue_factor * mp)


def fsdp_memory_bytes(param_bytes: int, n_devices: int) -> float:
    """Lecture 002, Sec. 5.1.2: FSDP shards everything, M ≈ 6·M_p / N_devices bytes."""
    mp = _int("param_bytes", param_bytes, 1)
    n = _int("n_devices", n_devices, 1)
    return 6 * mp / n  # (M_p + M_o + M_g + M_e) / N with M_o = M_g = 2 M_p, M_e = M_p


def ddp_comm_volume(n_params: int) -> float:
    """DDP all-reduces the gradients every step: C ≈ 2Ψ elements per device (ZeRO Sec. 7.1).

    Lecture 002 does not write this out; it follows from its Sec. 10.2 ("only an Allreduce during
    each backward propagation") and Sec. 5.1.2 (FSDP's 3·M_p is "1.5x" DDP).
    """
    return zero_comm_volume(n_params, 0)


def fsdp_comm_volume(n_params: int) -> float:
    """FSDP all-gathers twice and reduce-scatters once: C ≈ 3Ψ elements per device.

    Lecture 002, Sec. 5.1.2 ("C ∼ 3 × M_p") and Sec. 10.2 (an all-gather in the forward, an
    all-gather and a reduce-scatter in the backward); ZeRO Sec. 7.2.2.
    """
    return zero_comm_volume(n_params, 3)


def three_d_comm_volume(n_params: int, *, n_devices: int, tp: int) -> float:
    """Lecture 002 [Eqn 6]: DeepSpeed-Megatron volume C ≈ (TP/N_devices + 1)·2·Ψ elements."""
    n = _int("n_params", n_params, 1)
    nd = _int("n_devices", n_devices, 1)
    tp = _int("tp", tp, 1, nd)
    return (tp / nd + 1) * 2 * n


# ----------------------------------------------------------------------------------------------
# Gradient accumulation
# ----------------------------------------------------------------------------------------------


def grad_accumulation_steps(global_batch: int, micro_batch: int, dp: int = 1) -> int:
    """Micro-steps each rank runs before one optimizer step: global = micro × dp × steps.

    Lecture 001 ("gradient accumulation: split global batch into micro batches to save memory").
    Raises ValueError unless ``micro_batch × dp`` divides ``global_batch``.
    """
    gb = _int("global_batch", global_batch, 1)
    mb = _int("micro_batch", micro_batch, 1)
    dp = _int("dp", dp, 1)
    if gb % (mb * dp):
        raise ValueError(f"global_batch={gb} must be a multiple of micro_batch × dp = {mb} × {dp}")
    return gb // (mb * dp)


def accumulation_plan(global_batch: int, dp: int = 1) -> list[dict[str, int]]:
    """Every (micro_batch, steps) pair that realises ``global_batch`` on ``dp`` ranks.

    Same global batch, same gradient, different memory: activations scale with the micro-batch,
    the number of sequential micro-steps with its inverse.
    """
    gb = _int("global_batch", global_batch, 1)
    dp = _int("dp", dp, 1)
    if gb % dp:
        raise ValueError(f"global_batch={gb} must be a multiple of dp={dp}")
    per_rank = gb // dp
    return [{"micro_batch": mb, "steps": per_rank // mb}
            for mb in range(1, per_rank + 1) if per_rank % mb == 0]


# ----------------------------------------------------------------------------------------------
# Everything together: one device's memory for a model, a recipe and a DP x TP x PP layout
# ----------------------------------------------------------------------------------------------


def in_flight_micro_batches(pp: int, rank: int, micro_batches: int | None = None, *,
                            virtual_stages: int = 1, group_size: int | None = None) -> int:
    """Forward passes whose activations pipeline rank ``rank`` holds at its peak (1F1B schedules).

    Each counts one micro-batch through one of the rank's ``virtual_stages`` model chunks.
    Megatron-LM's schedules (megatron/core/pipeline_parallel/schedules.py) run a warm-up of
    forwards before the first backward, then alternate one forward and one backward, so the
    peak is warm-up + 1 (capped by all the forwards of the step, ``micro_batches · v``):

    * 1F1B (v = 1): warm-up pp − rank − 1, so the first rank holds min(pp, m) micro-batches
      (Korthikanti et al. 2022, Sec. 4.2.3: the first stage stores pp micro-batches);
    * interleaved (v > 1): warm-up 2·(pp − rank − 1) + (v − 1)·N, with N micro-batches run
      back to back through one chunk (``group_size``; Megatron's default and Narayanan et al.
      2021's schedule use N = pp; Llama 3 makes N tunable, Dubey et al. 2024, Sec. 3.3.2).

    ``micro_batches=None`` means enough micro-batches to reach the steady state.
    """
    pp = _int("pp", pp, 1)
    rank = _int("rank", rank, 0, pp - 1)
    v = _int("virtual_stages", virtual_stages, 1)
    n = pp if group_size is None else _int("group_size", group_size, 1)
    if v == 1:
        peak = pp - rank
    else:
        peak = 2 * (pp - rank - 1) + (v - 1) * n + 1
    if micro_batches is None:
        return peak
    return min(peak, _int("micro_batches", micro_batches, 1) * v)


def peak_activation_layers(stage_layers: tuple[int, ...], micro_batches: int | None = None, *,
                           virtual_stages: int = 1, group_size: int | None = None) -> float:
    """Layer-micro-batches of activations held by the most loaded pipeline rank.

    ``stage_layers[r]`` is the number of transformer layers pipeline rank r holds (all its
    chunks together); rank r holds :func:`in_flight_micro_batches` forwards of
    ``stage_layers[r] / v`` layers each. With equal stages, v = 1 and at least pp micro-batches
    this is L, the whole model's layers (Korthikanti et al. 2022, Eq. 5). Interleaving raises it
    (towards L·(1 + (pp − 1)/(pp·v)) with N = pp); fewer micro-batches than stages lower it; a
    lighter first stage moves the peak to rank 1 (Llama 3 removes one layer from the first and
    the last stage, Dubey et al. 2024, Sec. 3.3.2).
    """
    if not isinstance(stage_layers, (tuple, list)) or not stage_layers:
        raise TypeError(f"stage_layers must be a non-empty tuple of ints, got {stage_layers!r}")
    layers = [_int(f"stage_layers[{r}]", x, 0) for r, x in enumerate(stage_layers)]
    pp = len(layers)
    v = _int("virtual_stages", virtual_stages, 1)
    return max(in_flight_micro_batches(pp, r, micro_batches, virtual_stages=v,
                                       group_size=group_size) * layers[r] / v
               for r in range(pp))


def device_memory_breakdown(n_params: int, *, n_layers: int, d_model: int, n_heads: int,
                            seq_len: int, micro_batch: int, recipe: str = "mixed_adam",
                            zero_stage: int = 0, dp: int = 1, tp: int = 1, pp: int = 1,
                            sequence_parallel: bool = False, recompute: str = "none",
                            micro_batches: int | None = None, virtual_stages: int = 1,
                            group_size: int | None = None,
                            stage_layers: tuple[int, ...] | None = None,
                            n_kv_heads: int | None = None) -> dict[str, int]:
    """Bytes per device of parameters, gradients, optimizer state and activations.

    * Model states: TP and PP split the Ψ parameters evenly, ceil(Ψ/(TP·PP)) per model-parallel
      rank (an approximation: embeddings and norms do not split exactly so), and ZeRO then
      shards over DP (:func:`model_state_bytes`).
    * Activations: :func:`labutils.activations.activation_bytes_per_layer` (16-bit activations
      and dropout; ``n_kv_heads`` for grouped-query attention) times the layer-micro-batches
      the most loaded pipeline rank holds,
      :func:`peak_activation_layers` for the schedule: ``micro_batches`` per step (None: enough
      to fill the pipeline), ``virtual_stages`` chunks per rank with ``group_size`` micro-batches
      back to back, and ``stage_layers`` layers per rank (None: L/PP each). The defaults give L
      layers, Korthikanti et al. 2022, Eq. 5. Embedding, logits and loss activations, temporary
      buffers and fragmentation are left out.

    Returns int bytes: ``params``, ``grads``, ``optimizer``, ``activations``, ``total``.
    """
    from labutils.activations import activation_bytes_per_layer

    n = _int("n_params", n_params, 1)
    L = _int("n_layers", n_layers, 1)
    tp = _int("tp", tp, 1)
    pp = _int("pp", pp, 1)
    if stage_layers is None:
        if L % pp:
            raise ValueError(f"pp={pp} must divide n_layers={L}")
        stage_layers = (L // pp,) * pp
    elif len(stage_layers) != pp or sum(stage_layers) > L:
        raise ValueError(f"stage_layers must have pp={pp} entries summing to at most "
                         f"n_layers={L}, got {stage_layers!r}")
    layers_held = peak_activation_layers(tuple(stage_layers), micro_batches,
                                         virtual_stages=virtual_stages, group_size=group_size)
    states = model_state_bytes(shard_numel(n, tp * pp), recipe=recipe, zero_stage=zero_stage, dp=dp)
    per_layer = activation_bytes_per_layer(seq_len, micro_batch, d_model, n_heads, tp=tp,
                                           sequence_parallel=sequence_parallel, recompute=recompute,
                                           n_kv_heads=n_kv_heads)
    out = {"params": states["params"], "grads": states["grads"], "optimizer": states["optimizer"],
           "activations": int(round(layers_held * per_layer))}
    out["total"] = sum(out.values())
    return out
