/* labutils.activations.activation_bytes_per_layer (Korthikanti et al. 2022, Eq. 1, 2, 4 and
 * Table 2; K/V of n_kv_heads heads with grouped-query attention), shared by the memory, tensor-parallel and context-parallel calculators. */
(function (SC) {
  "use strict";

  const RECOMPUTE = ["none", "selective", "full"];

  function activationBytesPerLayer(seqLen, microBatch, dModel, nHeads,
    { tp = 1, sequenceParallel = false, recompute = "none", bytesPerElement = 2,
      dropout = true, nKvHeads = null } = {}) {
    const s = SC.integer("seq_len", seqLen, 1);
    const b = SC.integer("micro_batch", microBatch, 1);
    const h = SC.integer("d_model", dModel, 1);
    const a = SC.integer("n_heads", nHeads, 1);
    const t = SC.integer("tp", tp, 1);
    const e = SC.integer("bytes_per_element", bytesPerElement, 1);
    if (!RECOMPUTE.includes(recompute)) {
      SC.fail(`recompute must be one of ('none', 'selective', 'full'), got '${recompute}'`);
    }
    if (h % a) SC.fail(`d_model=${h} must be a multiple of n_heads=${a}`);
    if (a % t || h % t) SC.fail(`tp=${t} must divide n_heads=${a} and d_model=${h}`);
    const kv = nKvHeads === null ? a : SC.integer("n_kv_heads", nKvHeads, 1, a);
    if (a % kv) SC.fail(`n_kv_heads=${kv} must divide n_heads=${a}`);
    if (kv % t && t % kv) SC.fail(`tp=${t} must divide n_kv_heads=${kv} or be a multiple of it`);
    if (sequenceParallel && s % t) {
      SC.fail(`with sequence_parallel, tp=${t} must divide seq_len=${s}`);
    }
    const sbh = s * b * h;
    const drop = dropout ? 1 : 0;
    if (recompute === "full") return sequenceParallel ? SC.idiv(e * sbh, t) : e * sbh;
    const replicated = 4 * e * sbh + 2 * drop * sbh; // LN inputs, QKV and MLP inputs, 2 masks
    // Q, projection input, GELU in and out (10e·sbh); K and V of max(kv, t) heads (grouped-query
    // attention: a rank holds kv/t K/V heads, or one replicated head)
    const split = 10 * e * sbh + 2 * e * s * b * SC.idiv(h, a) * Math.max(kv, t);
    const core = recompute === "selective" ? 0 : a * s * s * b * (e + drop * (1 + e));
    if (sequenceParallel) return SC.idiv(replicated + split + core, t); // Eq. 4
    return replicated + SC.idiv(split, t) + SC.idiv(core, t); // Eq. 2
  }

  SC.activationBytesPerLayer = activationBytesPerLayer;
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
