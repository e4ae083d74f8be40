/* Chapter 2's scaling-law explorer (labutils.widgets.scaling.explorer_summary) in the static book.
 *
 * Chinchilla's closed-form allocation (Hoffmann et al. 2022, Eq. 4):
 * G = (alpha·A / (beta·B))^(1/(alpha+beta)), N_opt = G·(C/6)^(beta/(alpha+beta)),
 * D_opt = C/(6·N_opt); Kaplan et al. 2020's N_opt = 1.3e9·(C / PF-day)^0.73 (Eq. 6.1). The laws
 * (including any the chapter fits) and the constants come from labutils in the page's JSON. */
(function (SC) {
  "use strict";

  function compute(v, c) {
    const law = c.laws[v.law];
    const C = 10.0 ** v.log10_c;
    if (!(Number.isFinite(C) && C > 0)) SC.fail(`C must be positive and finite (in (0, inf)), got ${C}`);
    const sum = law.alpha + law.beta;
    const G = (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / sum);
    const nOpt = G * (C / c.FLOPS_PER_PARAM_TOKEN) ** (law.beta / sum);
    const dOpt = C / (c.FLOPS_PER_PARAM_TOKEN * nOpt);
    const nKaplan = c.KAPLAN_N_OPT_COEFF * (C / c.PF_DAY_FLOPS) ** c.KAPLAN_N_OPT_EXPONENT;
    return {
      compute_flops: C, pf_days: C / c.PF_DAY_FLOPS, n_opt: nOpt, d_opt: dOpt,
      loss: law.E + law.A / nOpt ** law.alpha + law.B / dOpt ** law.beta,
      n_kaplan: nKaplan, d_kaplan: C / (c.FLOPS_PER_PARAM_TOKEN * nKaplan),
    };
  }

  function render(v, c) {
    const f = SC.format;
    const law = c.laws[v.law];
    const r = compute(v, c);
    const rows = [
      ["compute C", `${f(r.compute_flops, ".3g")} FLOPs = ${f(r.pf_days, ".3g")} PF-days`],
      ["N_opt (parameters)", f(r.n_opt, ".3g")],
      ["D_opt (tokens)", f(r.d_opt, ".3g")],
      ["tokens per parameter", f(r.d_opt / r.n_opt, ".1f")],
      ["predicted loss L(N_opt, D_opt)", `${f(r.loss, ".3f")} nats/token`],
      ["irreducible E", `${f(law.E, ".3f")} nats/token`],
      ["Kaplan 2020 allocation (N, D)", `${f(r.n_kaplan, ".3g")}, ${f(r.d_kaplan, ".3g")}`],
      ["law", law.source || "(custom)"],
    ];
    return "<table>" + rows.map(([k, val]) => "<tr><td style='text-align:left'>" + k +
      "</td><td style='text-align:right'><code>" + val + "</code></td></tr>").join("") + "</table>";
  }

  SC.calculators.scaling = { compute, render };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
