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
      model.n_heads, { tp, sequenceParallel: v.sequence_parallel, recompute: v.recompute });
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

  SC.calculators.memory = { compute, render };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
