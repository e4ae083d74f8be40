"""Data-parallel explorer: model size, GPUs, links and buckets → all-reduce, compute, efficiency.

Every number comes from :func:`labutils.parallel.data.cost.dp_step` (α–β all-reduce per bucket,
overlap with backward, compute from :mod:`labutils.hardware`); :func:`render` only formats, and
:func:`labutils.widgets.calculator.calculator` wires it to the controls.
"""

from __future__ import annotations

import ipywidgets as w

from labutils import hardware
from labutils.hardware import INFINIBAND, NVSWITCH, Link
from labutils.parallel.data.cost import DPCluster, dp_step
from labutils.widgets.calculator import calculator

GPU_CHOICES = [2**k for k in range(11)]  # 1 … 1024
ALGORITHM_CHOICES = ("ring", "rabenseifner", "tree")


def cluster_from(params_b: float, accelerator: str, mfu: float, intra_gb_s: float,
                 inter_gb_s: float, latency_us: float, bucket_mib: float, algorithm: str,
                 overlap: bool) -> DPCluster:
    """The :class:`DPCluster` the explorer's controls describe (GB = 1e9, MiB = 2**20)."""
    intra = Link(NVSWITCH.name, intra_gb_s * 1e9, latency_us * 1e-6, "explorer setting")
    inter = Link(INFINIBAND.name, inter_gb_s * 1e9, latency_us * 1e-6, "explorer setting")
    return DPCluster(params_b * 1e9, accelerator=accelerator, mfu=mfu, intra_link=intra,
                     inter_link=inter, bucket_bytes=bucket_mib * 2**20, algorithm=algorithm,
                     overlap=overlap)


def report(cluster: DPCluster, world_size: int, tokens_per_gpu: float) -> str:
    """HTML lines for one setting: all-reduce, compute, exposed communication, step time, and
    weak-scaling efficiency (one GPU's step time over this step time)."""
    step = dp_step(cluster, world_size, tokens_per_gpu)
    one = dp_step(cluster, 1, tokens_per_gpu)
    link = cluster.link_for(world_size)
    eff = one.step_s / step.step_s
    return (
        f"<b>{world_size} GPU(s)</b>, ring over <i>{link.name}</i> "
        f"({link.bandwidth_bytes_per_s / 1e9:.0f} GB/s)<br>"
        f"gradients all-reduced: {cluster.grad_bytes / 1e9:.2f} GB per step<br>"
        f"all-reduce time: {step.comm_s * 1e3:,.1f} ms; exposed after overlap: "
        f"{step.exposed_comm_s * 1e3:,.1f} ms<br>"
        f"compute (forward + backward): {step.compute_s * 1e3:,.1f} ms<br>"
        f"step time: {step.step_s * 1e3:,.1f} ms; throughput {step.tokens_per_s:,.0f} tokens/s<br>"
        f"<b>scaling efficiency</b> (weak, vs 1 GPU): {eff:.1%}"
    )


def render(values: dict[str, object]) -> tuple[str, None]:
    """:func:`report` of the explorer's setting (sequences of 4096 tokens per GPU)."""
    cluster = cluster_from(values["params_b"], values["accelerator"], values["mfu"],
                           values["intra_gb_s"], values["inter_gb_s"], values["latency_us"],
                           values["bucket_mib"], values["algorithm"], values["overlap"])
    return report(cluster, values["world_size"], values["seqs"] * 4096), None


def data_parallel_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "150px"}, layout=w.Layout(width="480px"))
    s = dict(d, continuous_update=False)  # sliders recompute on release
    params = w.FloatLogSlider(value=7, base=10, min=-1, max=3, step=0.05,
                              description="parameters (B)", **s)
    gpus = w.SelectionSlider(options=GPU_CHOICES, value=64, description="GPUs", **s)
    seqs = w.IntSlider(value=8, min=1, max=64, description="seqs/GPU (×4096 tok)", **s)
    acc = w.Dropdown(options=[n for n in hardware.names() if "bf16" in hardware.get(n).dtypes],
                     value="A100-80GB", description="accelerator", **d)
    mfu = w.FloatSlider(value=0.4, min=0.05, max=1.0, step=0.05, description="MFU (compute)", **s)
    intra = w.FloatLogSlider(value=NVSWITCH.bandwidth_bytes_per_s / 1e9, base=10, min=1, max=4,
                             step=0.05, description="in-node GB/s (≤8 GPUs)", **s)
    inter = w.FloatLogSlider(value=INFINIBAND.bandwidth_bytes_per_s / 1e9, base=10, min=0, max=3,
                             step=0.05, description="between nodes GB/s", **s)
    lat = w.FloatLogSlider(value=10, base=10, min=-1, max=3, step=0.1,
                           description="latency α (µs)", **s)
    bucket = w.FloatLogSlider(value=25, base=2, min=0, max=14, step=1,
                              description="bucket (MiB)", **s)
    algo = w.Dropdown(options=ALGORITHM_CHOICES, value="ring", description="algorithm", **d)
    overlap = w.Checkbox(value=True, description="overlap with backward")
    controls = {"params_b": params, "world_size": gpus, "seqs": seqs, "accelerator": acc,
                "mfu": mfu, "intra_gb_s": intra, "inter_gb_s": inter, "latency_us": lat,
                "bucket_mib": bucket, "algorithm": algo, "overlap": overlap}
    calc = calculator(controls, render, figure=False)
    return w.VBox([w.HTML("<b>Data-parallel step explorer</b> (α–β model)"),
                   *controls.values(), calc.text])
