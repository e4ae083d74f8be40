"""Tests for labutils.parallel.data.zero: a real ZeRO-1/2/3 on gloo ranks, measured (Chapter 4)."""

from __future__ import annotations

import pytest
import torch

from labutils.memory import model_state_bytes, ring_comm_bytes, zero_comm_volume
from labutils.model import count_params, tiny_config
from labutils.parallel import harness, launch
from labutils.parallel.data import zero, zero_workers

RUN = zero_workers.ZeroRun(tiny_config(), steps=3, micro_batch=2, lr=1e-3)
PSI = count_params(RUN.cfg)
TOL = 1e-5  # fp32, DESIGN.md: parallel == single process within 1e-5


@pytest.fixture(scope="module", params=[2, 4], ids=["2ranks", "4ranks"])
def results(request):
    world = request.param
    out = launch(zero_workers.compare_stages, world, RUN, (0, 1, 2, 3), True, True, timeout_s=240)
    return world, out, zero_workers.train_reference(RUN, world)


def _global_losses(out, key, world):
    per_rank = [o[key]["losses"] if key in ("ddp", "fsdp2") else o["zero"][key]["losses"] for o in out]
    return [sum(r[i] for r in per_rank) / world for i in range(RUN.steps)]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_training_equals_ddp_and_single_process(results, stage):
    world, out, ref = results
    losses = _global_losses(out, stage, world)
    ddp = _global_losses(out, "ddp", world)
    assert max(abs(a - b) for a, b in zip(losses, ref["losses"])) < TOL
    assert max(abs(a - b) for a, b in zip(losses, ddp)) < TOL
    for o in out:  # every rank ends with the same, correct parameters
        assert (o["zero"][stage]["params"] - ref["params"]).abs().max().item() < TOL
        assert (o["zero"][stage]["params"] - o["ddp"]["params"]).abs().max().item() < TOL
    init = torch.cat([p.detach().reshape(-1) for p in harness.build_model(RUN.cfg, RUN.seed).parameters()])
    assert (ref["params"] - init).abs().max().item() > 100 * TOL  # the steps did move the weights


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_held_bytes_equal_prediction(results, stage):
    world, out, _ = results
    predicted = model_state_bytes(PSI, recipe="fp32_adam", zero_stage=stage, dp=world)
    for o in out:
        r = o["zero"][stage]
        assert r["padding_elements"] == 0
        assert r["held"] == predicted == r["predicted"]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_comm_bytes_equal_prediction(results, stage):
    world, out, _ = results
    volume = zero_comm_volume(PSI, stage)
    for o in out:
        for step in o["zero"][stage]["comm"]:
            assert step["volume_elements"] == volume == o["zero"][stage]["predicted_comm_elements"]
            assert step["volume_bytes"] == 4 * volume
            assert step["ring_bytes_sent"] == pytest.approx(ring_comm_bytes(volume, world, 4), rel=1e-12)
    by_op = out[0]["zero"][stage]["comm"][0]["by_op"]
    expected = {0: {"all_reduce": 2 * PSI}, 1: {"reduce_scatter": PSI, "all_gather": PSI},
                2: {"reduce_scatter": PSI, "all_gather": PSI},
                3: {"reduce_scatter": PSI, "all_gather": 2 * PSI}}[stage]
    assert by_op == expected


@pytest.mark.slow
def test_zero3_gathers_one_block_at_a_time(results):
    world, out, _ = results
    model = harness.build_model(RUN.cfg, RUN.seed)
    root = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("blocks."))
    block = sum(p.numel() for p in model.blocks[0].parameters())
    assert out[0]["zero"][3]["peak_gathered_bytes"] == 4 * (root + block)
    assert out[0]["zero"][3]["peak_gathered_bytes"] < 4 * PSI


@pytest.mark.slow
def test_fsdp2_holds_the_same_sharded_bytes(results):
    world, out, ref = results
    for o in out:
        assert o["fsdp2"]["held"] == o["zero"][3]["held"]
        assert o["fsdp2"]["held"] == model_state_bytes(PSI, recipe="fp32_adam", zero_stage=3, dp=world)
        assert (o["fsdp2"]["params"] - ref["params"]).abs().max().item() < TOL
        # FSDP2 does not re-gather the root module for backward: 3Ψ minus the root's Ψ.
        for step in o["fsdp2"]["comm"]:
            assert step["volume_elements"] == 3 * PSI - o["fsdp2"]["root_numel"]


