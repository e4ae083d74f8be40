/* Chapter 6's tensor-parallel explorer (labutils.widgets.tensor_parallel.report) in the static
 * book: labutils.parallel.tp_cost.tp_layer_cost (Shoeybi et al. 2019: 4 ring all-reduces of
 * b·s·h bytes per layer; Narayanan et al. 2021: 3·(24·b·s·h² + 4·b·s²·h) FLOPs per layer) and
 * activation memory per rank (Korthikanti et al. 2022). Links, peaks and the report's fixed
 * settings come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  /* labutils.parallel.collectives.alpha_beta_coefficients, ring: (2(p−1), 2(p−1)/p·n). */
  function ringAllReduceS(nBytes, p, link) {
    if (p === 1) return 0.0 * link.latency_s + 0.0 * (1.0 / link.bandwidth_bytes_per_s);
    return 2.0 * (p - 1) * link.latency_s + 2.0 * (p - 1) / p * nBytes * (1.0 / link.bandwidth_bytes_per_s);
  }

  function compute(v, c) {
    const d = c.defaults;
    const s = v.seq_len, b = d.micro_batch, h = SC.integer("d_model", v.d_model, 1);
    const t = SC.integer("tp", v.tp, 1);
    const mfu = d.mfu;
    if (h % t) SC.fail(`tp=${t} must divide d_model=${h} (each rank holds h/t columns)`);
    const peak = c.accelerators[d.accelerator].peak_flops_by_dtype.bf16;
    const link = v.link_choice === c.AUTO_LINK
      ? c.links[t <= c.GPUS_PER_NODE ? c.INTRA_LINK : c.INTER_LINK] : c.links[v.link_choice];
    const e = 2; // bf16 (tp_layer_cost's bytes_per_element default)
    const n = s * b * h * e;
    const commS = c.ALL_REDUCES_PER_LAYER * ringAllReduceS(n, t, link);
    const computeS = c.TRAINING_MULTIPLIER * (24.0 * b * s * h * h + 4.0 * b * s * s * h) / t / (peak * mfu);
    let commBytes = 0.0; // 2 all-reduces forward + 2 backward, 2(t−1)/t·n bytes each
    for (let i = 0; i < 2; i += 1) commBytes += 2 * 2.0 * (t - 1) / t * n;
    const heads = SC.idiv(h, c.HEAD_DIM);
    const act = (sp) => SC.activationBytesPerLayer(s, b, h, heads, { tp: t, sequenceParallel: sp });
    return {
      link: t > 1 ? link.name : "none", compute_s: computeS, comm_s: commS, comm_bytes: commBytes,
      efficiency: computeS / (computeS + commS), weights_gb: 12.0 * h * h / t * e / 1e9,
      act_tp_gb: act(false) / 1e9, act_tp_sp_gb: act(true) / 1e9,
    };
  }

  function render(v, c) {
    const f = SC.format;
    const d = c.defaults;
    const r = compute(v, c);
    return `<b>TP=${v.tp}</b> over <i>${r.link}</i>; h=${v.d_model}, s=${v.seq_len}, ` +
      `b=${d.micro_batch}, ${d.accelerator} at MFU ${f(d.mfu, ".0%")}<br>` +
      `bytes sent per rank per layer (fwd+bwd): ${f(r.comm_bytes / 1e6, ",.1f")} MB<br>` +
      `compute per layer: ${f(r.compute_s * 1e3, ",.3f")} ms; communication: ` +
      `${f(r.comm_s * 1e3, ",.3f")} ms<br>` +
      `<b>TP efficiency</b> (compute / total): ${f(r.efficiency, ".1%")}<br>` +
      `weights per rank per layer (bf16): ${f(r.weights_gb, ".3f")} GB<br>` +
      `activations per layer per rank: TP ${f(r.act_tp_gb, ".3f")} GB, ` +
      `TP+SP ${f(r.act_tp_sp_gb, ".3f")} GB`;
  }

  SC.calculators.tensor_parallel = { compute, render };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
