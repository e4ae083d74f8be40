/* Chapter 1's FLOPs calculator (labutils.widgets.flops.calculator_summary) in the static book.
 *
 * Exact parameter count (labutils.model.param_breakdown) and matmul FLOPs per token
 * (labutils.flops: 6N + 12·L·d·T for training, PaLM App. B; Kaplan et al. 2020's count with no
 * head and the causal half), C = FLOPs/token × D and C ≈ 6·N·D. FLOPs per multiply-add and the
 * training multiplier come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  /* labutils.model.TransformerConfig (multi-head attention, biases, LayerNorm, learned
   * positions: the calculator's fixed choices) and its default MLP width. */
  function config(v) {
    for (const f of ["vocab_size", "seq_len", "d_model", "n_layers", "n_heads"]) SC.integer(f, v[f], 1);
    if (v.d_model % v.n_heads !== 0) {
      SC.fail(`d_model (${v.d_model}) must be divisible by n_heads (${v.n_heads})`);
    }
    const ffn = v.mlp === "gelu" ? 4 * v.d_model : 256 * Math.ceil((8 * v.d_model / 3) / 256);
    return { V: v.vocab_size, T: v.seq_len, d: v.d_model, L: v.n_layers, ffn, mlp: v.mlp,
      tied: v.tied_embeddings, kvDim: v.n_heads * SC.idiv(v.d_model, v.n_heads) };
  }

  /* labutils.model.param_breakdown */
  function paramBreakdown(cfg) {
    const { d, ffn: f, L, kvDim: kv } = cfg;
    const embedding = cfg.V * d + cfg.T * d; // token and learned position tables
    const attentionPerLayer = 2 * d * d + 2 * d * kv + (2 * d + 2 * kv);
    const mlpPerLayer = cfg.mlp === "gelu" ? 2 * d * f + (f + d) : 3 * d * f + (2 * f + d);
    const parts = { embedding, attention: L * attentionPerLayer, mlp: L * mlpPerLayer,
      norm: (2 * L + 1) * 2 * d, head: cfg.tied ? 0 : cfg.V * d };
    parts.total = parts.embedding + parts.attention + parts.mlp + parts.norm + parts.head;
    return parts;
  }

  function compute(v, c) {
    const cfg = config(v);
    const mac = c.FLOPS_PER_MAC, train = c.TRAINING_MULTIPLIER;
    const matmulParams = cfg.L * (2 * cfg.d * cfg.d + 2 * cfg.d * cfg.kvDim +
      (cfg.mlp === "swiglu" ? 3 : 2) * cfg.d * cfg.ffn) + cfg.V * cfg.d;
    const attention = (training, causal) => {
      let fwd = 4.0 * cfg.L * cfg.T * cfg.d;
      if (causal) fwd /= 2;
      return training ? train * fwd : fwd;
    };
    const perToken = (training, withAttention) =>
      (training ? train : 1) * mac * matmulParams + (withAttention ? attention(training, false) : 0.0);
    const kaplanFwd = mac * (matmulParams - cfg.V * cfg.d) + attention(false, true);
    const parts = paramBreakdown(cfg);
    const nTokens = SC.positive("n_tokens", 10.0 ** v.log10_tokens);
    return {
      parts, ffn: cfg.ffn, n_tokens: nTokens,
      dense: perToken(true, false), training: perToken(true, true), kaplan: train * kaplanFwd,
      attention_share: attention(true, false) / (perToken(true, false) + attention(true, false)),
      forward: perToken(false, true), compute_exact: perToken(true, true) * nTokens,
      compute_6nd: 6.0 * parts.total * nTokens,
    };
  }

  /* labutils.flops.format_flops: three significant digits and an SI prefix. */
  function formatFlops(x, c) {
    SC.nonNegative("flops", x);
    for (const [prefix, scale] of c.SI_PREFIXES) {
      if (x >= scale) return `${SC.format(x / scale, ".3g")} ${prefix}FLOP`;
    }
    return `${SC.format(x, ".3g")} FLOP`;
  }

  function render(v, c) {
    const f = SC.format;
    const r = compute(v, c);
    const p = r.parts, n = p.total, D = f(r.n_tokens, ".3g");
    const rows = [
      ["parameters N (total)", `${f(n, ",")} (${f(n / 1e9, ".3g")}B)`],
      ["  embedding / attention / MLP", `${f(p.embedding, ",")} / ${f(p.attention, ",")} / ${f(p.mlp, ",")}`],
      ["  norms / untied head", `${f(p.norm, ",")} / ${f(p.head, ",")}`],
      ["MLP hidden width", f(r.ffn, ",")],
      ["training FLOPs/token, without attention (6N over matmul weights)", f(r.dense, ".4g")],
      ["training FLOPs/token, with attention (+12·L·d·T, PaLM)", f(r.training, ".4g")],
      ["training FLOPs/token, Kaplan (no head, causal half)", f(r.kaplan, ".4g")],
      ["attention share of training FLOPs", `${f(100 * r.attention_share, ".1f")} %`],
      ["forward FLOPs/token (inference)", f(r.forward, ".4g")],
      [`C for D = ${D} tokens, exact per-token`, formatFlops(r.compute_exact, c)],
      [`C ≈ 6·N·D (lecture), D = ${D}`, formatFlops(r.compute_6nd, c)],
    ];
    return "<table>" + rows.map(([k, val]) => "<tr><td style='text-align:left'>" + k +
      "</td><td style='text-align:right'><code>" + val + "</code></td></tr>").join("") + "</table>";
  }

  SC.calculators.flops = { compute, render };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
