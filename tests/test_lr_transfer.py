"""labutils.lr_transfer: under SP the best LR moves with width, under muP it stays put, on the
shipped recording and on a live sweep small enough for a test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labutils import lr_transfer


@pytest.fixture(scope="module")
def recorded() -> lr_transfer.Transfer:
    return lr_transfer.load_transfer()


def test_recording_has_provenance_and_a_full_grid(recorded):
    prov = recorded.record["provenance"]
    assert prov["command"].startswith("python -m labutils.lr_transfer")
    for key in ("date_utc", "torch", "cpu", "wall_s"):
        assert prov[key]
    assert recorded.widths == (64, 128, 256, 512)
    assert recorded.lr_log2 == tuple(range(-12, -3))
    for p in lr_transfer.PARAMETRIZATIONS:
        assert recorded.loss[p].shape == (4, 9)
        # every run trained: the best loss at each width is well below ln(vocab) = 4.16 nats
        assert np.nanmin(recorded.loss[p], axis=1).max() < 0.5 * np.log(64)


def test_recorded_sp_optimum_moves_and_mup_optimum_stays(recorded):
    assert recorded.shift("SP") <= -2  # wider model, smaller best LR: at least 2 grid points
    assert abs(recorded.shift("muP")) <= 1
    assert max(recorded.best_lr_log2("muP")) - min(recorded.best_lr_log2("muP")) <= 1


def test_live_sweep_sp_moves_mup_stays():
    record = lr_transfer.run_sweep(lr_transfer.LIVE, progress=False)
    live = lr_transfer.as_transfer(json.loads(json.dumps(record)))  # round-trips through JSON
    assert live.shift("SP") <= -2, live.best_lr_log2("SP")
    assert abs(live.shift("muP")) <= 1, live.best_lr_log2("muP")


def test_as_transfer_checks_shapes():
    rec = {"config": {"widths": [32, 64], "lr_log2": [-3, -2, -1]},
           "loss": {"SP": [[1.0, 2.0, 3.0]]}}
    with pytest.raises(ValueError, match="shape"):
        lr_transfer.as_transfer(rec)
    rec["loss"]["SP"] = [[1.0, float("inf"), 3.0], [2.0, 1.0, float("nan")]]
    t = lr_transfer.as_transfer(rec)
    assert t.best_lr_log2("SP") == [-3, -2] and t.shift("SP") == 1


@pytest.mark.parametrize("kwargs, arg", [
    (dict(widths=(64,)), "widths"),
    (dict(widths=(128, 64)), "widths"),
    (dict(widths=(64, 66)), "n_heads"),
    (dict(lr_log2=(-3, -2)), "lr_log2"),
    (dict(lr_log2=(-2, -3, -4)), "lr_log2"),
    (dict(steps=0), "steps"),
])
def test_bad_config_names_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        lr_transfer.TransferConfig(**kwargs)


def test_unknown_parametrization():
    with pytest.raises(ValueError, match="name"):
        lr_transfer.LIVE.parametrization("NTK")
