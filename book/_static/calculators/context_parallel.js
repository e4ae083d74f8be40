/* Chapter 8's context-parallel explorer (labutils.widgets.context_parallel.report) in the static
 * book: labutils.parallel.context_parallel's ring-attention cost model (one ring step's
 * attention compute, 4·b·n²·h·f FLOPs, against one K/V block, 2·b·n·(h/a)·kv·e bytes), the
 * compute-bound tokens per rank, activation bytes per rank and K/V bytes sent. Peaks, memory and
 * links come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  const share = (name, x) => SC.number(name, x, { low: 0, high: 1, lowOpen: true });

  /* labutils.parallel.context_parallel._check_heads */
  function checkHeads(dModel, nHeads, nKvHeads) {
    const h = SC.integer("d_model", dModel, 1), a = SC.integer("n_heads", nHeads, 1);
    if (h % a) SC.fail(`n_heads=${a} must divide d_model=${h}`);
    const kv = SC.integer("n_kv_heads", nKvHeads, 1, a);
    if (a % kv) {
      SC.fail(`n_kv_heads=${kv} must divide n_heads=${a} (each K/V head serves ` +
        "n_heads/n_kv_heads query heads)");
    }
    return [h, a, kv];
  }

  /* labutils.parallel.context_parallel.kv_block_bytes (micro-batch 1, 2-byte elements) */
  function kvBlockBytes(tokens, dModel, nHeads, nKvHeads) {
    const n = SC.integer("tokens", tokens, 1);
    const [h, a, kv] = checkHeads(dModel, nHeads, nKvHeads);
    return 2 * 1 * n * SC.idiv(h, a) * kv * 2;
  }

  /* labutils.parallel.context_parallel.cp_activation_bytes_per_layer (micro-batch 1, bf16,
   * no dropout) */
  function cpActivationBytes(s, dModel, nHeads, cp, flash) {
    if (s % cp) SC.fail(`cp=${cp} must divide seq_len=${s}`);
    const kw = { bytesPerElement: 2, dropout: false };
    const act = (len, recompute) =>
      SC.activationBytesPerLayer(len, 1, dModel, nHeads, { ...kw, recompute });
    const linear = act(SC.idiv(s, cp), "selective");
    if (flash) return linear;
    return linear + SC.idiv(act(s, "none") - act(s, "selective"), cp);
  }

  function compute(v, c) {
    const { seq_len: s, cp, d_model: dModel, head_dim: headDim, mfu } = v;
    const nHeads = SC.idiv(dModel, headDim);
    const kv = Math.min(v.n_kv_heads, nHeads);
    const spec = c.accelerators[v.accelerator], lk = c.links[v.link];
    const peak = spec.peak_flops_by_dtype.bf16;
    const bw = lk.bandwidth_bytes_per_s;
    const n = SC.idiv(s, cp);
    const f = v.causal ? 0.5 : 1.0; // a causal zigzag step computes half its block
    // ring_step
    const flops = 4.0 * 1 * SC.integer("tokens_per_rank", n, 1) * n * SC.integer("d_model", dModel, 1) *
      share("causal_fraction", f);
    const blockBytes = kvBlockBytes(n, dModel, nHeads, kv);
    const computeS = flops / (share("mfu", mfu) * peak);
    const commS = lk.latency_s + blockBytes / bw;
    // compute_bound_tokens_per_rank
    const kC = 4.0 * 1 * dModel * f / (mfu * peak);
    const kM = 2.0 * 1 * dModel * (kv / nHeads) * 2 / bw;
    const bound = (kM + Math.sqrt(kM * kM + 4 * kC * lk.latency_s)) / (2 * kC);
    return {
      n_heads: nHeads, kv, tokens_per_rank: n, compute_s: computeS, comm_s: commS,
      hidden: commS <= computeS, bound,
      act_flash: cpActivationBytes(s, dModel, nHeads, cp, true),
      act_naive: cpActivationBytes(s, dModel, nHeads, cp, false),
      sent: (cp - 1) * kvBlockBytes(n, dModel, nHeads, kv),
      score_bytes: 1 * nHeads * s * s * 2, // labutils.attention.score_matrix_bytes, b·a·s²·e
    };
  }

  function render(v, c) {
    const f = SC.format;
    const r = compute(v, c);
    const spec = c.accelerators[v.accelerator], lk = c.links[v.link];
    const verdict = r.hidden ? "<b style='color:green'>hidden</b> (compute-bound)"
      : "<b style='color:firebrick'>exposed</b> (communication-bound)";
    return `<b>${f(v.seq_len, ",")} tokens on ${v.cp} rank(s)</b>: ${f(r.tokens_per_rank, ",")} ` +
      `tokens per rank; ${r.n_heads} heads of ${v.head_dim}, ${r.kv} K/V heads; ${spec.name}, ` +
      `${lk.name} (${f(lk.bandwidth_bytes_per_s / 1e9, ".0f")} GB/s)<br>` +
      "full score matrix, one layer (never materialised with tiling): " +
      `${f(r.score_bytes / 1e9, ",.1f")} GB<br>` +
      `activations per rank per layer: ${f(r.act_flash / 1e9, ",.2f")} GB with flash attention, ` +
      `${f(r.act_naive / 1e9, ",.1f")} GB keeping the scores ` +
      `(GPU memory ${f(spec.memory_bytes / 2 ** 30, ".0f")} GiB)<br>` +
      `K/V sent per rank per layer (forward): ${f(r.sent / 1e9, ",.3f")} GB in ${v.cp - 1} steps<br>` +
      `one ring step: compute ${f(r.compute_s * 1e3, ",.3f")} ms (MFU ${f(v.mfu, ".0%")}) vs ` +
      `transfer ${f(r.comm_s * 1e3, ",.3f")} ms → ${verdict}<br>` +
      `compute-bound above <b>${f(r.bound, ",.0f")} tokens per rank</b> ` +
      `(sequence ≥ ${f(r.bound * v.cp, ",.0f")} tokens at CP ${v.cp})`;
  }

  SC.calculators.context_parallel = { compute, render };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
