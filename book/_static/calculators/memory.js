/* Chapter 4's memory calculator (labutils.widgets.memory.render) in the static book.
 *
 * labutils.memory.device_memory_breakdown for the calculator's settings: model states after
 * TP/PP splitting and ZeRO sharding, plus activations (Korthikanti et al. 2022) times the layers
 * the first pipeline rank holds under 1F1B with enough micro-batches (L). Constants (presets,
 * recipes, device memory) come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  /* labutils.memory.shard_numel: ceil(n / dp), the padded shard one of dp ranks holds. */
  function shardNumel(n, dp) {
    return SC.idiv(n + dp - 1, dp);
  }

  /* labutils.memory.model_state_bytes: bytes per DP rank under ZeRO stage 0-3. */
  function modelStateBytes(n, recipe, zeroStage, dp) {
    if (![0, 1, 2, 3].includes(zeroStage)) {
      SC.fail(`zero_stage must be one of (0, 1, 2, 3), got ${zeroStage}`);
    }
    const shard = shardNumel(n, dp);
    const params = recipe.param_bytes * (zeroStage >= 3 ? shard : n);
    const grads = recipe.grad_bytes * (zeroStage >= 2 ? shard : n);
    const optimizer = recipe.optimizer_bytes * (zeroStage >= 1 ? shard : n);
    return { params, grads, optimizer, total: params + grads + optimizer };
  }

  /* labutils.widgets.memory.breakdown_for (device_memory_breakdown, default schedule). */
  function compute(v, c) {
    const model = c.models[v.model];
    const L = model.n_layers;
    const pp = SC.integer("pp", v.pp, 1);
    const tp = SC.integer("tp", v.tp, 1);
    if (L % pp) SC.fail(`pp=${pp} must divide n_layers=${L}`);
    // peak_activation_layers: rank r holds pp - r micro-batches of L/pp layers; rank 0 is the max
    const layersHeld = pp * SC.idiv(L, pp) / 1;
    const states = modelStateBytes(shardNumel(model.n_params, tp * pp), c.recipes[v.recipe],
      v.zero_stage, SC.integer("dp", v.dp, 1));
    const perLayer = SC.activationBytesPerLayer(v.seq_len, v.micro_batch, model.d_model,
      model.n_heads, { tp, sequenceParallel: v.sequence_parallel, recompute: v.recompute,
        nKvHeads: model.n_kv_heads });
    const out = { params: states.params, grads: states.grads, optimizer: states.optimizer,
      activations: Math.round(layersHeld * perLayer) };
    out.total = out.params + out.grads + out.optimizer + out.activations;
    return out;
  }

  function render(v, c) {
    const f = SC.format;
    const model = c.models[v.model];
    const b = compute(v, c);
    const cap = c.accelerators[v.gpu].memory_bytes;
    const verdict = b.total <= cap ? "fits" : "does NOT fit";
    return `<b>${model.name || v.model}</b> (${f(model.n_params / 1e9, ".2f")}B parameters): ` +
      `${f(b.total / 1e9, ".1f")} GB per device, ${verdict} in ${f(cap / 1e9, ".1f")} GB = ` +
      `${f(cap / c.GiB, ".1f")} GiB (${f(100 * b.total / cap, ".0f")} %; GB = 1e9 bytes, ` +
      "GiB = 2**30).";
  }

  /* The stacked bar (labutils.widgets.memory.memory_figure, simplified): GB per device by part
   * in labutils' colours, against the device's usable memory. */
  function draw(v, c) {
    const g = SC.svg, f = SC.format;
    const b = compute(v, c);
    const cap = c.accelerators[v.gpu].memory_bytes / 1e9;
    const total = b.total / 1e9;
    const W = 560, H = 320, left = 56, top = 30, bottom = 36, barW = 150;
    const ymax = Math.max(total, cap) * 1.15;
    const y = (gb) => H - bottom - gb / ymax * (H - top - bottom);
    const verdict = b.total <= c.accelerators[v.gpu].memory_bytes ? "fits" : "does NOT fit";
    let body = g.text(left + barW / 2 + 20, 18, `${verdict} (${v.gpu})`, { "text-anchor": "middle", "font-size": 12 });
    body += g.line(left, top, left, H - bottom, "black") + g.line(left, H - bottom, left + barW + 40, H - bottom, "black");
    for (const t of g.ticks(ymax)) {
      body += g.line(left - 4, y(t), left, y(t), "black");
      body += g.text(left - 7, y(t) + 4, SC.format(t, "g"), { "text-anchor": "end" });
    }
    body += g.text(14, (top + H - bottom) / 2, "GB (1e9 bytes)", { transform: `rotate(-90 14 ${(top + H - bottom) / 2})`, "text-anchor": "middle" });
    let base = 0, legend = "", ly = top + 4;
    for (const part of c.parts) {
      const gb = b[part] / 1e9;
      body += g.rect(left + 20, y(base + gb), barW, y(base) - y(base + gb), c.colors[part]);
      base += gb;
    }
    body += g.line(left, y(cap), left + barW + 40, y(cap), "black", { "stroke-dasharray": "6 4" });
    const gib = c.accelerators[v.gpu].memory_bytes / c.GiB;
    legend += g.line(left + barW + 60, ly, left + barW + 80, ly, "black", { "stroke-dasharray": "6 4" });
    legend += g.text(left + barW + 86, ly + 4, `${v.gpu}: ${f(cap, ".1f")} GB = ${f(gib, ".1f")} GiB`);
    for (const part of c.parts) {
      ly += 18;
      legend += g.rect(left + barW + 60, ly - 6, 20, 10, c.colors[part]);
      legend += g.text(left + barW + 86, ly + 4, `${part} ${f(b[part] / 1e9, ".1f")} GB`);
    }
    body += g.text(left + 20 + barW / 2, H - bottom + 16, "per device", { "text-anchor": "middle" });
    return g.svg(W, H, body + legend, `memory per device: ${f(total, ".1f")} GB, ${verdict}`);
  }

  SC.calculators.memory = { compute, render, draw };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
