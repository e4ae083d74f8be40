/* Chapter 3's training-run planner (labutils.widgets.throughput.render) in the static book.
 *
 * labutils.throughput.project_training at the part's bf16 (else fp16) dense peak:
 * C = 6·N·D, t = C / (K·F·MFU), E = t·K·P_avg, cost = K·t·price. Peaks, TDPs and unit
 * constants come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  /* labutils.widgets.throughput.planner_dtype */
  function plannerDtype(spec) {
    return spec.dtypes.includes("bf16") ? "bf16" : "fp16";
  }

  /* labutils.throughput.project_training (attention_flops_per_token = 0). */
  function compute(v, c) {
    const spec = c.accelerators[v.accelerator];
    const peak = spec.peak_flops_by_dtype[plannerDtype(spec)];
    const power = SC.positive("avg_power_w", v.avg_power_w);
    const d = SC.positive("n_tokens", v.tokens_b * 1e9);
    const n = SC.positive("n_params", v.params_b * 1e9);
    const computeFlops = (c.FLOPS_PER_PARAM_TOKEN * n * 1.0 + 0.0) * d; // 6·N·1 token, then × D
    const m = SC.number("mfu_fraction", v.mfu_fraction, { low: 0, high: 1, lowOpen: true });
    const k = SC.integer("n_devices", v.n_devices, 1);
    const timeS = computeFlops / (k * peak * m);
    const costUsd = timeS / c.S_PER_HOUR * k *
      SC.nonNegative("usd_per_device_hour", v.usd_per_device_hour);
    return {
      compute_flops: computeFlops, petaflop_s_days: computeFlops / c.PETAFLOP_S_DAY_FLOPS,
      time_s: timeS, energy_j: timeS * k * power, cost_usd: costUsd,
      peak_flops_per_device: peak, avg_power_w: power, n_devices: k,
      time_days: timeS / c.S_PER_DAY, device_hours: timeS / c.S_PER_HOUR * k,
    };
  }

  /* labutils.widgets.throughput.planner_summary_html */
  function render(v, c) {
    const f = SC.format;
    const p = compute(v, c);
    const rows = [
      ["compute C = 6·N·D", `${f(p.compute_flops, ".3g")} FLOPs`],
      ["in petaflop/s-days", f(p.petaflop_s_days, ",.1f")],
      ["peak per device (dense)", `${f(p.peak_flops_per_device / 1e12, ",.0f")} TFLOP/s`],
      ["time t = C / (K·F·MFU)", `${f(p.time_s / 3600, ",.1f")} h = ${f(p.time_days, ",.2f")} days`],
      ["device-hours", f(p.device_hours, ",.0f")],
      ["energy E = t·K·P_avg", `${f(p.energy_j / c.J_PER_MWH, ",.2f")} MWh (at ${f(p.avg_power_w, ",.0f")} W/device)`],
      ["cost", `$${f(p.cost_usd, ",.0f")}`],
    ];
    const body = rows.map(([k, val]) =>
      `<tr><td>${k}</td><td style='text-align:right'><b>${val}</b></td></tr>`).join("");
    return `<table>${body}</table>`;
  }

  /* The live planner sets the power to the chosen part's TDP when the part changes. */
  function follow(name, ui, c) {
    if (name === "accelerator") ui.setValue("avg_power_w", c.accelerators[ui.values().accelerator].tdp_watts);
  }

  SC.calculators.throughput = { compute, render, follow };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
