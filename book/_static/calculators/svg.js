/* Small SVG helpers for the figures the static calculators redraw in the page (the pipeline
 * timeline, the memory bar): a simplified version of the matplotlib figure Python draws. */
(function (SC) {
  "use strict";

  const attrs = (a) => Object.entries(a).map(([k, v]) => ` ${k}="${SC.escape(String(v))}"`).join("");
  const tag = (name, a, body = "") => `<${name}${attrs(a)}>${body}</${name}>`;

  /* An <svg> of width × height user units that scales to its box. */
  function svg(width, height, body, label) {
    return tag("svg", { viewBox: `0 0 ${width} ${height}`, width, role: "img", "aria-label": label,
      class: "sc-svg", "font-family": "DejaVu Sans, sans-serif", "font-size": 11 }, body);
  }
  const rect = (x, y, w, h, fill, extra = {}) =>
    tag("rect", { x: x.toFixed(2), y: y.toFixed(2), width: Math.max(0, w).toFixed(2),
      height: Math.max(0, h).toFixed(2), fill, ...extra });
  const text = (x, y, s, extra = {}) => tag("text", { x: x.toFixed(2), y: y.toFixed(2), ...extra }, SC.escape(s));
  const line = (x1, y1, x2, y2, stroke, extra = {}) =>
    tag("line", { x1: x1.toFixed(2), y1: y1.toFixed(2), x2: x2.toFixed(2), y2: y2.toFixed(2), stroke, ...extra });

  /* About n round tick values from 0 to max (1, 2 or 5 times a power of ten apart). */
  function ticks(max, n = 5) {
    const raw = max / n, p = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw);
    const out = [];
    for (let t = 0; t <= max * (1 + 1e-9); t += step) out.push(Number(t.toPrecision(12)));
    return out;
  }

  SC.svg = { svg, rect, text, line, ticks };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
