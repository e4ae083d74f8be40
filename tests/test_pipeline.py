"""Pipeline parallelism (Chapter 7): schedules as data, the simulator, the cost model, and a real
pipeline of the shared GPT on gloo ranks checked against one process."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import pytest

from labutils.activations import activation_bytes_per_layer, reference_gpt_activation_bytes_per_layer
from labutils.model import tiny_config
from labutils.parallel import launch
from labutils.parallel.pipeline import cost, schedule, stage, workers

TOL = 1e-5  # fp32: parallel == single process within 1e-5
GRID = [(p, m) for p in (1, 2, 3, 4, 8) for m in (1, 2, 3, 4, 8, 16)]
TIMES = [(1.0, 2.0), (1.0, 1.0), (0.7, 3.1)]


# ----------------------------------------------------------------------------------------------
# Schedules as data
# ----------------------------------------------------------------------------------------------


def test_1f1b_stage_orders_match_narayanan_fig4():
    sched = schedule.make_schedule("1f1b", 4, 8)
    # Stage 0 warms up with p - 1 = 3 forwards, the last stage alternates from the start.
    assert [str(o) for o in sched.ops[0]] == ["F0", "F1", "F2", "F3", "B0", "F4", "B1", "F5",
                                              "B2", "F6", "B3", "F7", "B4", "B5", "B6", "B7"]
    assert [str(o) for o in sched.ops[3]][:4] == ["F0", "B0", "F1", "B1"]
    assert [str(o) for o in schedule.make_schedule("afab", 2, 3).ops[1]] == ["F0", "F1", "F2", "B0", "B1", "B2"]


def test_interleaved_goes_through_chunks_in_groups_of_p():
    ops = schedule.make_schedule("interleaved", 2, 4, 2).ops[0]
    fwd = [str(o) for o in ops if o.kind == "F"]
    assert fwd == ["F0", "F1", "F0.1", "F1.1", "F2", "F3", "F2.1", "F3.1"]
    bwd = [str(o) for o in ops if o.kind == "B"]
    assert bwd[:4] == ["B0.1", "B1.1", "B0", "B1"]  # backward visits the chunks in reverse


@pytest.mark.parametrize("name", ["afab", "1f1b"])
@pytest.mark.parametrize("p,m", GRID)
def test_schedules_are_valid(name, p, m):
    schedule.check_valid(schedule.make_schedule(name, p, m))


@pytest.mark.parametrize("p,m,v", [(2, 2, 2), (2, 4, 3), (4, 4, 2), (4, 8, 2), (4, 12, 3), (3, 6, 4), (8, 16, 2)])
def test_interleaved_schedules_are_valid(p, m, v):
    schedule.check_valid(schedule.make_schedule("interleaved", p, m, v))


def test_invalid_schedules_are_caught():
    good = schedule.make_schedule("1f1b", 3, 4)
    twice = list(good.ops)
    twice[1] = good.ops[1] + (good.ops[1][0],)
    with pytest.raises(ValueError, match="exactly once"):
        schedule.check_valid(schedule.Schedule("bad", 3, 4, 1, tuple(twice)))
    early = list(good.ops)
    early[0] = (schedule.Op("B", 0),) + tuple(o for o in good.ops[0] if o != schedule.Op("B", 0))
    with pytest.raises(ValueError, match="before its forward"):
        schedule.check_valid(schedule.Schedule("bad", 3, 4, 1, tuple(early)))
    # Stage 1 wants B0 before F1, but stage 2 (AFAB) sends no B0 before it has F1: deadlock.
    mixed = (good.ops[0], (schedule.Op("F", 0), schedule.Op("B", 0), schedule.Op("F", 1), schedule.Op("B", 1),
                           schedule.Op("F", 2), schedule.Op("B", 2), schedule.Op("F", 3), schedule.Op("B", 3)),
             schedule.make_schedule("afab", 3, 4).ops[2])
    with pytest.raises(ValueError, match="deadlock"):
        schedule.simulate(schedule.Schedule("bad", 3, 4, 1, mixed), 1.0, 2.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="schedule"):
        schedule.make_schedule("zero-bubble", 2, 2)
    with pytest.raises(ValueError, match="m must be 1"):
        schedule.make_schedule("naive", 2, 4)
    with pytest.raises(ValueError, match="multiple of p"):
        schedule.make_schedule("interleaved", 4, 6, 2)
    with pytest.raises(ValueError, match="v must be"):
        schedule.make_schedule("1f1b", 4, 8, 2)
    with pytest.raises(ValueError, match="v must be >= 2"):
        schedule.make_schedule("interleaved", 4, 8, 1)
    with pytest.raises(TypeError, match="p must be"):
        schedule.make_schedule("afab", 2.0, 4)
    with pytest.raises(ValueError, match="t_f"):
        schedule.simulate(schedule.make_schedule("afab", 2, 2), 0.0, 1.0)
    with pytest.raises(ValueError, match="definition"):
        cost.bubble_fraction(4, 8, definition="share")
    with pytest.raises(ValueError, match="p must be <= n_layers"):
        stage.stage_layers(2, 3)


# ----------------------------------------------------------------------------------------------
# The simulator against the closed forms
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["afab", "1f1b"])
@pytest.mark.parametrize("p,m", GRID)
@pytest.mark.parametrize("t_f,t_b", TIMES)
def test_bubble_of_afab_and_1f1b(name, p, m, t_f, t_b):
    r = schedule.simulate(schedule.make_schedule(name, p, m), t_f, t_b)
    # Narayanan et al. 2021, Sec. 2.2.1: bubble / ideal = (p-1)/m; GPipe: idle share (p-1)/(m+p-1)
    assert r.bubble_ratio == pytest.approx((p - 1) / m, abs=1e-12)
    assert r.bubble_ratio == pytest.approx(cost.bubble_fraction(p, m), abs=1e-12)
    assert r.idle_fraction == pytest.approx((p - 1) / (m + p - 1), abs=1e-12)
    assert r.idle_fraction == pytest.approx(cost.bubble_fraction(p, m, definition="idle"), abs=1e-12)
    assert r.makespan == pytest.approx(cost.pipeline_step_time_s(p, m, t_f, t_b), rel=1e-12)


@pytest.mark.parametrize("p,m,v", [(2, 2, 2), (2, 4, 3), (4, 4, 2), (4, 8, 2), (4, 12, 3), (3, 6, 4), (8, 16, 2)])
@pytest.mark.parametrize("t_f,t_b", TIMES)
def test_bubble_of_interleaved(p, m, v, t_f, t_b):
    r = schedule.simulate(schedule.make_schedule("interleaved", p, m, v), t_f, t_b)
    # Narayanan et al. 2021, Sec. 2.2.2: the bubble shrinks by v, to (p-1)/(v·m)
    assert r.bubble_ratio == pytest.approx((p - 1) / (v * m), abs=1e-12)
    assert r.idle_fraction == pytest.approx(cost.bubble_fraction(p, m, v, "idle"), abs=1e-12)
    assert r.makespan == pytest.approx(cost.pipeline_step_time_s(p, m, t_f, t_b, v), rel=1e-12)


def test_naive_pipeline_uses_one_stage_at_a_time():
    for p in (1, 2, 4, 8):
        r = schedule.simulate(schedule.make_schedule("naive", p), 1.0, 2.0)
        assert r.makespan == pytest.approx(p * 3.0)  # every stage waits for every other
        assert r.idle_fraction == pytest.approx((p - 1) / p)
        busy = sorted((e.start_s, e.end_s) for e in r.events)
        assert all(b[0] >= a[1] - 1e-12 for a, b in zip(busy, busy[1:]))  # never two at once


def test_events_respect_every_dependency_with_p2p_time():
    for sched in (schedule.make_schedule("1f1b", 4, 6), schedule.make_schedule("interleaved", 3, 6, 2)):
        r = schedule.simulate(sched, 1.0, 2.0, t_p2p=0.25)
        end = {(e.rank, e.name): e.end_s for e in r.events}
        for e in r.events:
            op = next(o for o in sched.ops[e.rank] if str(o) == e.name)
            dep = schedule.dependency(op, e.rank, sched.p, sched.v)
            if dep is not None:
                lag = 0.25 if dep[0] != e.rank else 0.0
                assert e.start_s >= end[(dep[0], str(dep[1]))] + lag - 1e-12
        per_rank = {}
        for e in r.events:  # a stage runs one op at a time, in schedule order
            per_rank.setdefault(e.rank, []).append(e)
        for rank, evs in per_rank.items():
            assert [e.name for e in evs] == [str(o) for o in sched.ops[rank]]
            assert all(b.start_s >= a.end_s - 1e-12 for a, b in zip(evs, evs[1:]))


def test_p2p_time_formula_exact_for_afab_lower_bound_otherwise():
    for p, m in itertools.product((2, 3, 4), (1, 4, 8)):
        for name in ("afab", "1f1b"):
            r = schedule.simulate(schedule.make_schedule(name, p, m), 1.0, 2.0, t_p2p=0.3)
            formula = cost.pipeline_step_time_s(p, m, 1.0, 2.0, t_p2p_s=0.3)
            if name == "afab":
                assert r.makespan == pytest.approx(formula)
            else:
                assert r.makespan >= formula - 1e-9
    # 1F1B exposes transfers in its steady state: slower than AFAB with the same t_p2p
    one = schedule.simulate(schedule.make_schedule("1f1b", 4, 8), 1.0, 2.0, 0.3).makespan
    all_ = schedule.simulate(schedule.make_schedule("afab", 4, 8), 1.0, 2.0, 0.3).makespan
    assert one > all_


def test_p2p_messages_grow_v_fold_with_interleaving():
    for p, m, v in [(2, 4, 1), (4, 8, 1), (4, 8, 2), (4, 8, 4), (3, 6, 3)]:
        sched = schedule.make_schedule("interleaved" if v > 1 else "1f1b", p, m, v)
        assert schedule.simulate(sched, 1.0, 2.0).p2p_messages == cost.p2p_messages(p, m, v)
    assert cost.p2p_messages(8, 32, 4) / cost.p2p_messages(8, 32, 1) == pytest.approx((4 * 8 - 1) / (8 - 1))
    assert cost.p2p_bytes_per_message(2048, 1, 12288) == 2048 * 12288 * 2


def test_property_more_microbatches_smaller_bubble_more_stages_larger():
    for name in ("afab", "1f1b"):
        for p in (2, 4, 8):
            ratios = [schedule.simulate(schedule.make_schedule(name, p, m), 1.0, 2.0).bubble_ratio for m in (1, 2, 4, 8, 16, 32)]
            assert all(a > b for a, b in zip(ratios, ratios[1:]))
        for m in (4, 16):
            ratios = [schedule.simulate(schedule.make_schedule(name, p, m), 1.0, 2.0).bubble_ratio for p in (1, 2, 4, 8)]
            assert ratios[0] == 0 and all(a < b for a, b in zip(ratios, ratios[1:]))
    # more chunks, smaller bubble; the same total compute
    base = schedule.simulate(schedule.make_schedule("1f1b", 4, 8), 1.0, 2.0)
    inter = [schedule.simulate(schedule.make_schedule("interleaved", 4, 8, v), 1.0, 2.0) for v in (2, 4)]
    assert base.makespan > inter[0].makespan > inter[1].makespan
    assert {r.compute_per_stage for r in (base, *inter)} == {8 * 3.0}
    # GPipe's rule of thumb (Sec. 2.3): at m >= 4p the idle share stays under 20 %
    assert all(cost.bubble_fraction(p, 4 * p, definition="idle") < 0.2 for p in range(2, 65))


# ----------------------------------------------------------------------------------------------
# Memory: activations in flight
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p,m", GRID)
def test_peak_in_flight_afab_m_1f1b_p_minus_stage(p, m):
    assert schedule.peak_in_flight(schedule.make_schedule("afab", p, m)) == [m] * p
    assert schedule.peak_in_flight(schedule.make_schedule("1f1b", p, m)) == [min(p - s, m) for s in range(p)]


@pytest.mark.parametrize("p,m,v", [(2, 4, 2), (4, 8, 2), (4, 12, 3), (3, 6, 4), (8, 16, 2)])
def test_interleaved_peak_in_flight(p, m, v):
    peaks = schedule.peak_in_flight(schedule.make_schedule("interleaved", p, m, v))
    assert peaks == [2 * (p - s - 1) + (v - 1) * p + 1 for s in range(p)]
    # in whole-stage micro-batches the first stage holds p + (p-1)/v: a little more than 1F1B's p
    assert peaks[0] / v == pytest.approx(p + (p - 1) / v)


def test_stage_activation_bytes_reuses_korthikanti():
    per_layer = activation_bytes_per_layer(2048, 1, 12288, 96)
    assert cost.stage_activation_bytes(8, 12, 2048, 1, 12288, 96) == 8 * 12 * per_layer
    full = activation_bytes_per_layer(2048, 1, 12288, 96, tp=8, recompute="full")
    assert cost.stage_activation_bytes(3.5, 4, 2048, 1, 12288, 96, tp=8, recompute="full") == 3.5 * 4 * full


def test_plot_schedule_draws_one_box_per_op():
    r = schedule.simulate(schedule.make_schedule("1f1b", 3, 4), 1.0, 2.0)
    ax = schedule.plot_schedule(r.events, title="1F1B")
    assert len(ax.collections) == len(r.events) == 3 * 2 * 4
    plt.close(ax.figure)


# ----------------------------------------------------------------------------------------------
# Real pipeline on gloo ranks
# ----------------------------------------------------------------------------------------------


CFG = tiny_config(n_layers=6)  # 6 blocks: 3 + 3, 2 + 2 + 2, 2 + 2 + 1 + 1
M, MICRO = 4, 2


def test_stage_layers_are_contiguous_and_balanced():
    assert [list(r) for r in stage.stage_layers(6, 4)] == [[0, 1], [2, 3], [4], [5]]
    for n, p in itertools.product(range(1, 9), range(1, 9)):
        if p <= n:
            layers = [i for r in stage.stage_layers(n, p) for i in r]
            assert layers == list(range(n))
            sizes = [len(r) for r in stage.stage_layers(n, p)]
            assert max(sizes) - min(sizes) <= 1


@pytest.fixture(scope="module")
def reference():
    return workers.reference_step(CFG, M, MICRO)


@pytest.fixture(scope="module", params=[(2, "afab"), (2, "1f1b"), (3, "1f1b"), (4, "afab"), (4, "1f1b")],
                ids=lambda x: f"{x[0]}ranks-{x[1]}")
def run(request):
    p, name = request.param
    return p, name, launch(workers.pipeline_worker, p, CFG, name, M, MICRO, 0, timeout_s=60)


@pytest.mark.slow
def test_pipeline_matches_single_process(run, reference):
    p, _, out = run
    loss, grads = reference
    assert abs(out[-1]["loss"] - loss) < TOL
    assert all(o["loss"] is None for o in out[:-1])
    assert workers.max_grad_error(out, grads) < TOL
    # each stage owns only its own blocks (the tied embedding lives on the first and last)
    for o, layers in zip(out, stage.stage_layers(CFG.n_layers, p)):
        blocks = {int(n.split(".")[1]) for n in o["grads"] if n.startswith("blocks.")}
        assert blocks == set(layers)


@pytest.mark.slow
def test_pipeline_runs_the_schedule_and_holds_the_predicted_activations(run):
    p, name, out = run
    sched = schedule.make_schedule(name, p, M)
    # what each rank really ran, in the order of its own clock (perf_counter is system-wide)
    ran = [sorted(o["executed"], key=lambda e: e[3]) for o in out]
    assert all(e[0] == s for s, evs in enumerate(ran) for e in evs)
    assert [[(e[1], e[2]) for e in evs] for evs in ran] == [
        [(op.kind, op.microbatch) for op in ops] for ops in sched.ops]
    # and the cross-stage data dependencies held in time, whatever the schedule said:
    # F_k on stage s starts after F_k ended on s-1; B_k on s starts after B_k ended on s+1
    when = {(e[0], e[1], e[2]): (e[3], e[4]) for evs in ran for e in evs}
    assert len(when) == 2 * p * M  # every (stage, pass, micro-batch) exactly once
    for s, kind, k in when:
        before = (s - 1, "F", k) if kind == "F" else (s + 1, "B", k)
        if before in when:
            assert when[(s, kind, k)][0] >= when[before][1], (s, kind, k)
    assert [o["peak_in_flight"] for o in out] == schedule.peak_in_flight(sched)
    assert sum(o["sends"] for o in out) == cost.p2p_messages(p, M)
    # middle stages keep exactly the bytes chapter 4's formula predicts for their blocks
    per_layer = reference_gpt_activation_bytes_per_layer(CFG, MICRO)
    for o, layers in list(zip(out, stage.stage_layers(CFG.n_layers, p)))[1:-1]:
        assert o["saved_bytes"] == len(layers) * per_layer


def test_wrong_gradients_are_detected(reference):
    _, grads = reference
    fake = [{"grads": {n: g.clone() for n, g in grads.items()}}]
    assert workers.max_grad_error(fake, grads) == 0
    fake[0]["grads"]["blocks.0.mlp.fc_in.weight"] += 1e-4
    assert workers.max_grad_error(fake, grads) > TOL
    with pytest.raises(ValueError, match="cover"):
        workers.max_grad_error([{"grads": {}}], grads)


def test_worker_rejects_unknown_schedule():
    with pytest.raises(Exception, match="schedule must be one of"):
        launch(workers.pipeline_worker, 2, CFG, "interleaved", M, MICRO, 0, timeout_s=30)


def test_explorer_renders_and_uses_the_simulator():
    from labutils.widgets.pipeline import explain, pipeline_explorer

    panel = pipeline_explorer()
    assert "bubble" in panel.children[-2].value
    r, html = explain("1f1b", 4, 8, 2)
    assert r.bubble_ratio == pytest.approx(cost.bubble_fraction(4, 8)) and "37.5%" in html
    r, _ = explain("naive", 4, 8, 2)  # the whole batch as one: (p-1)/p idle
    assert r.idle_fraction == pytest.approx(3 / 4) and r.compute_per_stage == pytest.approx(24)
    r, _ = explain("interleaved", 4, 8, 2)
    assert r.bubble_ratio == pytest.approx(cost.bubble_fraction(4, 8, 2))
    plt.close("all")


@pytest.mark.slow
def test_pipeline_with_fewer_microbatches_than_stages_and_untied_llama_style_model():
    out = launch(workers.pipeline_worker, 3, CFG, "1f1b", 2, MICRO, 0, timeout_s=60)  # m < p
    loss, grads = workers.reference_step(CFG, 2, MICRO)
    assert abs(out[-1]["loss"] - loss) < TOL and workers.max_grad_error(out, grads) < TOL
    assert [o["peak_in_flight"] for o in out] == schedule.peak_in_flight(schedule.make_schedule("1f1b", 3, 2)) == [2, 2, 1]
    llama = tiny_config(n_layers=4, tied_embeddings=False, positional="rope", norm="rmsnorm",
                        mlp="swiglu", bias=False)
    out = launch(workers.pipeline_worker, 2, llama, "afab", M, MICRO, 0, timeout_s=60)
    loss, grads = workers.reference_step(llama, M, MICRO)
    assert abs(out[-1]["loss"] - loss) < TOL and workers.max_grad_error(out, grads) < TOL
    assert "head.weight" in out[1]["grads"] and "head.weight" not in out[0]["grads"]


# ----------------------------------------------------------------------------------------------
# Bad input, swept over every public cost-model function: an error naming the argument
# ----------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_NON_NEG_REAL = [-1, -1e-9, NAN, INF, -INF, True, "1", None]
BAD_POS_REAL = [0, 0.0, *BAD_NON_NEG_REAL]
_SCHED = schedule.make_schedule("1f1b", 2, 4)

PIPELINE_BAD_CASES = [
    (lambda x: schedule.make_schedule(x, 2, 4), "name", ["gpipe", None, 3]),
    (lambda x: schedule.make_schedule("1f1b", x, 4), "p", BAD_POS_INT),
    (lambda x: schedule.make_schedule("1f1b", 2, x), "m", BAD_POS_INT),
    (lambda x: schedule.make_schedule("interleaved", 2, 4, x), "v", BAD_POS_INT),
    (lambda x: cost.bubble_fraction(x, 4), "p", BAD_POS_INT),
    (lambda x: cost.bubble_fraction(2, x), "m", BAD_POS_INT),
    (lambda x: cost.bubble_fraction(2, 4, x), "v", BAD_POS_INT),
    (lambda x: cost.bubble_fraction(2, 4, 1, x), "definition", ["bubble", None]),
    (lambda x: cost.pipeline_step_time_s(x, 4, 1.0, 2.0), "p", BAD_POS_INT),
    (lambda x: cost.pipeline_step_time_s(2, x, 1.0, 2.0), "m", BAD_POS_INT),
    (lambda x: cost.pipeline_step_time_s(2, 4, x, 2.0), "t_f_s", BAD_NON_NEG_REAL),
    (lambda x: cost.pipeline_step_time_s(2, 4, 1.0, x), "t_b_s", BAD_NON_NEG_REAL),
    (lambda x: cost.pipeline_step_time_s(2, 4, 1.0, 2.0, x), "v", BAD_POS_INT),
    (lambda x: cost.pipeline_step_time_s(2, 4, 1.0, 2.0, 1, x), "t_p2p_s", BAD_NON_NEG_REAL),
    (lambda x: cost.p2p_messages(x, 4), "p", BAD_POS_INT),
    (lambda x: cost.p2p_messages(2, x), "m", BAD_POS_INT),
    (lambda x: cost.p2p_messages(2, 4, x), "v", BAD_POS_INT),
    (lambda x: cost.p2p_bytes_per_message(x, 1, 64), "seq_len", BAD_POS_INT),
    (lambda x: cost.p2p_bytes_per_message(128, x, 64), "micro_batch", BAD_POS_INT),
    (lambda x: cost.p2p_bytes_per_message(128, 1, x), "d_model", BAD_POS_INT),
    (lambda x: cost.p2p_bytes_per_message(128, 1, 64, x), "bytes_per_element", BAD_POS_INT),
    (lambda x: cost.stage_activation_bytes(x, 2, 128, 1, 64, 4), "peak_microbatches", BAD_NON_NEG_REAL),
    (lambda x: cost.stage_activation_bytes(2, x, 128, 1, 64, 4), "layers_per_stage", BAD_POS_INT),
    (lambda x: cost.stage_activation_bytes(2, 2, x, 1, 64, 4), "seq_len", BAD_POS_INT),
    (lambda x: cost.stage_activation_bytes(2, 2, 128, 1, 64, x), "n_heads", [*BAD_POS_INT, 3]),
    (lambda x: schedule.simulate(x, 1.0, 2.0), "sched", [None, "1f1b", 3]),
    (lambda x: schedule.simulate(_SCHED, x, 2.0), "t_f", BAD_POS_REAL),
    (lambda x: schedule.simulate(_SCHED, 1.0, x), "t_b", BAD_POS_REAL),
    (lambda x: schedule.simulate(_SCHED, 1.0, 2.0, x), "t_p2p", BAD_NON_NEG_REAL),
]


@pytest.mark.parametrize("call, name, bad_values", PIPELINE_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(PIPELINE_BAD_CASES)])
def test_every_cost_function_refuses_bad_input(call, name, bad_values):
    """Negative, zero, NaN, inf, bool, wrong types: ValueError or TypeError naming the argument.
    (Negative or NaN stage times, and NaN/inf/bool peaks, used to come back as numbers.)"""
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=name):
            call(bad)