@pytest.mark.slow
def test_padding_and_sgd():
    # d_model = 9: LayerNorm vectors of 9 elements do not divide by 2 ranks, so shards are padded.
    run = zero_workers.ZeroRun(tiny_config(d_model=9, n_heads=3), steps=2, micro_batch=2, lr=1e-2, optimizer="sgd")
    numels = [p.numel() for p in harness.build_model(run.cfg, run.seed).parameters()]
    out = launch(zero_workers.compare_stages, 2, run, (1, 3), False, False, timeout_s=120)
    ref = zero_workers.train_reference(run, 2)
    for stage in (1, 3):
        for o in out:
            r = o["zero"][stage]
            assert r["padding_elements"] > 0
            assert r["held"] == zero.predicted_held_bytes(numels, stage=stage, dp=2, optimizer="sgd")
            assert r["held"]["optimizer"] == 0
            assert all(c["volume_elements"] == zero.predicted_comm_elements(numels, stage=stage, dp=2)
                       for c in r["comm"])
            assert (r["params"] - ref["params"]).abs().max().item() < TOL


def test_zero3_shards_over_the_data_parallel_group_of_a_grid():
    """dp = 2 × tp = 2 on 4 ranks: two ZeRO-3 groups ([0, 2] and [1, 3]) train side by side,
    each sharding over its own group, and each matches one process on its batch."""
    from labutils.parallel.grid import GridShape

    shape = GridShape(dp=2, tp=2)
    out = launch(zero_workers.train_zero, 4, RUN, 3, shape, timeout_s=120)
    ref = zero_workers.train_reference(RUN, 2)
    for group in shape.groups("dp"):
        losses = [sum(out[r]["losses"][i] for r in group) / 2 for i in range(RUN.steps)]
        assert max(abs(a - b) for a, b in zip(losses, ref["losses"])) < TOL
        for r in group:
            assert (out[r]["params"] - ref["params"]).abs().max().item() < TOL
            numels = [p.numel() for p in harness.build_model(RUN.cfg, RUN.seed).parameters()]
            assert out[r]["held"] == zero.predicted_held_bytes(numels, stage=3, dp=2)
            # every collective ran over a group of 2, not the world of 4
            assert all(k.endswith("over 2") for c in out[r]["comm"] for k in c["by_group"])


def test_comm_log_restores_torch_distributed():
    import torch.distributed as dist

    from labutils.parallel import comm_log

    before = dist.all_reduce
    with comm_log.recording(wrap_torch=True):
        assert dist.all_reduce is not before
        with comm_log.recording(wrap_torch=True):  # nested: wrapped once, not twice
            assert getattr(dist.all_reduce, "_comm_log", False)
        assert dist.all_reduce is not before
        with pytest.raises(RuntimeError, match="does not count dist.broadcast"):
            dist.broadcast(torch.zeros(1), 0)
    assert dist.all_reduce is before


def test_bad_input():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="zero_stage"):
        zero.ZeroEngine(model, 4)
    with pytest.raises(TypeError, match="zero_stage"):
        zero.ZeroEngine(model, "1")
    with pytest.raises(ValueError, match="steps"):
        zero_workers.ZeroRun(tiny_config(), steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        zero_workers.ZeroRun(tiny_config(), optimizer="lion")
    with pytest.raises(ValueError, match="stage"):
        zero.predicted_held_bytes([4], stage=7, dp=2)
    with pytest.raises(RuntimeError, match="process group"):
        zero.ZeroEngine(model, 1)


@pytest.mark.slow
def test_stage_table_rows(results):
    world, out, ref = results
    rows = zero_workers.stage_table(out, ref)
    assert [r["stage"] for r in rows] == [0, 1, 2, 3]
    for r in rows:
        assert r["predicted held B"] == r["measured held B"]
        assert r["predicted comm (elements)"] == r["measured comm (elements)"]
        assert r["max |Δ loss|"] < TOL and r["max |Δ param|"] < TOL


# ----------------------------------------------------------------------------------------------
# Bad input for the predictions: an error naming the argument, never a number
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("predict", [zero.predicted_held_bytes, zero.predicted_comm_elements])
def test_predictions_refuse_bad_tensor_sizes(predict):
    """numels must be a list of element counts (ints >= 0); stage and dp were already checked.
    (A bare int, a string, or a bool/NaN count used to fail inside sum() or shard_numel with a
    message naming no argument.)"""
    for bad in [None, 12, "12", [-1], [2.5], [True], [float("nan")]]:
        with pytest.raises((ValueError, TypeError), match="numels"):
            predict(bad, stage=1, dp=2)
