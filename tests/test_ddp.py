"""The teaching DDP (naive, bucketed, overlapped, accumulate with no_sync) and torch's DDP give
the single-process full-batch gradients; events and collective counts show what each does."""

from __future__ import annotations

import pytest
import torch

from labutils.model import tiny_config
from labutils.parallel import RankError, launch
from labutils.parallel import harness, timeline
from labutils.parallel.data import ddp, ddp_workers

CFG = tiny_config()
GLOBAL_BATCH = 8
TOL = 1e-5


@pytest.fixture(scope="module")
def reference():
    return harness.reference_gradients(CFG, GLOBAL_BATCH, seed=0)


@pytest.mark.parametrize("world_size", [2, 4])
@pytest.mark.parametrize("variant", ["naive", "bucketed", "overlapped", "accumulate"])
def test_every_variant_matches_single_process_gradients(variant, world_size, reference):
    # 4 KiB buckets: the tiny GPT's 114 KB of gradients span many buckets
    results = launch(ddp_workers.ddp_gradients_worker, world_size, variant, CFG, GLOBAL_BATCH, 0, 4096, 2,
                     False, timeout_s=60)
    assert len(results) == world_size
    for r in results:
        assert harness.max_grad_difference(reference, r["grads"]) <= TOL


def test_collective_counts_show_bucketing_and_no_sync():
    model = harness.build_model(CFG)
    n_params = len(list(model.parameters()))
    n_buckets = ddp.n_buckets(model, 4096)
    assert 1 < n_buckets < n_params
    calls = {v: launch(ddp_workers.ddp_gradients_worker, 2, v, CFG, GLOBAL_BATCH, 0, 4096, 4, False,
                       timeout_s=60)[0]["allreduce_calls"]
             for v in ("naive", "bucketed", "accumulate")}
    assert calls["naive"] == n_params
    assert calls["bucketed"] == n_buckets
    assert calls["accumulate"] == n_buckets  # 4 micro-batches, but only the last one syncs


def test_bucket_cap_and_order():
    model = harness.build_model(CFG)
    params = list(model.parameters())
    buckets = ddp.make_buckets(params, 4096)
    flat = [p for b in buckets for p in b]
    assert [id(p) for p in flat] == [id(p) for p in reversed(params)]  # backward order
    for b in buckets:
        nbytes = sum(p.numel() * 4 for p in b)
        assert nbytes <= 4096 or len(b) == 1
    assert len(ddp.make_buckets(params, 2**30)) == 1


def test_overlap_starts_all_reduces_inside_backward_and_naive_does_not():
    for variant, overlapped in (("naive", False), ("overlapped", True)):
        events = launch(ddp_workers.timeline_worker, 2, variant, CFG, GLOBAL_BATCH, 4096, 2, timeout_s=60)
        for rank_events in events:
            bwd = next(e for e in rank_events if e.name == "backward")
            comms = [e for e in rank_events if e.kind == "comm"]
            assert comms, variant
            started_inside = [e.start_s < bwd.end_s for e in comms]
            assert any(started_inside) is overlapped
        summary = timeline.overlap_summary(events)
        assert set(summary) == {0, 1}
        if not overlapped:
            assert all(s["overlap_s"] == 0 for s in summary.values())


def test_overlap_summary_on_synthetic_events():
    ev = [harness.Event(0, "compute", "backward", 0.0, 1.0), harness.Event(0, "comm", "b0", 0.5, 1.5),
          harness.Event(0, "comm", "b1", 1.2, 2.0)]
    s = timeline.overlap_summary(ev)[0]
    assert s["compute_s"] == pytest.approx(1.0)
    assert s["comm_s"] == pytest.approx(1.5)  # union of [0.5, 2.0]
    assert s["overlap_s"] == pytest.approx(0.5)
    assert s["span_s"] == pytest.approx(2.0)


@pytest.mark.slow
def test_torch_ddp_gives_the_same_gradients(reference):
    # torch DDP imports torch._dynamo in each rank: seconds of start-up, hence one launch.
    results = launch(ddp_workers.ddp_gradients_worker, 2, "torch", CFG, GLOBAL_BATCH, 0, 4096, 1, False,
                     timeout_s=120)
    for r in results:
        assert harness.max_grad_difference(reference, r["grads"]) <= TOL


def test_step_time_worker_measures_positive_times():
    for p in (1, 2):
        times = launch(ddp_workers.ddp_step_time_worker, p, "overlapped", CFG, 2, 1, 0, timeout_s=60)
        assert len(times) == p and all(0 < t < 30 for t in times)


def test_a_bad_split_on_every_rank_is_an_error_not_a_hang():
    with pytest.raises(RankError, match="divisible"):
        launch(ddp_workers.ddp_gradients_worker, 3, "naive", CFG, GLOBAL_BATCH, timeout_s=30)


def test_a_rank_failing_mid_backward_is_an_error_not_a_hang():
    with pytest.raises(RankError, match="deliberate failure in backward") as info:
        launch(ddp_workers.fail_in_backward_worker, 2, CFG, 1, timeout_s=30)
    assert info.value.rank == 1


def test_reference_is_deterministic_and_model_seeded():
    a = harness.reference_gradients(CFG, 4, seed=1)
    b = harness.reference_gradients(CFG, 4, seed=1)
    assert harness.max_grad_difference(a, b) == 0.0
    assert not torch.equal(harness.build_model(CFG, 0).tok_emb.weight, harness.build_model(CFG, 1).tok_emb.weight)


def test_bad_input():
    model = harness.build_model(CFG)
    with pytest.raises(ValueError, match="variant"):
        ddp.wrap("zero3", model)
    with pytest.raises(RuntimeError, match="process group"):
        ddp.wrap("naive", model)
    with pytest.raises(TypeError, match="Module"):
        ddp.NaiveDDP("not a model")
    with pytest.raises(ValueError, match="bucket_bytes"):
        ddp.make_buckets(list(model.parameters()), 0)
    with pytest.raises(ValueError, match="batch"):
        harness.make_batch(CFG, 0)
    with pytest.raises(TypeError, match="TransformerConfig"):
        harness.build_model({"d_model": 32})
    with pytest.raises(ValueError, match="different parameters"):
        harness.max_grad_difference({"a": torch.zeros(1)}, {"b": torch.zeros(1)})
    with pytest.raises(ValueError, match="accum_steps"):
        ddp_workers._check_split(8, 2, 0)


def test_measure_scaling_rows():
    out = ddp_workers.measure_scaling(CFG, [1, 2], weak_batch=2, strong_batch=4, steps=1)
    assert [r["per_rank_batch"] for r in out["strong"]] == [4, 2]
    assert [r["per_rank_batch"] for r in out["weak"]] == [2, 2]
    for mode in ("weak", "strong"):
        assert out[mode][0]["efficiency"] == pytest.approx(1.0)
        for r in out[mode]:
            assert r["tokens_per_s"] == pytest.approx(
                r["world_size"] * r["per_rank_batch"] * CFG.seq_len / r["step_s"])
    with pytest.raises(ValueError, match="divisible"):
        ddp_workers.measure_scaling(CFG, [3], strong_batch=4)


def test_variants_worker_runs_several_variants_in_one_launch(reference):
    res = launch(ddp_workers.ddp_variants_worker, 2, ["bucketed", "accumulate"], CFG, GLOBAL_BATCH, 0, 4096,
                 2, timeout_s=60)
    for r in res:
        assert set(r) == {"bucketed", "accumulate"}
        for v in r.values():
            assert harness.max_grad_difference(reference, v["grads"]) <= TOL
