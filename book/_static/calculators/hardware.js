/* Chapter 0's hardware explorer (labutils.widgets.hardware.datasheet_html) in the static book:
 * AcceleratorSpec.summary for the chosen part and dtype (peak, memory in GiB beside the
 * printed GB, bandwidth, the roofline's ridge point = peak / bandwidth, TDP). The datasheets
 * come from labutils.hardware in the page's JSON. */
(function (SC) {
  "use strict";

  /* labutils.hardware.AcceleratorSpec.summary: [quantity, value, python type] rows. */
  function compute(v, c) {
    const spec = c.accelerators[v.device];
    const dtype = v.dtype;
    if (!spec.dtypes.includes(dtype)) {
      SC.fail(`dtype must be one of ${spec.name}'s (${spec.dtypes.map((d) => `'${d}'`).join(", ")}), got '${dtype}'`);
    }
    const peak = spec.peak_flops_by_dtype[dtype];
    const pyType = (field) => (spec.int_fields.includes(field) ? "int" : "float");
    return [
      ["name", spec.name, "str"],
      [`${dtype} TFLOP/s (dense)`, peak / 1e12, "float"],
      ["memory GiB", spec.memory_bytes / c.GiB, "float"],
      ["datasheet GB", spec.datasheet_memory_gb, pyType("datasheet_memory_gb")],
      ["bandwidth GB/s", spec.mem_bandwidth_bytes_per_s / 1e9, "float"],
      ["ridge FLOP/byte", peak / spec.mem_bandwidth_bytes_per_s, "float"],
      ["TDP W", spec.tdp_watts, pyType("tdp_watts")],
    ];
  }

  /* labutils.widgets.calculator.html_table (floats as ",.1f") and the source line. */
  function render(v, c) {
    const esc = SC.escape;
    const cell = (value, type) => esc(type === "float" ? SC.format(value, ",.1f")
      : type === "int" ? String(value) : value);
    const head = "<tr><th>quantity</th><th>value</th></tr>";
    const body = compute(v, c).map(([k, value, type]) =>
      `<tr><td style='text-align:left'>${esc(k)}</td>` +
      `<td style='text-align:right'>${cell(value, type)}</td></tr>`).join("");
    return `<table>${head}${body}</table><p>Source: ${esc(c.accelerators[v.device].source)}</p>`;
  }

  /* The live explorer keeps the dtype list valid for the part: the same dtype if the part has
   * it, else bf16, else its last dtype. */
  function follow(name, ui, c) {
    if (name !== "device") return;
    const dtypes = c.accelerators[ui.values().device].dtypes;
    const current = ui.values().dtype;
    const keep = dtypes.includes(current) ? current : (dtypes.includes("bf16") ? "bf16" : dtypes[dtypes.length - 1]);
    ui.setOptions("dtype", dtypes.map((d) => [d, d]), keep);
  }

  /* The roofline (labutils.widgets.hardware.roofline_figure, simplified): attainable TFLOP/s
   * = min(peak, intensity × bandwidth) on log-log axes, intensity from 0.1 to 10^4 FLOP/byte. */
  function draw(v, c) {
    const g = SC.svg;
    const spec = c.accelerators[v.device];
    const rows = compute(v, c); // validates the dtype
    const peak = spec.peak_flops_by_dtype[v.dtype], bw = spec.mem_bandwidth_bytes_per_s;
    const ridge = peak / bw;
    const W = 620, H = 330, left = 64, right = 16, top = 28, bottom = 46;
    const [x0, x1] = [-1, 4];
    const attainable = (i) => Math.min(peak, i * bw) / 1e12;
    const y0 = Math.floor(Math.log10(attainable(10 ** x0))), y1 = Math.ceil(Math.log10(peak / 1e12));
    const x = (i) => left + (Math.log10(i) - x0) / (x1 - x0) * (W - left - right);
    const y = (t) => H - bottom - (Math.log10(t) - y0) / Math.max(1, y1 - y0) * (H - top - bottom);
    let body = g.text((left + W - right) / 2, 17, `Roofline, ${v.dtype}`, { "text-anchor": "middle", "font-size": 12 });
    for (let k = x0; k <= x1; k += 1) {
      body += g.line(x(10 ** k), top, x(10 ** k), H - bottom, "#ccc");
      body += g.text(x(10 ** k), H - bottom + 15, `1e${k}`, { "text-anchor": "middle" });
    }
    for (let k = y0; k <= y1; k += 1) {
      body += g.line(left, y(10 ** k), W - right, y(10 ** k), "#ccc");
      body += g.text(left - 6, y(10 ** k) + 4, `1e${k}`, { "text-anchor": "end" });
    }
    const corners = [10 ** x0, ridge, 10 ** x1].filter((i) => i >= 10 ** x0 && i <= 10 ** x1);
    body += `<polyline class="sc-roof" fill="none" stroke="#1f77b4" stroke-width="2" points="${
      corners.map((i) => `${x(i).toFixed(2)},${y(attainable(i)).toFixed(2)}`).join(" ")}"></polyline>`;
    body += g.text(left + 8, top + 14, `${spec.name} (ridge ${SC.format(ridge, ".0f")} FLOP/B)`, { fill: "#1f77b4" });
    body += g.text((left + W - right) / 2, H - 12, "arithmetic intensity (FLOPs per byte of HBM traffic)", { "text-anchor": "middle" });
    const mid = (top + H - bottom) / 2;
    body += g.text(16, mid, `attainable ${v.dtype} TFLOP/s (dense)`, { transform: `rotate(-90 16 ${mid})`, "text-anchor": "middle" });
    return g.svg(W, H, body, `roofline of ${rows[0][1]} in ${v.dtype}`);
  }

  SC.calculators.hardware = { compute, render, follow, draw };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
