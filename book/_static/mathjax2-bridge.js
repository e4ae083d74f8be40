/* MathJax 2 -> 3 bridge for the widget manager.
 *
 * @jupyter-widgets/html-manager 1.0.x typesets widget labels with MathJax 2's API,
 * `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, whenever `window.MathJax` exists. The book
 * loads MathJax 3, which has no `Hub`, so every widget page threw
 * "Cannot read properties of undefined (reading 'Queue')". This gives MathJax 3 a `Hub` whose
 * `Queue` typesets with MathJax 3's `typesetPromise`, queued behind `MathJax.startup.promise`.
 *
 * jupyter-book links this file into every page after Sphinx's inline `window.MathJax = {...}`
 * configuration and before the deferred tex-mml-chtml.js runs. Pages without math have no
 * `window.MathJax`; there the manager skips typesetting and this file does nothing.
 */
(function () {
  "use strict";
  if (typeof window.MathJax !== "object" || window.MathJax === null) return;

  const pending = [];

  function typeset(element) {
    const mj = window.MathJax;
    if (!mj || typeof mj.typesetPromise !== "function" || !mj.startup || !mj.startup.promise) {
      pending.push(element);
      return;
    }
    // The article sits inside a "mathjax_ignore" element (myst-nb), so mark the element the
    // manager asked for as one to process, as MathJax 2's explicit Typeset call would.
    if (element && element.classList) element.classList.add("mathjax_process");
    mj.startup.promise = mj.startup.promise
      .then(() => mj.typesetPromise(element ? [element] : undefined))
      .catch((err) => console.warn("MathJax could not typeset a widget:", err));
  }

  const hub = {
    Queue(...jobs) {
      for (const job of jobs) {
        if (Array.isArray(job) && job[0] === "Typeset") typeset(job[2]);
        else if (typeof job === "function") job();
      }
    },
  };

  // MathJax 3 replaces the configuration object with itself when it loads
  // (`window.MathJax = {version, config: <old object>}`): keep a Hub on whatever is assigned.
  let current = window.MathJax;
  current.Hub = hub;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get() { return current; },
    set(value) {
      current = value;
      if (value && typeof value === "object" && !value.Hub) value.Hub = hub;
    },
  });

  // Typeset what was queued before MathJax finished starting up.
  const startup = (current.startup = current.startup || {});
  const ready = startup.ready;
  startup.ready = function () {
    if (typeof ready === "function") ready.call(this);
    else window.MathJax.startup.defaultReady();
    pending.splice(0).forEach(typeset);
  };
})();
