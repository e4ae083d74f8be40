"""labutils.validate: the shared argument checks."""

import numpy as np
import pytest

from labutils.validate import (fraction, integer, non_negative, number, numpy_generator, positive,
                               positive_int, str_list)


def test_positive_int_accepts_and_returns() -> None:
    assert positive_int("n", 3) == 3


@pytest.mark.parametrize("bad, err", [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                      (True, TypeError), ("3", TypeError)])
def test_positive_int_rejects_naming_the_argument(bad: object, err: type) -> None:
    with pytest.raises(err, match=r"^batch must be an int >= 1"):
        positive_int("batch", bad)


def test_integer_ranges_and_integral_floats() -> None:
    assert integer("rank", 0, 0) == 0 and integer("n", np.int64(5)) == 5
    assert integer("n_params", 7e9, 1, integral_float=True) == 7_000_000_000
    with pytest.raises(ValueError, match=r"^order must be an int in \[1, 8\], got 9"):
        integer("order", 9, 1, 8)
    with pytest.raises(TypeError, match="^n_params must be an int"):
        integer("n_params", 2.5, 1, integral_float=True)
    with pytest.raises(TypeError, match="^n must be an int"):
        integer("n", 7e9)


@pytest.mark.parametrize("check, good, bad", [
    (positive, (1e-9, 3, np.float32(2.0)), (0, -1.0, float("nan"), float("inf"))),
    (non_negative, (0, 0.0, 5), (-1e-12, float("nan"), float("-inf"))),
    (fraction, (0, 0.5, 1), (-0.1, 1.0001, float("nan"))),
])
def test_real_checks(check, good, bad) -> None:
    for value in good:
        assert check("x", value) == float(value)
    for value in bad:
        with pytest.raises(ValueError, match="^x must be a finite number"):
            check("x", value)
    for value in (True, "1", None, 1j):
        with pytest.raises(TypeError, match="^x must be a finite number"):
            check("x", value)


def test_number_bounds_are_named() -> None:
    assert number("lr", 10, low=0, high=10, low_open=True) == 10.0
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0 and <= 10, got 0"):
        number("lr", 0, low=0, high=10, low_open=True)
    with pytest.raises(ValueError, match=r"^n must be a finite number >= 1, got 0.5"):
        number("n", 0.5, low=1)


def test_str_list_names_the_argument() -> None:
    assert str_list("texts", ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="texts must be a list of str, got str"):
        str_list("texts", "one text")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        str_list("texts", ["a", 3])


def test_numpy_generator_names_the_argument() -> None:
    rng = np.random.default_rng(0)
    assert numpy_generator("rng", rng) is rng
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        numpy_generator("rng", 0)
