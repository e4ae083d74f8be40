/* The static book's calculators: turn labutils' hidden markup into controls that recompute.
 *
 * In a kernel, labutils.widgets.calculator.calculator(..., static="memory") displays, before the
 * widget, a hidden <div class="static-calculator"> holding JSON: the controls (read from the
 * ipywidgets), the constants (read from labutils) and the first setting's figure. Here, with no
 * kernel, each such div becomes a form; every change calls StaticCalc.calculators[name].render
 * (the formulas, one file per calculator, tested against labutils to 1e-9 and character for
 * character by tests/test_static_calculators.py) and the frozen widget snapshot beside it is
 * hidden. Calculators that need Python (training, torch, a search) carry a hidden "snapshot"
 * notice instead, which is revealed above the snapshot.
 *
 * jupyter-book loads every .js under book/_static/ on every page in no fixed order, so the
 * files only register into window.StaticCalc; this one does its work on DOMContentLoaded.
 */
(function (SC) {
  "use strict";

  /* The HTML calculator `name` shows at `values`: labutils' red message for a rejected one. */
  function renderText(name, values, constants, errorStyle) {
    try {
      return SC.calculators[name].render(values, constants);
    } catch (err) {
      if (err instanceof SC.InputError) {
        return `<span style='${errorStyle}'>${SC.escape(err.message)}</span>`;
      }
      throw err;
    }
  }
  SC.renderText = renderText;

  if (typeof document === "undefined") return; // Node (the tests) needs only renderText

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  };

  /* The readout of a slider, as ipywidgets formats it (readout_format "d", ".2f", ".3g"...). */
  function readout(value, fmt) {
    if (!fmt || fmt === "d") return String(value);
    try { return SC.format(value, fmt); } catch (err) { return String(value); }
  }

  /* One control: {node, get(), set(value), setOptions(options, value)}; onChange(name). */
  function makeControl(spec, onChange) {
    const id = `sc-${spec.name}-${Math.random().toString(36).slice(2, 8)}`;
    const row = el("div", { class: "sc-control", "data-name": spec.name });
    row.append(el("label", { for: id }, spec.label));
    const out = el("output", { for: id });
    let input, options = spec.options || [];
    const changed = () => onChange(spec.name);
    const indexOf = (value) => options.findIndex(([, v]) => v === value);
    const api = { node: row, spec };
    if (spec.kind === "checkbox") {
      input = el("input", { id, type: "checkbox" });
      input.checked = Boolean(spec.value);
      api.get = () => input.checked;
      api.set = (v) => { input.checked = Boolean(v); };
      input.addEventListener("change", changed);
    } else if (spec.kind === "select") {
      input = el("select", { id });
      const fill = (opts, value) => {
        options = opts;
        input.replaceChildren(...opts.map(([label], i) => el("option", { value: String(i) }, String(label))));
        input.value = String(Math.max(0, indexOf(value)));
      };
      fill(options, spec.value);
      api.get = () => options[Number(input.value)][1];
      api.set = (v) => { input.value = String(Math.max(0, indexOf(v))); };
      api.setOptions = fill;
      input.addEventListener("change", changed);
    } else if (spec.kind === "choice-slider") {
      input = el("input", { id, type: "range", min: "0", max: String(options.length - 1), step: "1" });
      input.value = String(Math.max(0, indexOf(spec.value)));
      const show = () => { out.textContent = String(options[Number(input.value)][0]); };
      api.get = () => options[Number(input.value)][1];
      api.set = (v) => { input.value = String(Math.max(0, indexOf(v))); show(); };
      input.addEventListener("input", () => { show(); changed(); });
      show();
    } else if (spec.kind === "slider" || spec.kind === "log-slider") {
      // The value is the widget's own until the slider moves (the range input would round a
      // value off its grid, such as 7 on a log slider of step 0.01, as ipywidgets does not).
      const log = spec.kind === "log-slider";
      const position = (v) => String(log ? Math.log(v) / Math.log(spec.base) : v);
      let value = spec.value;
      input = el("input", { id, type: "range", min: String(spec.min), max: String(spec.max),
        step: String(spec.step) });
      input.value = position(value);
      const show = () => { out.textContent = readout(value, spec.readout_format); };
      api.get = () => value;
      api.set = (v) => { value = v; input.value = position(v); show(); };
      input.addEventListener("input", () => {
        value = log ? spec.base ** Number(input.value) : Number(input.value);
        show();
        changed();
      });
      show();
    } else if (spec.kind === "number") {
      input = el("input", { id, type: "number", step: spec.integer ? "1" : "any" });
      input.value = String(spec.value);
      api.get = () => (input.value.trim() === "" ? NaN : Number(input.value));
      api.set = (v) => { input.value = String(v); };
      input.addEventListener("change", changed);
    } else {
      throw new Error(`static calculator: unknown control kind ${spec.kind}`);
    }
    row.append(input, out);
    return api;
  }

  /* Build one calculator from its hidden markup and hide the widget snapshot beside it. */
  function mount(host) {
    const data = JSON.parse(host.querySelector('script[type="application/json"]').textContent);
    const name = data.calculator;
    const calc = SC.calculators[name];
    const box = el("div", { class: "sc-calculator" });
    const note = el("p", { class: "sc-note" });
    note.innerHTML = "Live in this page: the book's JavaScript, tested against labutils, " +
      `recomputes the text as you change a control (no Python runs here). To run the Python, ${data.live_hint}.`;
    box.append(note);
    const form = el("div", { class: "sc-controls" });
    const text = el("div", { class: "sc-text", "aria-live": "polite" });
    const controls = {};
    const first = {};
    let figure = null;
    const ui = {
      values: () => Object.fromEntries(Object.entries(controls).map(([k, c]) => [k, c.get()])),
      setValue: (k, v) => controls[k].set(v),
      setOptions: (k, options, v) => controls[k].setOptions(options, v),
    };
    const update = (changed) => {
      if (changed && calc.follow) calc.follow(changed, ui, data.constants);
      const values = ui.values();
      const html = renderText(name, values, data.constants, data.error_style);
      text.innerHTML = html;
      host.dataset.values = JSON.stringify(values);
      host.staticHtml = html;
      if (figure) showFigure(values);
    };
    for (const spec of data.controls) {
      controls[spec.name] = makeControl(spec, update);
      first[spec.name] = spec.value;
      form.append(controls[spec.name].node);
    }
    box.append(form, text);
    // The figure: Python's PNG for the first setting; for another setting, the calculator's own
    // SVG where it has one (draw), else the PNG dimmed; none for a rejected setting.
    let showFigure = null;
    if (data.figure_png) {
      figure = el("figure", { class: "sc-figure" });
      const img = el("img", { src: `data:image/png;base64,${data.figure_png}`,
        alt: `figure of the ${name} calculator for its first setting` });
      const drawn = el("div", { class: "sc-drawn" });
      const caption = el("figcaption");
      figure.append(img, drawn, caption);
      box.append(figure);
      const firstSetting = JSON.stringify(first);
      showFigure = (values) => {
        const isFirst = JSON.stringify(values) === firstSetting;
        let svg = null;
        if (!isFirst && calc.draw) {
          try { svg = calc.draw(values, data.constants); } catch (err) {
            if (!(err instanceof SC.InputError)) throw err;
            svg = "";
          }
        }
        figure.hidden = svg === "";
        img.hidden = svg !== null;
        drawn.innerHTML = svg || "";
        figure.classList.toggle("sc-stale", !isFirst && svg === null);
        caption.innerHTML = isFirst ? `Drawn by Python for this (the first) setting.`
          : svg ? "Redrawn in this page for the current setting (a simplified version of " +
            `Python's figure; to see that one, ${data.live_hint}).`
          : "Drawn by Python for the first setting, so dimmed: this page recomputes the text, " +
            `not this figure. To redraw it, ${data.live_hint}.`;
      };
    }
    host.append(box); // the JSON stays: the browser test reads the constants from it
    const cell = host.closest(".cell_output");
    if (cell) cell.classList.add("sc-live"); // calculators.css hides the frozen widget in it
    host.hidden = false;
    update(null);
  }

  function mountAll() {
    document.querySelectorAll("div.static-calculator").forEach(mount);
    document.querySelectorAll("div.static-calculator-snapshot").forEach((note) => {
      note.hidden = false;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
