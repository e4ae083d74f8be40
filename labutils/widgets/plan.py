"""Run planner: compute budget, GPUs, GPU type, sequence length → model, best layout, time, cost.

Every number comes from :func:`labutils.plan.plan_run` (which calls the tested functions of
Chapters 1-8); :func:`render` only formats, and :func:`labutils.widgets.calculator.calculator`
wires it to the controls.
"""

from __future__ import annotations

import ipywidgets as w

from labutils import hardware
from labutils.plan import LAWS, Goal, Plan, plan_run
from labutils.widgets.calculator import calculator

GPU_CHOICES = [2**k for k in range(5, 15)]  # 32 … 16384
SEQ_CHOICES = [2048, 4096, 8192, 16384, 32768, 65536, 131072]
BATCH_CHOICES_M = [1, 2, 4, 8, 16]  # global batch in units of 2**20 tokens


def planner_goal(budget_flops: float, n_gpus: int, accelerator: str, seq_len: int,
                 batch_m_tokens: int = 4, law: str = "hoffmann",
                 usd_per_gpu_hour: float = 2.0) -> Goal:
    """The :class:`Goal` the planner's controls describe (batch in units of 2**20 tokens)."""
    return Goal(compute_flops=budget_flops, accelerator=accelerator, n_gpus=n_gpus,
                seq_len=seq_len, global_batch_tokens=batch_m_tokens * 2**20, law=law,
                usd_per_gpu_hour=usd_per_gpu_hour)


def max_cp_for(seq_len: int) -> int:
    """Context parallelism the planner may use: none up to 8k tokens, then up to seq/8192."""
    return max(1, seq_len // 8192)


def plan_for(goal: Goal) -> Plan:
    """:func:`plan_run` with the planner's search space (micro-batches 1, 2, 4; selective or
    full recomputation; ZeRO-1; CP as :func:`max_cp_for` allows)."""
    return plan_run(goal, max_cp=max_cp_for(goal.seq_len))


def report(plan: Plan) -> str:
    """HTML summary of a plan: the model, the best layout and why, time, energy, cost.
    (A plan always fits: :func:`plan_run` raises ValueError when no layout does.)"""
    b, p = plan.best, plan.projection
    mem = b.memory
    times = ", ".join(f"{k} {v:.2f} s" for k, v in b.time_breakdown().items() if v > 0)
    return (
        f"<b>Model</b>: {plan.n_params / 1e9:,.1f}B parameters "
        f"({plan.cfg.n_layers} layers × {plan.cfg.d_model}, {plan.cfg.n_heads} heads) on "
        f"{plan.n_tokens / 1e12:,.2f}T tokens ({plan.n_tokens / plan.n_params:,.0f} tokens/param)<br>"
        f"<b>Best layout</b> of {len(plan.ranked)} valid: <code>{b.layout.label()}</code> "
        f"(TP over {b.links['TP']}, DP over {b.links['DP']})<br>"
        f"memory per GPU: {mem['total'] / 1e9:,.1f} GB (params {mem['params'] / 1e9:,.1f}, grads "
        f"{mem['grads'] / 1e9:,.1f}, optimizer {mem['optimizer'] / 1e9:,.1f}, activations "
        f"{mem['activations'] / 1e9:,.1f}) of {b.memory_limit_bytes / 1e9:,.0f} usable<br>"
        f"step: {b.step_s:,.2f} s ({times}); MFU {b.mfu:.1%}; "
        f"{b.tokens_per_s / 1e6:,.2f}M tokens/s<br>"
        f"<b>Run</b>: {p.time_days:,.1f} days, {p.energy_mwh:,.0f} MWh (GPUs at TDP), "
        f"${p.cost_usd / 1e6:,.2f}M at ${plan.goal.usd_per_gpu_hour:.2f}/GPU-hour, "
        f"{p.petaflop_s_days:,.0f} petaflop/s-days"
    )


def render(values: dict[str, object]) -> tuple[str, None]:
    """:func:`report` of the planner's setting. A model too small to shape, no valid layout or
    none that fits raises labutils' ValueError, which the calculator shows in red."""
    return report(plan_for(planner_goal(**values))), None


def run_planner() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "130px"}, layout=w.Layout(width="480px"))
    s = dict(d, continuous_update=False)
    budget = w.FloatLogSlider(value=1e24, base=10, min=21, max=26, step=0.1,
                              description="budget (FLOPs)", readout_format=".1e", **s)
    gpus = w.SelectionSlider(options=GPU_CHOICES, value=1024, description="GPUs", **s)
    acc = w.Dropdown(options=[n for n in hardware.names()
                              if n.startswith(("A100", "H100", "H200"))],
                     value="H100-SXM", description="GPU type", **d)
    seq = w.SelectionSlider(options=SEQ_CHOICES, value=4096, description="sequence length", **s)
    batch = w.SelectionSlider(options=BATCH_CHOICES_M, value=4,
                              description="batch (M tokens)", **s)
    law = w.Dropdown(options=LAWS, value="hoffmann", description="sizing law", **d)
    price = w.FloatSlider(value=2.0, min=0.5, max=8.0, step=0.25, description="$ per GPU-hour", **s)
    controls = {"budget_flops": budget, "n_gpus": gpus, "accelerator": acc, "seq_len": seq,
                "batch_m_tokens": batch, "law": law, "usd_per_gpu_hour": price}
    calc = calculator(controls, render, figure=False)
    return w.VBox([w.HTML("<b>Pretraining run planner</b> (labutils.plan)"),
                   *controls.values(), calc.text])
