"""Planning a pretraining run (Chapter 12, the capstone): budget → model → layout → time and cost.

Every number comes from a function an earlier chapter built and tested; this module only wires
them together (house rule: no formula twice):

1. **size the model** for a compute budget C: the lecture's rule N ≈ 0.1·C^0.5 or a Chinchilla
   fit (:mod:`labutils.scaling`), D = C / 6N (:func:`labutils.flops.training_flops`);
2. **shape it**: layers and width from an aspect-ratio rule, checked with
   :func:`labutils.model.count_params`;
3. **evaluate a parallel layout** (DP × TP × PP × CP, ZeRO stage, micro-batch, recomputation):
   memory per GPU (:func:`labutils.memory.device_memory_breakdown`) and step time = compute at an
   assumed kernel efficiency (with recomputation, :func:`labutils.activations.recompute_flops_overhead`)
   run through the pipeline schedule (:func:`labutils.parallel.pipeline.cost.pipeline_step_time_s`),
   plus exposed TP (:func:`labutils.parallel.tensor.cost.tp_layer_comm_time_s`), CP
   (:func:`labutils.parallel.context.cost.ring_step`) and DP
   (:func:`labutils.parallel.data.cost.gradient_all_reduce_time_s`) communication, each on
   NVSwitch when its group fits in a node and InfiniBand otherwise;
4. **enumerate and rank** every valid layout of the cluster;
5. **project the run**: time, energy, cost, petaflop/s-days (:func:`labutils.throughput.project_training`).

It is a model, not a simulator: the step time is a sum of closed forms with one free number, the
kernel efficiency (the fraction of peak FLOP/s that the matmul kernels reach). What it leaves out
is listed in :func:`evaluate_layout`. Units: FLOPs, bytes (GB = 1e9), seconds, tokens, watts, USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from labutils import hardware
from labutils.activations import RECOMPUTE, recompute_flops_overhead
from labutils.course import L0, lecture_cite
from labutils.flops import attention_flops_per_token, training_flops, training_multiplier
from labutils.memory import check_zero_stage, device_memory_breakdown, zero_comm_volume
from labutils.model import TransformerConfig, count_params, preset
from labutils.parallel.context.cost import ring_step
from labutils.parallel.data.cost import gradient_all_reduce_time_s
from labutils.parallel.pipeline.cost import p2p_bytes_per_message, pipeline_step_time_s
from labutils.parallel.tensor.cost import tp_layer_comm_time_s
from labutils.scaling.published import BESIROGLU_2024, HOFFMANN_2022, LECTURE_RULE
from labutils.throughput import (TrainingProjection, mfu, model_flops_per_token,
                                 project_training, projected_time_s)
from labutils.validate import fraction, non_negative, number, positive, positive_int

LAWS = ("lecture", "hoffmann", "besiroglu")
HEAD_DIM = 128  # features per head (GPT-3 175B, LLaMA, Llama 3 all use 128)
WIDTH_MULTIPLE = 1024  # d_model is a multiple of this: 8 heads of 128, so TP <= 8 divides the heads
LAYER_MULTIPLE = 4  # n_layers is a multiple of this, so PP of 2 or 4 divides the layers
ASPECT_RATIO = 128  # d_model / n_layers of the shape we pick (see shape_for_params)


# ----------------------------------------------------------------------------------------------
# 1. Size the model for a budget
# ----------------------------------------------------------------------------------------------


def lecture_rule_optimal(compute_flops: float) -> tuple[float, float]:
    """The lecture's rule of thumb: N_opt ≈ 0.1·C^0.5 parameters, D = C / 6N tokens.

    Lecture 000_f52c65b7512ce437.txt, slide "Chinchilla Scaling Law" (it also writes
    D_opt ≈ 1.7·C^0.5; we take D from the budget, C = 6ND, so that N and D spend exactly C).
    """
    c = positive("compute_flops", compute_flops)
    n = LECTURE_RULE["n_coeff"] * c ** LECTURE_RULE["exponent"]
    return n, c / training_flops(n, 1)


def size_model(compute_flops: float, law: str = "hoffmann") -> tuple[float, float]:
    """Compute-optimal (parameters N, tokens D) for a budget of ``compute_flops`` FLOPs.

    ``law``: ``"lecture"`` (N ≈ 0.1·C^0.5), ``"hoffmann"`` (Hoffmann et al. 2022's Approach 3
    fit) or ``"besiroglu"`` (Besiroglu et al. 2024's refit); see :mod:`labutils.scaling`.
    """
    if not isinstance(law, str) or law not in LAWS:
        raise ValueError(f"law must be one of {LAWS}, got {law!r}")
    if law == "lecture":
        return lecture_rule_optimal(compute_flops)
    fit = HOFFMANN_2022 if law == "hoffmann" else BESIROGLU_2024
    n, d = fit.compute_optimal(positive("compute_flops", compute_flops))
    return float(n), float(d)


# ----------------------------------------------------------------------------------------------
# 2. Shape it
# ----------------------------------------------------------------------------------------------


def llama_like_config(n_layers: int, d_model: int, *, vocab_size: int = 32_000,
                      seq_len: int = 4096, name: str = "") -> TransformerConfig:
    """A LLaMA-style block (SwiGLU, RMSNorm, RoPE, no biases, untied head) with heads of 128."""
    d = positive_int("d_model", d_model)
    if d % HEAD_DIM:
        raise ValueError(f"d_model must be a multiple of {HEAD_DIM}, got {d}")
    return TransformerConfig(vocab_size=vocab_size, seq_len=seq_len, d_model=d, n_layers=n_layers,
                             n_heads=d // HEAD_DIM, mlp="swiglu", tied_embeddings=False,
                             bias=False, norm="rmsnorm", positional="rope", name=name)


def shape_for_params(n_params: float, *, vocab_size: int = 32_000, seq_len: int = 4096,
                     aspect_ratio: float = ASPECT_RATIO, rel_tol: float = 0.05,
                     width_multiple: int = WIDTH_MULTIPLE, layer_multiple: int = LAYER_MULTIPLE,
                     max_layers: int = 256) -> TransformerConfig:
    """A LLaMA-style transformer shape with about ``n_params`` parameters.

    Rule: d_model a multiple of ``width_multiple`` (1024 = 8 heads of 128, so that TP ≤ 8
    divides the heads), n_layers a multiple of ``layer_multiple`` (4, so that PP of 2 or 4
    divides them), and d_model / n_layers as close to ``aspect_ratio`` as possible (128:
    GPT-3 175B is 12288/96, LLaMA-7B 4096/32, Llama 3 405B 16384/126; Kaplan et al. 2020,
    Sec. 3.1, find the loss nearly flat over a wide range of aspect ratios, so the choice is
    about hardware, not quality), among the shapes whose :func:`count_params` lies within
    ``rel_tol`` of ``n_params``. For each depth the width is found by bisection (count_params
    grows with d_model). Raises ValueError if no shape is within ``rel_tol``.
    """
    target = positive("n_params", n_params)
    tol = fraction("rel_tol", rel_tol)
    ratio = positive("aspect_ratio", aspect_ratio)
    wm = positive_int("width_multiple", width_multiple)
    if wm % HEAD_DIM:
        raise ValueError(f"width_multiple must be a multiple of {HEAD_DIM}, got {wm}")
    lm = positive_int("layer_multiple", layer_multiple)
    max_layers = positive_int("max_layers", max_layers)

    def config(L: int, k: int) -> TransformerConfig:
        return llama_like_config(L, wm * k, vocab_size=vocab_size, seq_len=seq_len)

    best: tuple[float, float, TransformerConfig] | None = None
    for L in range(lm, max_layers + 1, lm):
        lo, hi = 1, max(2, 131_072 // wm)  # d_model up to 131072
        if count_params(config(L, lo)) > target * (1 + tol):
            break  # deeper models only get bigger
        while hi - lo > 1:  # largest k with count <= target
            mid = (lo + hi) // 2
            if count_params(config(L, mid)) <= target:
                lo = mid
            else:
                hi = mid
        for k in (lo, hi):
            cfg = config(L, k)
            err = abs(count_params(cfg) - target) / target
            if err <= tol:
                key = (abs(math.log(cfg.d_model / L / ratio)), err)
                if best is None or key < best[:2]:
                    best = (*key, cfg)
    if best is None:
        raise ValueError(f"no shape with d_model a multiple of {wm} and n_layers a multiple of "
                         f"{lm} (at most {max_layers}) has n_params={target:.3g} within "
                         f"rel_tol={tol}")
    cfg = best[2]
    return replace(cfg, name=f"{count_params(cfg) / 1e9:.2f}B")


# ----------------------------------------------------------------------------------------------
# 3. The goal, a layout, and what a layout costs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """What we want to train and on what.

    ``compute_flops`` is the training budget C; the model is sized from it with ``law`` unless
    ``n_params`` fixes the model (then D = C / 6N). ``global_batch_tokens`` must be a multiple
    of ``seq_len``. ``avg_power_w`` is per GPU (None: the board's TDP, an upper bound).
    ``kernel_efficiency`` is the assumed fraction of dense peak FLOP/s that the forward and
    backward matmuls reach when nothing waits (the one free number of the step-time model).
    ``memory_usable`` is the fraction of HBM we allow the modelled tensors to take: the rest is
    for what the memory model leaves out (CUDA context, NCCL and temporary buffers,
    fragmentation, embedding and logit activations).
    """

    compute_flops: float
    accelerator: str = "H100-SXM"
    n_gpus: int = 1024
    gpus_per_node: int = hardware.GPUS_PER_NODE
    seq_len: int = 4096
    global_batch_tokens: int = 4096 * 1024  # 4M tokens
    usd_per_gpu_hour: float = 2.0
    avg_power_w: float | None = None
    law: str = "hoffmann"
    n_params: float | None = None
    kernel_efficiency: float = 0.6
    memory_usable: float = 0.9
    vocab_size: int = 32_000
    dtype: str = "bf16"
    intra_link: hardware.Link = hardware.NVSWITCH
    inter_link: hardware.Link = hardware.INFINIBAND

    def __post_init__(self) -> None:
        positive("compute_flops", self.compute_flops)
        hardware.get(self.accelerator).peak_flops(self.dtype)  # raises on a bad name or dtype
        positive_int("n_gpus", self.n_gpus)
        positive_int("gpus_per_node", self.gpus_per_node)
        positive_int("seq_len", self.seq_len)
        positive_int("global_batch_tokens", self.global_batch_tokens)
        if self.global_batch_tokens % self.seq_len:
            raise ValueError(f"global_batch_tokens={self.global_batch_tokens} must be a multiple "
                             f"of seq_len={self.seq_len}")
        non_negative("usd_per_gpu_hour", self.usd_per_gpu_hour)
        if self.avg_power_w is not None:
            positive("avg_power_w", self.avg_power_w)
        if self.law not in LAWS:
            raise ValueError(f"law must be one of {LAWS}, got {self.law!r}")
        if self.n_params is not None:
            positive("n_params", self.n_params)
        for name in ("kernel_efficiency", "memory_usable"):
            if fraction(name, getattr(self, name)) == 0:
                raise ValueError(f"{name} must be in (0, 1], got 0")
        positive_int("vocab_size", self.vocab_size)
        hardware.check_link("intra_link", self.intra_link)
        hardware.check_link("inter_link", self.inter_link)

    @property
    def spec(self) -> hardware.AcceleratorSpec:
        return hardware.get(self.accelerator)

    @property
    def peak_flops(self) -> float:
        """Dense peak FLOP/s of one GPU in ``dtype`` (from :mod:`labutils.hardware`)."""
        return self.spec.peak_flops(self.dtype)

    @property
    def global_batch_seqs(self) -> int:
        """Sequences per optimizer step."""
        return self.global_batch_tokens // self.seq_len

    @property
    def memory_limit_bytes(self) -> float:
        """Bytes per GPU the modelled tensors may use: HBM × ``memory_usable``."""
        return self.spec.memory_bytes * self.memory_usable

    def link(self, group_span: int) -> hardware.Link:
        """NVSwitch for a group laid out within ``group_span`` ≤ GPUs per node, else InfiniBand
        (:func:`labutils.hardware.link_for` with this goal's node size and links)."""
        return hardware.link_for(group_span, self.gpus_per_node, self.intra_link, self.inter_link)


@dataclass(frozen=True)
class Layout:
    """How the GPUs split the work: dp · tp · pp · cp = GPUs.

    Ranks are ordered TP innermost, then CP, PP and DP outermost (Llama 3's order,
    Dubey et al. 2024, Sec. 3.3.2), so a TP group spans tp consecutive GPUs, a CP group tp·cp,
    a PP group tp·cp·pp and a DP group all of them. ``virtual_stages`` > 1 is the interleaved
    1F1B schedule with that many chunks per rank.
    """

    dp: int
    tp: int = 1
    pp: int = 1
    cp: int = 1
    zero_stage: int = 1
    micro_batch: int = 1
    recompute: str = "selective"
    sequence_parallel: bool = False
    virtual_stages: int = 1

    def __post_init__(self) -> None:
        for name in ("dp", "tp", "pp", "cp", "micro_batch", "virtual_stages"):
            positive_int(name, getattr(self, name))
        check_zero_stage(self.zero_stage)
        if self.recompute not in RECOMPUTE:
            raise ValueError(f"recompute must be one of {RECOMPUTE}, got {self.recompute!r}")
        if not isinstance(self.sequence_parallel, bool):
            raise TypeError(f"sequence_parallel must be a bool, got {self.sequence_parallel!r}")

    @property
    def n_gpus(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def schedule(self) -> str:
        return "interleaved" if self.virtual_stages > 1 else "1f1b"

    def label(self) -> str:
        """Short text such as ``dp64 tp8 pp16 cp1 z1 mb1 sel``."""
        rc = {"none": "none", "selective": "sel", "full": "full"}[self.recompute]
        v = f" v{self.virtual_stages}" if self.virtual_stages > 1 else ""
        return (f"dp{self.dp} tp{self.tp} pp{self.pp} cp{self.cp} z{self.zero_stage} "
                f"mb{self.micro_batch} {rc}{v}")


def _check_types(cfg: object, layout: object, goal: object) -> None:
    """TypeError unless cfg, layout and goal are a TransformerConfig, a Layout and a Goal."""
    for name, value, kind in (("cfg", cfg, TransformerConfig), ("layout", layout, Layout),
                              ("goal", goal, Goal)):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


def layout_problems(cfg: TransformerConfig, layout: Layout, goal: Goal) -> list[str]:
    """Why ``layout`` cannot run ``cfg`` on ``goal``'s cluster (empty list: it can).

    Rules: dp·tp·pp·cp = GPUs; tp ≤ GPUs per node (TP all-reduces twice per layer and
    direction, so it stays on NVSwitch: lecture 002 notes "Tensor Parallelism: is within a node");
    tp divides the heads; pp divides the layers (and v·pp too, interleaved); cp divides the
    sequence (2·cp for zigzag); micro_batch·dp divides the global batch in sequences; interleaved
    needs the micro-batch count to be a multiple of pp (Megatron-LM's rule).
    """
    _check_types(cfg, layout, goal)
    out = []
    if layout.n_gpus != goal.n_gpus:
        out.append(f"dp·tp·pp·cp = {layout.n_gpus} != n_gpus = {goal.n_gpus}")
    if layout.tp > goal.gpus_per_node:
        out.append(f"tp={layout.tp} > gpus_per_node={goal.gpus_per_node}")
    if cfg.n_heads % layout.tp:
        out.append(f"tp={layout.tp} does not divide n_heads={cfg.n_heads}")
    if cfg.n_kv_heads % layout.tp and layout.tp % cfg.n_kv_heads:
        # TP either splits the K/V heads evenly or replicates each of them over tp / kv ranks
        # (Megatron-LM, when tp > kv); anything else has no layout.
        out.append(f"tp={layout.tp} neither divides n_kv_heads={cfg.n_kv_heads} nor is a "
                   f"multiple of it")
    if cfg.n_layers % (layout.pp * layout.virtual_stages):
        out.append(f"pp·v={layout.pp * layout.virtual_stages} does not divide n_layers={cfg.n_layers}")
    if goal.seq_len % (2 * layout.cp if layout.cp > 1 else 1):
        out.append(f"2·cp={2 * layout.cp} does not divide seq_len={goal.seq_len}")
    if layout.sequence_parallel and (goal.seq_len // layout.cp) % layout.tp:
        out.append(f"sequence_parallel needs tp={layout.tp} to divide seq_len/cp")
    per_replica = layout.micro_batch * layout.dp
    if goal.global_batch_seqs % per_replica:
        out.append(f"micro_batch·dp={per_replica} does not divide the global batch of "
                   f"{goal.global_batch_seqs} sequences")
    elif layout.virtual_stages > 1 and (goal.global_batch_seqs // per_replica) % layout.pp:
        out.append("interleaved schedule needs the micro-batch count to be a multiple of pp")
    return out


@dataclass(frozen=True)
class LayoutEval:
    """What one layout costs (per GPU, per optimizer step; seconds and bytes)."""

    layout: Layout
    memory: dict[str, int]  # params, grads, optimizer, activations, total (bytes per GPU)
    memory_limit_bytes: float
    micro_batches: int  # m, per pipeline per step
    compute_s: float  # m micro-batches' forward + backward (+ recomputation) at kernel efficiency
    tp_comm_s: float  # TP all-reduces (never hidden)
    cp_comm_s: float  # ring-attention transfers not hidden behind attention compute
    bubble_s: float  # pipeline fill and drain, incl. point-to-point transfers on that path
    dp_comm_s: float  # gradient reduction not hidden behind the last micro-batch's backward
    step_s: float
    tokens_per_s: float
    mfu: float  # model FLOPs (6N + attention) per second / cluster peak
    links: dict[str, str] = field(default_factory=dict)  # group -> link name

    @property
    def fits(self) -> bool:
        return self.memory["total"] <= self.memory_limit_bytes

    def time_breakdown(self) -> dict[str, float]:
        """Seconds per step by cause; they sum to ``step_s``."""
        return {"compute": self.compute_s, "TP comm": self.tp_comm_s, "CP comm": self.cp_comm_s,
                "bubble": self.bubble_s, "DP comm": self.dp_comm_s}


def model_flops_per_token_for(cfg: TransformerConfig, n_params: float, seq_len: int) -> float:
    """6·N + causal attention FLOPs per training token (:func:`labutils.flops.attention_flops_per_token`
    with ``causal=True``: the work a causal attention kernel does). PaLM's MFU counts the full
    score matrix instead, which makes its MFU higher by up to the attention share (large only for
    long sequences); we count what the kernels execute so that time = FLOPs / rate holds."""
    return model_flops_per_token(n_params, attention_flops_per_token=attention_flops_per_token(
        cfg, training=True, causal=True, seq_len=seq_len))


def evaluate_layout(cfg: TransformerConfig, layout: Layout, goal: Goal, *,
                    n_params: float | None = None,
                    stage_layers: tuple[int, ...] | None = None) -> LayoutEval:
    """Memory per GPU and step time of ``layout`` training ``cfg`` on ``goal``'s cluster.

    Grouped-query attention comes with ``cfg.n_kv_heads`` (fewer K/V bytes stored and sent
    around the CP ring). ``n_params`` overrides ``count_params(cfg)`` (a published count, or a
    model whose pipeline pads its layers, as Llama 3's 126 layers in 128 slots).
    ``stage_layers`` gives the layers each pipeline rank holds, for
    the memory only (default: L/pp each); the step time keeps the even split, which is the
    slowest stage when the others are lighter (Llama 3's first and last stages).

    Per GPU and per micro-batch of b sequences on one pipeline stage:

    * compute = hardware FLOPs (model FLOPs × (1 + recomputation overhead)) of the stage's
      layers for b·s tokens, split over tp·cp GPUs, at ``goal.kernel_efficiency`` × peak;
    * TP: 4 all-reduces of b·(s/cp)·h activations per layer (Chapter 6), fully exposed;
    * CP: per layer, 3·(cp − 1) ring steps (forward once, backward twice the work), each
      exposing max(0, K/V transfer − block attention compute) (Chapter 8, zigzag, causal);
    * the pipeline runs m = global batch / (dp·b) micro-batches: (m + (pp − 1)/v)·t_micro
      plus 2(pp − 1) activation transfers (Chapter 7);
    * DP: reduce-scatter + all-gather (stages 0-2) or 1.5× that (stage 3) of the stage's bf16
      gradients over dp·cp ranks (Chapters 4, 5), hidden behind the last micro-batch's backward.

    Left out: optimizer step time, embedding/logit layers' own time and memory, extra TP
    all-reduces of a recomputed forward, stragglers and failures. Memory:
    :func:`device_memory_breakdown` with ZeRO over dp·cp ranks, the sequence cut into s/cp per
    rank, and the activations of the forwards the most loaded pipeline rank holds under this
    schedule (:func:`labutils.memory.peak_activation_layers`: min(pp, m) micro-batches for
    1F1B, more with interleaving).
    """
    problems = layout_problems(cfg, layout, goal)
    if problems:
        raise ValueError(f"layout {layout.label()} is invalid: " + "; ".join(problems))
    n = float(count_params(cfg)) if n_params is None else positive("n_params", n_params)
    kv = cfg.n_kv_heads
    dp, tp, pp, cp, b, v = (layout.dp, layout.tp, layout.pp, layout.cp, layout.micro_batch,
                            layout.virtual_stages)
    s, h, L = goal.seq_len, cfg.d_model, cfg.n_layers
    s_rank = s // cp
    m = goal.global_batch_seqs // (dp * b)
    eff_flops = goal.peak_flops * goal.kernel_efficiency

    memory = device_memory_breakdown(
        int(n), n_layers=L, d_model=h, n_heads=cfg.n_heads, seq_len=s_rank, micro_batch=b,
        zero_stage=layout.zero_stage, dp=dp * cp, tp=tp, pp=pp,
        sequence_parallel=layout.sequence_parallel, recompute=layout.recompute,
        micro_batches=m, virtual_stages=v, stage_layers=stage_layers, n_kv_heads=kv)

    # Compute of one micro-batch on one stage, per GPU.
    model_per_token = model_flops_per_token_for(cfg, n, s)
    overhead = recompute_flops_overhead(layout.recompute, s, h, L, cfg.vocab_size)
    micro_flops = model_per_token * (1.0 + overhead) * b * s / (pp * tp * cp)
    compute_micro = micro_flops / eff_flops

    links = {"TP": goal.link(tp).name if tp > 1 else "none",
             "CP": goal.link(tp * cp).name if cp > 1 else "none",
             "PP": goal.link(tp * cp * pp).name if pp > 1 else "none",
             "DP": goal.link(goal.n_gpus).name if dp * cp > 1 else "none"}
    layers_per_stage = L // pp
    tp_micro = layers_per_stage * tp_layer_comm_time_s(s_rank, b, h, tp, goal.link(tp)) if tp > 1 else 0.0
    cp_micro = 0.0
    if cp > 1:
        cp_link = goal.link(tp * cp)
        step = ring_step(s_rank, h // tp, goal.peak_flops, cp_link.bandwidth_bytes_per_s,
                         n_heads=cfg.n_heads // tp, n_kv_heads=max(1, kv // tp), micro_batch=b,
                         mfu=goal.kernel_efficiency, latency_s=cp_link.latency_s,
                         causal_fraction=0.5)
        exposed = max(0.0, step.comm_s - step.compute_s)  # per ring step
        cp_micro = layers_per_stage * training_multiplier() * (cp - 1) * exposed

    t_micro = compute_micro + tp_micro + cp_micro
    t_f = t_micro / training_multiplier()  # forward : backward = 1 : 2
    t_b = t_micro - t_f
    t_p2p = 0.0
    if pp > 1:
        pp_link = goal.link(tp * cp * pp)
        t_p2p = pp_link.latency_s + p2p_bytes_per_message(s_rank, b, h) / pp_link.bandwidth_bytes_per_s
    pipeline_s = pipeline_step_time_s(pp, m, t_f, t_b, v=v, t_p2p_s=t_p2p)

    dp_comm = 0.0
    if dp * cp > 1:
        stage_params = n / (tp * pp)
        volume_ratio = zero_comm_volume(1, layout.zero_stage) / zero_comm_volume(1, 0)
        total = volume_ratio * gradient_all_reduce_time_s(stage_params, dp * cp,
                                                           goal.link(goal.n_gpus))
        dp_comm = max(0.0, total - t_b)  # overlapped with the last micro-batch's backward

    step_s = pipeline_s + dp_comm
    tokens_per_s = goal.global_batch_tokens / step_s
    return LayoutEval(
        layout=layout, memory=memory, memory_limit_bytes=goal.memory_limit_bytes,
        micro_batches=m, compute_s=m * compute_micro, tp_comm_s=m * tp_micro,
        cp_comm_s=m * cp_micro, bubble_s=pipeline_s - m * t_micro, dp_comm_s=dp_comm,
        step_s=step_s, tokens_per_s=tokens_per_s,
        mfu=mfu(n, tokens_per_s, goal.n_gpus, goal.peak_flops,
                attention_flops_per_token=model_per_token - training_flops(n, 1)),
        links=links)


# ----------------------------------------------------------------------------------------------
# 4. Enumerate and rank
# ----------------------------------------------------------------------------------------------


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` in increasing order."""
    n = positive_int("n", n)
    return [k for k in range(1, n + 1) if n % k == 0]


def enumerate_layouts(cfg: TransformerConfig, goal: Goal, *, micro_batches=(1, 2, 4),
                      recomputes=("selective", "full"), zero_stages=(1,), max_cp: int = 1,
                      virtual_stages=(1,)) -> list[Layout]:
    """Every valid :class:`Layout` of ``goal.n_gpus`` GPUs for ``cfg`` (see :func:`layout_problems`).

    Sequence parallelism is on whenever tp > 1 (it costs no extra communication, Chapter 6).
    ``max_cp`` caps context parallelism (1: none; raise it for long sequences).
    """
    if not isinstance(cfg, TransformerConfig) or not isinstance(goal, Goal):
        raise TypeError(f"cfg and goal must be a TransformerConfig and a Goal, got "
                        f"{type(cfg).__name__} and {type(goal).__name__}")
    positive_int("max_cp", max_cp)
    for name, options in (("micro_batches", micro_batches), ("recomputes", recomputes),
                          ("zero_stages", zero_stages), ("virtual_stages", virtual_stages)):
        if not isinstance(options, (tuple, list)) or not options:
            raise ValueError(f"{name} must be a non-empty tuple, got {options!r}")
    out = []
    g = goal.n_gpus
    for tp in divisors(g):
        if tp > goal.gpus_per_node:
            break
        for cp in divisors(g // tp):
            if cp > max_cp:
                break
            for pp in divisors(g // (tp * cp)):
                dp = g // (tp * cp * pp)
                for b in micro_batches:
                    for rc in recomputes:
                        for z in zero_stages:
                            for v in virtual_stages:
                                lay = Layout(dp=dp, tp=tp, pp=pp, cp=cp, zero_stage=z,
                                             micro_batch=b, recompute=rc,
                                             sequence_parallel=tp > 1, virtual_stages=v)
                                if not layout_problems(cfg, lay, goal):
                                    out.append(lay)
    return out


def rank_layouts(cfg: TransformerConfig, goal: Goal, *, n_params: float | None = None,
                 **enumerate_kwargs) -> list[LayoutEval]:
    """Evaluate every valid layout and sort: layouts that fit first, fastest first; then those
    that do not fit, smallest memory first (the nearest to fitting).

    Raises ValueError when no layout is valid (e.g. a prime GPU count that no divisibility
    rule accepts).
    """
    layouts = enumerate_layouts(cfg, goal, **enumerate_kwargs)
    if not layouts:
        raise ValueError(f"no valid layout of {goal.n_gpus} GPUs for this model and batch")
    evals = [evaluate_layout(cfg, lay, goal, n_params=n_params) for lay in layouts]
    return sorted(evals, key=lambda e: (0, e.step_s) if e.fits else (1, e.memory["total"]))


# ----------------------------------------------------------------------------------------------
# 5. The whole plan
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A planned run: the model, the best layout, and time, energy and cost."""

    goal: Goal
    law_n_params: float  # N from the law (or goal.n_params)
    cfg: TransformerConfig  # the shape we picked
    n_params: float  # count_params(cfg)
    n_tokens: float  # D = C / 6N with the shape's N
    best: LayoutEval  # fits in memory (plan_run raises otherwise)
    ranked: tuple[LayoutEval, ...]
    projection: TrainingProjection  # time, energy, cost, PF-days at the best layout's MFU

    @property
    def steps(self) -> float:
        """Optimizer steps: D / global batch tokens."""
        return self.n_tokens / self.goal.global_batch_tokens

    def summary(self) -> dict[str, object]:
        """The plan in human units, for a table."""
        p = self.projection
        return {
            "parameters (B)": self.n_params / 1e9,
            "tokens (T)": self.n_tokens / 1e12,
            "shape": f"{self.cfg.n_layers} layers × {self.cfg.d_model} ({self.cfg.n_heads} heads)",
            "best layout": self.best.layout.label(),
            "fits": self.best.fits,
            "memory / GPU (GB)": self.best.memory["total"] / 1e9,
            "step (s)": self.best.step_s,
            "MFU": self.best.mfu,
            "days": p.time_days,
            "energy (MWh)": p.energy_mwh,
            "cost (M$)": p.cost_usd / 1e6,
            "PF/s-days": p.petaflop_s_days,
        }


def project_layout(cfg: TransformerConfig, goal: Goal, ev: LayoutEval, n_params: float,
                   n_tokens: float) -> TrainingProjection:
    """Time, energy, cost and PF/s-days of training on ``n_tokens`` at layout ``ev``'s MFU."""
    if not isinstance(ev, LayoutEval):
        raise TypeError(f"ev must be a LayoutEval, got {type(ev).__name__}")
    n_params, n_tokens = positive("n_params", n_params), positive("n_tokens", n_tokens)
    attn = model_flops_per_token_for(cfg, n_params, goal.seq_len) - training_flops(n_params, 1)
    return project_training(n_params, n_tokens, goal.n_gpus, goal.accelerator, min(ev.mfu, 1.0),
                            dtype=goal.dtype, avg_power_w=goal.avg_power_w,
                            usd_per_device_hour=goal.usd_per_gpu_hour,
                            attention_flops_per_token=attn)


def plan_run(goal: Goal, **enumerate_kwargs) -> Plan:
    """Size, shape, search and project: the capstone in one call.

    Raises ValueError when no layout fits in memory (:func:`rank_layouts` still lists them all,
    each with its ``fits`` flag and memory).

    The model's N comes from ``goal.law`` (or ``goal.n_params``); the shape's exact count N'
    then sets D = C / 6N' so the run spends the budget. Attention FLOPs come on top of 6·N'·D
    in the projection (they are real work the GPUs do).
    """
    if not isinstance(goal, Goal):
        raise TypeError(f"goal must be a Goal, got {type(goal).__name__}")
    n_law = goal.n_params if goal.n_params is not None else size_model(goal.compute_flops, goal.law)[0]
    cfg = shape_for_params(n_law, vocab_size=goal.vocab_size, seq_len=goal.seq_len)
    n = float(count_params(cfg))
    d = goal.compute_flops / training_flops(n, 1)
    ranked = rank_layouts(cfg, goal, **enumerate_kwargs)
    best = ranked[0]
    if not best.fits:
        raise ValueError(
            f"the goal fits on no layout: the {n / 1e9:.3g}B-parameter model needs at least "
            f"{best.memory['total'] / 1e9:,.1f} GB per GPU ({best.layout.label()}), but "
            f"{goal.accelerator} allows {goal.memory_limit_bytes / 1e9:,.1f} GB "
            f"({goal.memory_usable:.0%} of its memory); add GPUs, shorten the sequence or pick "
            f"a GPU with more memory (rank_layouts lists every layout with its fits flag)")
    return Plan(goal=goal, law_n_params=float(n_law), cfg=cfg, n_params=n, n_tokens=d, best=best,
                ranked=tuple(ranked), projection=project_layout(cfg, goal, best, n, d))


# ----------------------------------------------------------------------------------------------
# Published anchors
# ----------------------------------------------------------------------------------------------

LLAMA3_SOURCE = "Dubey et al. 2024 (The Llama 3 Herd of Models)"
#: Llama 3 405B: 405B parameters trained on 15.6T tokens, "3.8 × 10^25 FLOPs" (Sec. 1 and 3.2.1).
LLAMA3_405B_RUN = {"n_params": 405e9, "n_tokens": 15.6e12, "reported_flops": 3.8e25,
                   "source": LLAMA3_SOURCE + ", Sec. 1 and Sec. 3.2.1"}
#: The paper's own scaling-law extrapolation for that budget (Sec. 3.2.1): a 402B model on
#: 16.55T tokens. Quoted from the paper; not re-derivable here (its fit is on its own data).
LLAMA3_SCALING_PREDICTION = {"compute_flops": 3.8e25, "n_params": 402e9, "n_tokens": 16.55e12,
                             "source": LLAMA3_SOURCE + ", Sec. 3.2.1"}
#: Llama 3 405B shape (Table 3: 126 layers, width 16,384, FFN 53,248, 128 heads, 8 K/V heads,
#: vocabulary 128,000 + 256 special). Pipelined in 16 stages the paper removes one layer from
#: the first and the last stage (Sec. 3.3.2), i.e. 16 stages of 8 layer slots; the step time uses
#: the 128 slots (the 8-layer middle stages set the pace), the memory the real stages
#: (LLAMA3_STAGE_LAYERS). Parameters: 405e9 as published (the 128 slots would count two layers
#: too many, which is why we pass n_params).
LLAMA3_405B_CONFIG = replace(preset("llama3-405b"), n_layers=128,
                             name="Llama 3 405B (128 layer slots)")
#: Layers per pipeline rank: 126 = 7 + 14·8 + 7 (Dubey et al. 2024, Sec. 3.3.2: "we reduce one
#: Transformer layer each from the first and the last stages").
LLAMA3_STAGE_LAYERS = (7,) + (8,) * 14 + (7,)
#: Our recomputation level for "without activation checkpointing" (Sec. 3.3.2): a fused attention
#: kernel (FlashAttention, Dao et al. 2022) never stores the s × s scores and recomputes them in
#: its backward, which is what Korthikanti et al.'s *selective* recomputation keeps: 34·s·b·h/t
#: bytes per layer with sequence parallelism. "none" would store 5·a·s²·b/t more bytes per layer
#: (about 5 GB at 8k tokens), which no fused-attention run holds.
NO_CHECKPOINTING = "selective"
#: FSDP as Llama 3 runs it: "shards optimizer states and gradients, but for model shards we do not
#: reshard after forward computation" (Sec. 3.3.2): parameters whole during the step, i.e. ZeRO-2.
LLAMA3_ZERO_STAGE = 2


@dataclass(frozen=True)
class Table4Row:
    """One row of Dubey et al. 2024, Table 4 (Llama 3 405B pre-training layouts)."""

    n_gpus: int
    tp: int
    cp: int
    pp: int
    dp: int
    seq_len: int
    batch_per_dp: int  # sequences per DP group per step
    tokens_per_batch: float  # as printed: "16M"
    mfu_run: str  # name of the labutils.published_mfu run holding its reported MFU

    def __post_init__(self) -> None:
        for name in ("n_gpus", "tp", "cp", "pp", "dp", "seq_len", "batch_per_dp"):
            positive_int(name, getattr(self, name))
        positive("tokens_per_batch", self.tokens_per_batch)
        if not isinstance(self.mfu_run, str):
            raise TypeError(f"mfu_run must be a str, got {self.mfu_run!r}")

    @property
    def layout_gpus(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def batch_tokens(self) -> int:
        return self.dp * self.batch_per_dp * self.seq_len


LLAMA3_TABLE4 = (
    Table4Row(8192, 8, 1, 16, 64, 8192, 32, 16e6, "Llama 3 405B, 8,192 GPUs"),
    Table4Row(16384, 8, 1, 16, 128, 8192, 16, 16e6, "Llama 3 405B, 16,384 GPUs"),
    Table4Row(16384, 8, 16, 16, 8, 131_072, 16, 16e6, "Llama 3 405B, 16,384 GPUs, 131k context"),
)


def _check_row(row: object) -> Table4Row:
    if not isinstance(row, Table4Row):
        raise TypeError(f"row must be a Table4Row, got {type(row).__name__}")
    return row


def llama3_goal(row: Table4Row, **overrides) -> Goal:
    """The :class:`Goal` of one Table 4 row: H100s, 8 per node, its sequence and batch."""
    row = _check_row(row)
    kw = dict(compute_flops=LLAMA3_405B_RUN["reported_flops"], accelerator="H100-SXM",
              n_gpus=row.n_gpus, gpus_per_node=8, seq_len=row.seq_len,
              global_batch_tokens=row.batch_tokens, n_params=LLAMA3_405B_RUN["n_params"],
              vocab_size=LLAMA3_405B_CONFIG.vocab_size)
    kw.update(overrides)
    return Goal(**kw)


def llama3_layout(row: Table4Row, *, recompute: str = NO_CHECKPOINTING,
                  zero_stage: int = LLAMA3_ZERO_STAGE, virtual_stages: int = 1) -> Layout:
    """Table 4's layout with our assumptions: micro-batch 1 sequence, sequence parallelism on,
    the paper's FSDP as ZeRO-2 over DP, no activation checkpointing (the paper's 8k runs,
    Sec. 3.3.2), and the given interleaving (the paper uses it but does not state V)."""
    row = _check_row(row)
    return Layout(dp=row.dp, tp=row.tp, pp=row.pp, cp=row.cp, zero_stage=zero_stage,
                  micro_batch=1, recompute=recompute, sequence_parallel=True,
                  virtual_stages=virtual_stages)


def evaluate_llama3(row: Table4Row, **layout_kwargs) -> LayoutEval:
    """Our model's memory and MFU for one Table 4 row (see :func:`llama3_layout`), with the
    paper's stages of 7, 8, …, 8, 7 layers for the memory."""
    goal = llama3_goal(row)
    seq_cfg = replace(LLAMA3_405B_CONFIG, seq_len=row.seq_len)
    return evaluate_layout(seq_cfg, llama3_layout(row, **layout_kwargs), goal,
                           n_params=LLAMA3_405B_RUN["n_params"], stage_layers=LLAMA3_STAGE_LAYERS)


#: Lecture 000's worked example: a 7B model on 256 A100s, 2048 sequences of 4096 tokens per step
#: in 12.7 s, i.e. 35 % MFU (000_f52c65b7512ce437.txt, "Model FLOPs Utilization").
LECTURE_7B = {"n_params": 7e9, "n_gpus": 256, "accelerator": "A100-80GB", "seq_len": 4096,
              "global_batch_seqs": 2048, "step_s": 12.7, "mfu": 0.35,
              "source": lecture_cite(L0, "'Model FLOPs Utilization'")}


def kernel_efficiency_for_step(cfg: TransformerConfig, layout: Layout, goal: Goal,
                               target_step_s: float, *, n_params: float | None = None,
                               tol: float = 1e-4) -> float:
    """The kernel efficiency at which :func:`evaluate_layout` predicts ``target_step_s``.

    The step time falls monotonically as the kernel efficiency rises (only the compute term
    depends on it), so bisection on (0, 1] finds it. Raises ValueError if even efficiency 1
    is slower than the target (communication and bubble alone exceed it).
    """
    target = positive("target_step_s", target_step_s)
    tol = number("tol", tol, low=1e-12, high=0.1)

    def step(eff: float) -> float:
        return evaluate_layout(cfg, layout, replace(goal, kernel_efficiency=eff),
                               n_params=n_params).step_s

    if step(1.0) > target:
        raise ValueError(f"target_step_s={target:.4g} s is below what efficiency 1 gives "
                         f"({step(1.0):.4g} s)")
    lo, hi = 1e-4, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if step(mid) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def step_time_for_mfu(cfg: TransformerConfig, goal: Goal, mfu_fraction: float,
                      n_params: float | None = None) -> float:
    """Seconds per step that a reported MFU implies: one global batch's model FLOPs
    (6N + attention per token) at K·F·MFU (:func:`labutils.throughput.projected_time_s`)."""
    if not isinstance(cfg, TransformerConfig) or not isinstance(goal, Goal):
        raise TypeError(f"cfg and goal must be a TransformerConfig and a Goal, got "
                        f"{type(cfg).__name__} and {type(goal).__name__}")
    n = float(count_params(cfg)) if n_params is None else positive("n_params", n_params)
    flops = model_flops_per_token_for(cfg, n, goal.seq_len) * goal.global_batch_tokens
    return projected_time_s(flops, goal.n_gpus, goal.peak_flops, mfu_fraction)
