"""FSDP in practice (Chapter 4, memory): CPU offload, the sharding factor, and FSDP2 runs.

Lecture 3 (COMSE6998, "Efficient Multi-GPU Compute Strategies") sums FSDP up in three lines:
it shards parameters, gradients and optimizer states; it "supports offloading to CPU if
needed"; and one can "configure level of sharding via sharding factor". This module prices the
last two and runs them for real with PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``):

* :func:`offload_traffic`: what CPU offload moves over PCIe per step and how long that takes;
* :func:`hybrid_sharding`: memory per GPU and communication per step as functions of the
  sharding factor F (FSDP inside groups of F GPUs, replicas across the groups: "hybrid
  sharding", HSDP); F = 1 is DDP, F = world size is full sharding;
* :func:`fsdp_hidden_flops_limit` and :func:`ring_regression_bound`: when compute hides FSDP's
  communication, and how much throughput per GPU ring traffic alone can cost as the cluster
  grows (the comparison with the FSDP paper's T5-11B figure);
* :func:`train_fsdp2_variant`: a worker that trains the tiny GPT with FSDP2 under one of
  :data:`FSDP2_VARIANTS` and records what each rank holds and communicates.

Units: parameters, elements, bytes, seconds, bytes/s, FLOPs, FLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist

from labutils.hardware import GPUS_PER_NODE
from labutils.memory import ddp_comm_volume, model_state_bytes, ring_comm_bytes, shard_numel, zero_comm_volume
from labutils.validate import integer, positive

# NVIDIA A100 Tensor Core GPU datasheet (2021), "Interconnect: PCIe Gen4: 64GB/s": both directions
# together, so 32 GB/s each way for a x16 link. labutils.hardware has no PCIe field (yet).
PCIE_GEN4_X16_BYTES_PER_S = 64e9 / 2
PCIE_SOURCE = "NVIDIA A100 datasheet: PCIe Gen4 64 GB/s (both directions), 32 GB/s each way"
# Zhao et al. 2023 (PyTorch FSDP), Sec. 5.1: "A100 80GB GPUs interconnected by a 2Tb/s RoCE network".
# We read it as 2 Tb/s per node of 8 GPUs, shared by the node's GPUs when all send at once.
FSDP_PAPER_ROCE_BITS_PER_S = 2e12
# Zhao et al. 2023, Sec. 5.4 and Fig. 7(c): T5-11B (sequence length 512, batch 8 and 16 per GPU),
# full sharding on 8 to 512 GPUs: "a 7% regression in per-GPU TFLOPS".
FSDP_T5_11B = {"n_params": 11e9, "seq_len": 512, "batches": (8, 16), "gpus": (8, 512),
               "tflops_regression": 0.07, "source": "Zhao et al. 2023, Sec. 5.4, Fig. 7(c)"}


@dataclass(frozen=True)
class OffloadTraffic:
    """PCIe traffic of FSDP CPU offload for one GPU and one optimizer step."""

    h2d_bytes: float  # host-to-device: parameter shards copied up before each all-gather
    d2h_bytes: float  # device-to-host: the reduce-scattered gradient shard copied down
    h2d_s: float  # seconds at the PCIe bandwidth, one direction
    d2h_s: float

    @property
    def step_s(self) -> float:
        """Seconds of PCIe time per step if both directions overlap (PCIe is full duplex)."""
        return max(self.h2d_s, self.d2h_s)


def offload_traffic(n_params: float, *, shard: int, reshard_after_forward: bool = True,
                    param_bytes: int = 4, grad_bytes: int = 4,
                    pcie_bytes_per_s: float = PCIE_GEN4_X16_BYTES_PER_S) -> OffloadTraffic:
    """Bytes and seconds CPU offload moves over PCIe per GPU per step.

    PyTorch's ``CPUOffloadPolicy`` (its docstring, torch 2.13): "Sharded parameters are copied
    host-to-device before all-gather [...] Sharded gradients are copied device-to-host in
    backward, and the optimizer step runs on CPU". So each GPU copies its parameter shard
    (``n_params / shard`` elements of ``param_bytes``) up once per all-gather, twice per step
    when ``reshard_after_forward`` (forward and backward) and once otherwise, and its gradient
    shard (``grad_bytes`` per element) down once. Default 4-byte (fp32) shards: the sharded
    parameters FSDP keeps are the fp32 masters, and gradients are reduced in fp32 by default.
    """
    n = integer("n_params", n_params, 1, integral_float=True)
    f = integer("shard", shard, 1)
    if not isinstance(reshard_after_forward, bool):
        raise TypeError(f"reshard_after_forward must be a bool, got {reshard_after_forward!r}")
    integer("param_bytes", param_bytes, 1, 8)
    integer("grad_bytes", grad_bytes, 1, 8)
    bw = positive("pcie_bytes_per_s", pcie_bytes_per_s)
    local = shard_numel(n, f)
    gathers = 2 if reshard_after_forward else 1
    h2d, d2h = float(gathers * local * param_bytes), float(local * grad_bytes)
    return OffloadTraffic(h2d, d2h, h2d / bw, d2h / bw)


@dataclass(frozen=True)
class HybridCost:
    """Per GPU, per step, for FSDP inside groups of ``shard`` GPUs and ``replicas`` copies."""

    shard: int
    replicas: int
    memory_bytes: float  # model states held per GPU
    intra_group_bytes: float  # ring bytes sent inside the sharding group (all-gather ×2, reduce-scatter)
    inter_group_bytes: float  # ring bytes sent in the all-reduce of the gradient shard across replicas
    comm_s: float  # both, at the bandwidth of the link each group spans, not overlapped


def _link(group_span: int, gpus_per_node: int, intra: float, inter: float) -> float:
    """The bandwidth a ring over ``group_span`` consecutive GPUs runs at: its slowest link."""
    return intra if group_span <= gpus_per_node else inter


def hybrid_sharding(n_params: float, *, world: int, shard: int, recipe: str = "mixed_adam",
                    bytes_per_element: int = 2, intra_bytes_per_s: float, inter_bytes_per_s: float,
                    gpus_per_node: int = GPUS_PER_NODE) -> HybridCost:
    """Memory per GPU and communication per step of hybrid sharding with sharding factor ``shard``.

    The ``world`` GPUs form ``world / shard`` replicas of ``shard`` GPUs each; groups are
    consecutive ranks, so a group of at most ``gpus_per_node`` stays inside a node.
    * memory: ZeRO-3 model states sharded over ``shard`` (:func:`labutils.memory.model_state_bytes`);
    * inside a group: ZeRO-3's 3Ψ (two all-gathers and a reduce-scatter), as a ring over ``shard``;
    * across groups: an all-reduce (2 × the shard's elements) as a ring over the replicas;
    each at ``bytes_per_element`` (2: bf16 communication). ``inter_bytes_per_s`` is what one GPU
    gets across nodes when every GPU of its node sends at once.
    """
    n = integer("n_params", n_params, 1, integral_float=True)
    w = integer("world", world, 1)
    f = integer("shard", shard, 1, w)
    if w % f:
        raise ValueError(f"shard must divide world: shard={f}, world={w}")
    b = integer("bytes_per_element", bytes_per_element, 1, 8)
    intra, inter = positive("intra_bytes_per_s", intra_bytes_per_s), positive("inter_bytes_per_s", inter_bytes_per_s)
    per_node = integer("gpus_per_node", gpus_per_node, 1)
    r = w // f
    memory = model_state_bytes(n, recipe=recipe, zero_stage=3, dp=f)["total"]
    intra_bytes = ring_comm_bytes(zero_comm_volume(n, 3), f, b) if f > 1 else 0.0
    inter_bytes = ring_comm_bytes(ddp_comm_volume(shard_numel(n, f)), r, b) if r > 1 else 0.0
    comm_s = (intra_bytes / _link(f, per_node, intra, inter)
              + inter_bytes / _link(w, per_node, intra, inter))  # replicas span the whole world
    return HybridCost(f, r, float(memory), float(intra_bytes), float(inter_bytes), comm_s)


def fsdp_hidden_flops_limit(flops_per_gpu_step: float, comm_s: float) -> float:
    """FLOP/s per GPU below which a step's compute lasts longer than its communication.

    With perfect overlap, FSDP's all-gathers and reduce-scatters cost nothing while compute
    takes at least ``comm_s`` seconds: that holds while a GPU runs at most
    ``flops_per_gpu_step / comm_s`` FLOP/s. Faster GPUs (or smaller batches) expose the rest.
    """
    return positive("flops_per_gpu_step", flops_per_gpu_step) / positive("comm_s", comm_s)


def ring_regression_bound(gpus_small: int, gpus_large: int) -> float:
    """Largest drop in per-GPU throughput from ``gpus_small`` to ``gpus_large`` GPUs that ring
    traffic alone explains, as a fraction.

    A ring collective sends (p − 1)/p of its volume per GPU (:func:`labutils.memory.ring_comm_bytes`).
    With per-GPU bandwidth and compute per GPU fixed (weak scaling) and a step made only of
    communication, throughput per GPU falls by 1 − [(p_s − 1)/p_s] / [(p_l − 1)/p_l]; any
    compute that hides communication makes the drop smaller.
    """
    small = integer("gpus_small", gpus_small, 2)
    large = integer("gpus_large", gpus_large, small)
    return 1.0 - ring_comm_bytes(1.0, small, 1) / ring_comm_bytes(1.0, large, 1)


# ----------------------------------------------------------------------------------------------
# A real FSDP2 run (gloo, CPU): the same tiny GPT as Chapter 4's ZeRO, in four configurations
# ----------------------------------------------------------------------------------------------

FSDP2_VARIANTS = ("full", "no_reshard", "cpu_offload", "hybrid")


def train_fsdp2_variant(run: object, variant: str) -> dict:
    """Worker: train ``run`` (a :class:`labutils.parallel.data.zero_workers.ZeroRun`) with FSDP2's ``variant``.

    * ``"full"``: ``fully_shard`` on each block and the root (the defaults);
    * ``"no_reshard"``: ``reshard_after_forward=False`` everywhere (gather once per step);
    * ``"cpu_offload"``: ``CPUOffloadPolicy(pin_memory=False)`` (pinned memory needs an
      accelerator; on a CPU-only machine "offload" moves nothing, but the code path runs);
    * ``"hybrid"``: a 2-D device mesh (replicas × shards) with shards of 2 ranks (HSDP); needs
      an even world size of at least 4.
    Returns ``losses``, ``params`` (full, gathered, flattened), ``local_numel`` (elements of
    parameters this rank holds), ``comm`` (elements per step by (collective, group size), in
    :class:`~labutils.parallel.comm_log.CommLog`'s volume convention) and ``root_numel``.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy

    from labutils.parallel.grid import rank_device
    from labutils.parallel.data.zero_workers import ZeroRun, train_fsdp2

    if not isinstance(run, ZeroRun):
        raise TypeError(f"run must be a ZeroRun, got {type(run).__name__}")
    if variant not in FSDP2_VARIANTS:
        raise ValueError(f"variant must be one of {FSDP2_VARIANTS}, got {variant!r}")
    world = dist.get_world_size()
    kwargs: dict = {}
    if variant == "no_reshard":
        kwargs["reshard_after_forward"] = False
    elif variant == "cpu_offload":
        kwargs["offload_policy"] = CPUOffloadPolicy(pin_memory=False)
    elif variant == "hybrid":
        if world < 4 or world % 2:
            raise ValueError(f"the hybrid variant needs an even world size >= 4, got {world}")
        from torch.distributed.device_mesh import init_device_mesh

        kwargs["mesh"] = init_device_mesh(rank_device().type, (world // 2, 2),
                                          mesh_dim_names=("replicate", "shard"))
    out = train_fsdp2(run, **kwargs)
    return {"losses": out["losses"], "variant": variant, "params": out["params"],
            "local_numel": out["local_numel"], "device": out["device"],
            "comm": [c["by_group"] for c in out["comm"]], "root_numel": out["root_numel"]}


def compare_fsdp2_variants(run: object, variants: tuple[str, ...]) -> dict[str, dict]:
    """Worker: :func:`train_fsdp2_variant` for each of ``variants`` in one launch."""
    out = {}
    for variant in variants:
        out[variant] = train_fsdp2_variant(run, variant)
        dist.barrier()
    return out
