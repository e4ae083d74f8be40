/* Python's number formatting and HTML escaping, for the static book's calculators.
 *
 * The calculators' text must read exactly as labutils' Python renders it, so numbers are
 * formatted with Python's format-spec mini-language (the subset the calculators use):
 * [,][.precision][f|e|g|%] and "," alone for an integer. Python rounds half to even on exact
 * decimal ties (format(0.125, ".2f") == "0.12"); JavaScript's toFixed rounds them up, so the
 * digits are taken from toFixed/toExponential with 25 spare digits and rounded here.
 * tests/test_static_calculators.py checks format() against Python's format() on a grid.
 */
(function (SC) {
  "use strict";

  const SPARE = 25; // extra digits: a double is never this close to a tie without being one

  /* Round a digit string (no point) so that `keep` digits remain; returns [digits, carried]. */
  function roundDigits(digits, keep) {
    const head = digits.slice(0, keep);
    const tail = digits.slice(keep);
    let up = false;
    if (tail.length && tail[0] > "5") up = true;
    else if (tail.length && tail[0] === "5") {
      const exactTie = /^50*$/.test(tail);
      up = !exactTie || (head.length > 0 && Number(head[head.length - 1]) % 2 === 1);
    }
    if (!up) return [head, false];
    const out = head.split("");
    let i = out.length - 1;
    while (i >= 0 && out[i] === "9") { out[i] = "0"; i -= 1; }
    if (i >= 0) { out[i] = String(Number(out[i]) + 1); return [out.join(""), false]; }
    return ["1" + out.join(""), true];
  }

  /* |x| with `decimals` digits after the point, Python's rounding: [intPart, fracPart]. */
  function fixedParts(ax, decimals) {
    if (ax >= 1e21) { // toFixed switches to exponent notation here; such doubles are integers
      return [BigInt(ax).toString(), "0".repeat(decimals)];
    }
    const spare = Math.min(100, decimals + SPARE);
    const [ip, fp = ""] = ax.toFixed(spare).split(".");
    const [rounded] = roundDigits(ip + fp, ip.length + decimals);
    const intLen = rounded.length - decimals;
    return [rounded.slice(0, intLen).replace(/^0+(?=\d)/, "") || "0", rounded.slice(intLen)];
  }

  /* |x| to `sig` significant digits: [digit string of length sig, decimal exponent]. */
  function sigDigits(ax, sig) {
    if (ax === 0) return ["0".repeat(sig), 0];
    const s = ax.toExponential(Math.min(100, sig - 1 + SPARE));
    const [mant, exp] = s.split("e");
    const [digits, carried] = roundDigits(mant.replace(".", ""), sig);
    const e = Number(exp) + (carried ? 1 : 0);
    return [carried ? digits.slice(0, sig) : digits, e];
  }

  function group(intPart) {
    return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function expSuffix(e) {
    return "e" + (e < 0 ? "-" : "+") + String(Math.abs(e)).padStart(2, "0");
  }

  function stripZeros(s) {
    return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }

  /* format(x, spec) as Python's format(x, spec) for spec in [,][.N][f|e|g|%] or ",". */
  function format(x, spec) {
    const m = /^(,?)(?:\.(\d+))?([efg%]?)$/.exec(spec);
    if (!m) throw new Error(`format spec ${JSON.stringify(spec)} is not supported`);
    const comma = m[1] === ",";
    let type = m[3];
    if (typeof x !== "number") throw new TypeError(`format: ${x} is not a number`);
    if (type === "" && m[2] === undefined) { // "," or "": an int, as Python's int formatting
      if (!Number.isInteger(x)) throw new Error(`format(${x}, ${JSON.stringify(spec)}): not an int`);
      const s = Math.abs(x) >= 1e21 ? BigInt(Math.abs(x)).toString() : String(Math.abs(x));
      return (x < 0 ? "-" : "") + (comma ? group(s) : s);
    }
    if (type === "") type = "g";
    const precision = m[2] === undefined ? 6 : Number(m[2]);
    const neg = x < 0 || Object.is(x, -0);
    if (Number.isNaN(x)) return "nan";
    if (!Number.isFinite(x)) return (neg ? "-" : "") + "inf";
    let ax = Math.abs(x);
    let suffix = "";
    if (type === "%") { ax = Math.abs(x * 100); type = "f"; suffix = "%"; }
    if (!Number.isFinite(ax)) return (neg ? "-" : "") + "inf" + suffix;
    let body;
    if (type === "f") {
      const [ip, fp] = fixedParts(ax, precision);
      body = (comma ? group(ip) : ip) + (precision > 0 ? "." + fp : "");
    } else if (type === "e") {
      const [digits, e] = sigDigits(ax, precision + 1);
      body = digits[0] + (precision > 0 ? "." + digits.slice(1) : "") + expSuffix(e);
    } else { // g: Python's rule, then trailing zeros removed
      const p = precision === 0 ? 1 : precision;
      const [digits, e] = sigDigits(ax, p);
      if (ax !== 0 && (e < -4 || e >= p)) {
        body = stripZeros(digits[0] + "." + digits.slice(1)) + expSuffix(e);
      } else if (ax === 0) {
        body = "0";
      } else {
        let s;
        if (e >= 0) s = digits.slice(0, e + 1) + "." + digits.slice(e + 1);
        else s = "0." + "0".repeat(-e - 1) + digits;
        s = stripZeros(s);
        if (comma) {
          const [ip, fp] = s.split(".");
          s = group(ip) + (fp === undefined ? "" : "." + fp);
        }
        body = s;
      }
    }
    return (neg ? "-" : "") + body + suffix;
  }

  /* Python's html.escape(s) (quote=True). */
  function escape(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
  }

  /* Python's str() of a float: repr, the shortest string that round-trips. */
  function pyFloatStr(x) {
    if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
    const s = String(x);
    if (!s.includes("e")) return s;
    const [mant, exp] = s.split("e");
    return mant + expSuffix(Number(exp));
  }

  /* A rejected setting: shown in red, as labutils' ValueError is in the live calculator. */
  class InputError extends Error {}

  SC.format = format;
  SC.escape = escape;
  SC.pyFloatStr = pyFloatStr;
  SC.InputError = InputError;
  SC.ERROR_STYLE = "color:#b00";
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
