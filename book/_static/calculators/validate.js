/* labutils.validate's argument checks, with the same messages, for the static calculators.
 *
 * A setting labutils rejects (say, a TP degree that does not divide the heads) must read the
 * same in the book as in the live calculator, so these throw StaticCalc.InputError with the
 * text of labutils.validate's ValueError (integer, number, positive, non_negative, fraction).
 */
(function (SC) {
  "use strict";

  function fail(message) {
    throw new SC.InputError(message);
  }

  /* labutils.validate.integer: an int in [low, high] (high null: no upper bound). */
  function integer(name, value, low = 1, high = null) {
    const allowed = high === null ? `>= ${low}` : `in [${low}, ${high}]`;
    if (!Number.isInteger(value)) fail(`${name} must be an int ${allowed}, got ${value}`);
    if (value < low || (high !== null && value > high)) {
      fail(`${name} must be an int ${allowed}, got ${value}`);
    }
    return value;
  }

  /* labutils.validate.number: a finite number in the range given (value is a Python float). */
  function number(name, value, { low = null, high = null, lowOpen = false } = {}) {
    const g = (x) => SC.format(x, "g");
    const lo = low === null ? "" : `${lowOpen ? ">" : ">="} ${g(low)}`;
    const hi = high === null ? "" : `<= ${g(high)}`;
    let allowed = "a finite number" + (lo ? ` ${lo}` : "") + (lo && hi ? " and" : "") +
      (hi ? ` ${hi}` : "");
    if (low !== null && high !== null && !lowOpen) allowed = `a finite number in [${g(low)}, ${g(high)}]`;
    const tooLow = low !== null && (lowOpen ? value <= low : value < low);
    const tooHigh = high !== null && value > high;
    if (typeof value !== "number" || !Number.isFinite(value) || tooLow || tooHigh) {
      fail(`${name} must be ${allowed}, got ${SC.pyFloatStr(value)}`);
    }
    return value;
  }

  const positive = (name, value) => number(name, value, { low: 0, lowOpen: true });
  const nonNegative = (name, value) => number(name, value, { low: 0 });
  const fraction = (name, value) => number(name, value, { low: 0, high: 1 });

  /* Python's a // b for non-negative integers below 2**53. */
  function idiv(a, b) {
    let q = Math.floor(a / b);
    if (q * b > a) q -= 1;
    else if ((q + 1) * b <= a) q += 1;
    return q;
  }

  SC.fail = fail;
  SC.integer = integer;
  SC.number = number;
  SC.positive = positive;
  SC.nonNegative = nonNegative;
  SC.fraction = fraction;
  SC.idiv = idiv;
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
