"""Argument checks shared by labutils modules: a bad value raises an error naming the argument
and the allowed range (house rule 6), worded the same way everywhere.

* :func:`integer` and :func:`positive_int` for counts (ranks, layers, tokens per sequence);
* :func:`number`, :func:`positive`, :func:`non_negative` and :func:`fraction` for real-valued
  quantities (seconds, FLOP/s, bytes, utilisations). NaN and ±inf are always refused;
* :func:`str_list` for collections of texts, :func:`numpy_generator` for random generators.

Bools are refused everywhere: ``True`` is an int in Python, but never a sensible count.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def integer(name: str, value: object, low: int = 1, high: int | None = None, *,
            integral_float: bool = False) -> int:
    """``value`` as an int if it is an integer in [low, high] (``high=None``: no upper bound).

    ``integral_float=True`` also accepts floats with no fractional part, such as ``7e9`` for a
    parameter count (2.5 ranks is still refused). NumPy integers are accepted.
    """
    if isinstance(value, float) and integral_float and math.isfinite(value) and value.is_integer():
        value = int(value)
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int {allowed}, got {type(value).__name__} ({value!r})")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {allowed}, got {value}")
    return int(value)


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 1 (bools are rejected); else TypeError/ValueError naming it."""
    return integer(name, value, 1)


def number(name: str, value: object, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the range given.

    ``low``/``high`` are inclusive bounds (None: unbounded); ``low_open=True`` makes the lower
    bound exclusive (``low=0, low_open=True`` means "> 0").
    """
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"<= {high:g}"
    allowed = "a finite number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + (
        f" {hi}" if hi else "")
    if low is not None and high is not None and not low_open:
        allowed = f"a finite number in [{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__} ({value!r})")
    x = float(value)
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and x > high
    if not math.isfinite(x) or too_low or too_high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return x


def positive(name: str, value: object) -> float:
    """``value`` as a float if it is finite and > 0."""
    return number(name, value, low=0.0, low_open=True)


def non_negative(name: str, value: object) -> float:
    """``value`` as a float if it is finite and >= 0."""
    return number(name, value, low=0.0)


def fraction(name: str, value: object) -> float:
    """``value`` as a float if it lies in [0, 1] (a share, such as a serial fraction or an MFU)."""
    return number(name, value, low=0.0, high=1.0)


def str_list(name: str, value: object) -> list[str]:
    """``value`` as a list if it is a list or tuple of str (a bare str is refused: it is one
    text, not a collection of texts)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}")
    return list(value)


def numpy_generator(name: str, value: object) -> np.random.Generator:
    """``value`` if it is a numpy random Generator (``np.random.default_rng(seed)``)."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(f"{name} must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {type(value).__name__}")
    return value
