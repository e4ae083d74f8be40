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

  SC.calculators.hardware = { compute, render, follow };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
