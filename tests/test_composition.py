"""Parallelisms composed on one rank grid (labutils.parallel.composition): TP × DP and PP × DP on
4 gloo ranks, CP × DP on 4 and TP × PP × DP on 8, train the course GPT as one process does
(fp32, 1e-5)."""

from __future__ import annotations

import pytest
import torch

from labutils.model import tiny_config
from labutils.parallel import composition
from labutils.parallel.grid import GridShape
from labutils.parallel.launch import launch

TOL = 1e-5  # fp32: parallel == single process within 1e-5
CFG = tiny_config(seq_len=16, d_model=32, n_heads=4, n_layers=2)


def _train(shape: GridShape, micro_batches: int, **kw) -> tuple[composition.CompositionRun, list]:
    run = composition.CompositionRun(CFG, shape, global_batch=8, micro_batches=micro_batches,
                                     steps=3, **kw)
    return run, launch(composition.train_worker, shape.world_size, run, timeout_s=90,
                       threads_per_rank=1)


@pytest.fixture(scope="module")
def tp_dp():
    return _train(GridShape(dp=2, tp=2), micro_batches=1)


@pytest.fixture(scope="module")
def pp_dp():
    return _train(GridShape(dp=2, pp=2), micro_batches=2)


@pytest.fixture(scope="module")
def tp_pp_dp():
    return _train(GridShape(dp=2, pp=2, tp=2), micro_batches=2)


@pytest.fixture(scope="module")
def cp_dp():
    return _train(GridShape(dp=2, cp=2), micro_batches=1)


@pytest.mark.parametrize("name", ["tp_dp", "pp_dp", "tp_pp_dp", "cp_dp"])
def test_composition_matches_one_process(name, request):
    run, per_rank = request.getfixturevalue(name)
    out = composition.compare_with_reference(run, per_rank)
    assert len(out["losses"]) == run.steps
    assert out["loss"] <= TOL
    assert out["grads"] <= TOL
    # the loss moves (the steps really train), and the gradients are not trivially zero
    assert out["losses"][0] != out["losses"][-1]


def test_tp_ranks_hold_shards_and_dp_replicas_agree(tp_dp):
    run, per_rank = tp_dp
    w = "blocks.0.mlp.fc_in.weight"
    shapes = {tuple(r["grads"][0][w].shape) for r in per_rank}
    assert shapes == {(CFG.ffn_dim // 2, CFG.d_model)}  # a column shard on every rank
    for a, b in ((0, 2), (1, 3)):  # same tp rank, different dp rank: equal averaged gradients
        assert torch.equal(per_rank[a]["grads"][-1][w], per_rank[b]["grads"][-1][w])
    assert not torch.equal(per_rank[0]["grads"][-1][w], per_rank[1]["grads"][-1][w])


def test_pp_ranks_hold_only_their_stage(pp_dp):
    run, per_rank = pp_dp
    first, last = per_rank[0]["grads"][0], per_rank[1]["grads"][0]
    assert "blocks.0.attn.wq.weight" in first and "blocks.0.attn.wq.weight" not in last
    assert "blocks.1.attn.wq.weight" in last and "blocks.1.attn.wq.weight" not in first
    assert per_rank[0]["losses"] is None and per_rank[1]["losses"] is not None


def test_a_wrong_gradient_is_detected(tp_dp):
    run, per_rank = tp_dp
    per_rank[0]["grads"][1]["blocks.1.attn.wo.weight"] += 1e-3
    try:
        assert composition.compare_with_reference(run, per_rank)["grads"] >= 1e-3
    finally:
        per_rank[0]["grads"][1]["blocks.1.attn.wo.weight"] -= 1e-3


def test_bad_runs_raise_before_launching():
    with pytest.raises(ValueError, match="tp=3 must divide n_heads"):
        composition.CompositionRun(CFG, GridShape(tp=3))
    with pytest.raises(ValueError, match="pp=3 must be <= n_layers"):
        composition.CompositionRun(CFG, GridShape(pp=3))
    with pytest.raises(ValueError, match="global_batch=6 must be divisible"):
        composition.CompositionRun(CFG, GridShape(dp=2), global_batch=6, micro_batches=2)
    with pytest.raises(ValueError, match="cp=2 needs pp = tp = 1"):
        composition.CompositionRun(CFG, GridShape(cp=2, tp=2), micro_batches=1)
    with pytest.raises(ValueError, match="divisible by 2·cp"):
        composition.CompositionRun(tiny_config(seq_len=6), GridShape(cp=2), micro_batches=1)
    with pytest.raises(ValueError, match="schedule"):
        composition.CompositionRun(CFG, GridShape(), schedule="interleaved")
    with pytest.raises(TypeError, match="run must be"):
        composition.train("tp=2")


def test_cp_ranks_hold_sequence_shards_and_rotate_at_their_own_positions():
    """CP × DP on a RoPE model: each rank rotates Q and K at its own zigzag positions. (Rank
    0's positions reached every rank when the tables were buffers, which the data-parallel
    wrapper broadcasts: losses still agreed to 2e-5, gradients were 2e-4 off.)"""
    llama = tiny_config(seq_len=16, positional="rope", mlp="swiglu", d_ff=64, bias=False,
                        norm="rmsnorm")
    run = composition.CompositionRun(llama, GridShape(dp=2, cp=2), global_batch=8,
                                     micro_batches=1, steps=2)
    per_rank = launch(composition.train_worker, 4, run, timeout_s=90, threads_per_rank=1)
    out = composition.compare_with_reference(run, per_rank)
    assert out["loss"] <= TOL and out["grads"] <= TOL
