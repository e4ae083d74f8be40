"""The static book's calculators (book/_static/calculators/*.js) agree with labutils.

The JavaScript is written by hand, so it is tested against the Python it mirrors, in Node:

* ``format`` (Python's format-spec mini-language, round-half-even on exact ties) against
  Python's ``format`` on a grid of values and specs, character for character;
* every static calculator on a seeded grid of settings drawn from its real controls (captured
  from the markup :func:`labutils.widgets.calculator.calculator` displays): the numbers of the
  JavaScript ``compute`` against labutils' to a relative 1e-9, and the text ``render`` shows
  against what the live calculator shows (:func:`labutils.widgets.static_reference.reference_html`),
  exactly, including the red message of a setting labutils rejects.

Skipped with a message where ``node`` is not installed.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from labutils import hardware  # noqa: E402
from labutils.parallel.context import cost as context_cost  # noqa: E402
from labutils.parallel.tensor import cost as tensor_cost  # noqa: E402
from labutils.hardware import LINKS  # noqa: E402
from labutils.scaling import law as scaling_law  # noqa: E402
from labutils.widgets import calculator as calculator_module  # noqa: E402
from labutils.widgets import (  # noqa: E402
    context_parallel as cp_widget,
    flops as flops_widget,
    hardware as hardware_widget,
    memory as memory_widget,
    pipeline as pipeline_widget,
    scaling as scaling_widget,
    static,
    static_reference,
    tensor_parallel as tp_widget,
    throughput as throughput_widget,
)

REPO = Path(__file__).resolve().parents[1]
JS_DIR = REPO / "book" / "_static" / "calculators"
RTOL = 1e-9
CASES_PER_CALCULATOR = 120

#: Loads every calculator file into one Node context, reads cases (JSON) from stdin and prints,
#: per case, the formatted string, or the calculator's text and numbers (or its error).
HARNESS = r"""
const fs = require("fs"), vm = require("vm"), path = require("path");
const dir = process.argv[1];
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".js")).sort()) {
  vm.runInThisContext(fs.readFileSync(path.join(dir, f), "utf8"), { filename: f });
}
const SC = globalThis.StaticCalc;
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const out = cases.map((c) => {
  if (c.format !== undefined) {
    try { return SC.format(c.x, c.format); } catch (e) { return "ERROR " + e.message; }
  }
  if (c.activations !== undefined) {  // SC.activationBytesPerLayer(s, b, h, a, options)
    try { return SC.activationBytesPerLayer(...c.activations, c.options); }
    catch (e) { return "ERROR " + e.message; }
  }
  const text = SC.renderText(c.name, c.values, c.constants, c.error_style);
  let numbers = null, svg = null;
  const calc = SC.calculators[c.name];
  try {
    numbers = calc.compute(c.values, c.constants);
    if (calc.draw) svg = calc.draw(c.values, c.constants);
  } catch (e) { if (!(e instanceof SC.InputError)) throw e; }
  return { text, numbers, svg };
});
process.stdout.write(JSON.stringify(out));
"""


def run_node(cases: list[dict[str, Any]]) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the static calculators' JavaScript cannot be tested")
    proc = subprocess.run([node, "-e", HARNESS, str(JS_DIR)], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


# ---- format() against Python's format() -------------------------------------------------------

SPECS = [",.1f", ".3g", ".1%", ".0%", ",.0f", ".2f", "g", ".1f", ".3f", ",.3f", ",.2f", ".0f",
         ".4g", ".2g", "e", ".2e", ",", ""]


def test_format_matches_python_on_a_grid() -> None:
    rng = random.Random(17)
    # exact binary ties (Python rounds them to even, toFixed up), powers of ten, the extremes
    xs = [0.0, -0.0, 0.125, 0.375, 2.5, 3.5, 0.5, 1.5, 0.0625, 6.25, 1e21, 1.5e22, 999.95,
          999.5, 9.9995, 1e16, 1.2345678901234567e19, -0.001, -2.5, 0.15, 1.005, 2.675, 1e-300,
          5e-324, 1.7976931348623157e308]
    for _ in range(1500):
        xs.append(rng.choice([1, -1]) * 10 ** rng.uniform(-8, 25))
        xs.append(rng.randint(0, 10**6) / rng.choice([2, 4, 8, 16, 32, 64, 1024]))
        xs.append(round(rng.uniform(0, 100), rng.randint(0, 4)))
    ints = [0, 7, 1000, 65536, 123456789, -4096, 2**52]
    cases = [(x, s) for x in xs for s in SPECS if s not in (",", "")]
    cases += [(float(n), s) for n in ints for s in (",", "")]
    got = run_node([{"x": x, "format": s} for x, s in cases])
    want = [format(int(x) if s in (",", "") else x, s) for x, s in cases]
    bad = [(x, s, g, w) for (x, s), g, w in zip(cases, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(cases)} differ, e.g. (x, spec, js, python): {bad[:10]}"


def test_number_validation_messages_match_labutils() -> None:
    from labutils.validate import number

    cases, want = [], []
    for value, kw in [(-5.0, {"low": 0.0, "low_open": True}), (1.5, {"low": 0.0, "high": 1.0}),
                      (-1.0, {"low": 0.0}), (0.0, {"low": 0.0, "high": 1.0, "low_open": True})]:
        try:
            number("x", value, **kw)
        except ValueError as err:
            want.append(str(err))
        js_kw = {"low": kw.get("low"), "high": kw.get("high"), "lowOpen": kw.get("low_open", False)}
        cases.append({"x": value, "kw": js_kw})
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = HARNESS.split("const cases")[0] + r"""
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map((c) => {
  try { SC.number("x", c.x, c.kw); return "accepted"; } catch (e) { return e.message; }
})));
"""
    proc = subprocess.run([node, "-e", script, str(JS_DIR)], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(proc.stdout) == want


def test_activation_bytes_match_labutils_with_tp_sp_recompute_and_gqa() -> None:
    """activations.js (shared by the memory, TP and CP calculators) against
    labutils.activations.activation_bytes_per_layer, including grouped-query attention."""
    from labutils.activations import activation_bytes_per_layer

    rng = random.Random(3)
    cases, want = [], []
    for _ in range(400):
        s, b = rng.choice([128, 1000, 2048, 8192]), rng.choice([1, 2, 8])
        a = rng.choice([8, 12, 32, 64])
        h = a * rng.choice([64, 128])
        kw = {"tp": rng.choice([1, 2, 4, 8, 16]), "sequence_parallel": rng.random() < 0.5,
              "recompute": rng.choice(["none", "selective", "full"]),
              "dropout": rng.random() < 0.7, "n_kv_heads": rng.choice([None, 1, 2, 8, a, 3])}
        try:
            want.append(activation_bytes_per_layer(s, b, h, a, **kw))
        except ValueError as err:
            want.append(f"ERROR {err}")
        cases.append({"activations": [s, b, h, a], "options": {
            "tp": kw["tp"], "sequenceParallel": kw["sequence_parallel"], "recompute": kw["recompute"],
            "dropout": kw["dropout"], "nKvHeads": kw["n_kv_heads"]}})
    got = run_node(cases)
    bad = [(c, g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not bad, bad[:5]
    assert sum(isinstance(w, int) for w in want) > 200


# ---- the calculators ---------------------------------------------------------------------------


def captured_payload(build: Callable[[], object]) -> dict[str, Any]:
    """The JSON of the static markup ``build()``'s calculator displays (captured, not shown)."""
    shown: list[str] = []
    with mock.patch.object(calculator_module, "show", shown.append):
        build()
    assert len(shown) == 1 and static.STATIC_CLASS in shown[0], shown
    found = re.search(r"<script type='application/json'>(.*)</script>", shown[0], re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


BUILDERS: dict[str, Callable[[], object]] = {
    "memory": lambda: memory_widget.memory_calculator(),
    "throughput": lambda: throughput_widget.planner(),
    "scaling": lambda: scaling_widget.scaling_explorer(),
    "tensor_parallel": lambda: tp_widget.tensor_parallel_explorer(),
    "context_parallel": lambda: cp_widget.context_parallel_explorer(),
    "pipeline": lambda: pipeline_widget.pipeline_explorer(),
    "hardware": lambda: hardware_widget.hardware_explorer(),
    "flops": lambda: flops_widget.flops_calculator(),
}


def draw(spec: dict[str, Any], rng: random.Random) -> object:
    """A value the control can take (for a number box, also some it should refuse)."""
    kind = spec["kind"]
    if kind == "checkbox":
        return rng.random() < 0.5
    if kind in ("select", "choice-slider"):
        return rng.choice(spec["options"])[1]
    if kind == "slider":
        k = rng.randint(0, round((spec["max"] - spec["min"]) / spec["step"]))
        value = spec["min"] + k * spec["step"]
        return int(value) if spec["integer"] else round(value, 10)
    if kind == "log-slider":
        k = rng.randint(0, round((spec["max"] - spec["min"]) / spec["step"]))
        return spec["base"] ** round(spec["min"] + k * spec["step"], 10)
    if kind == "number":
        if spec["integer"]:
            return rng.choice([1, 8, 64, 256, 1000, 16384, 0, -3])
        return rng.choice([0.5, 2.0, 300.0, 400.0, 1234.5, 0.0, -5.0])
    raise AssertionError(kind)


def settings(payload: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """The first setting, then ``n`` random ones, then every single-control change of the first."""
    rng = random.Random(seed)
    first = {c["name"]: c["value"] for c in payload["controls"]}
    out = [first]
    out += [{c["name"]: draw(c, rng) for c in payload["controls"]} for _ in range(n)]
    for c in payload["controls"]:
        for _ in range(3):
            out.append({**first, c["name"]: draw(c, rng)})
    return out


def _memory_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    return memory_widget.breakdown_for(v)


def _throughput_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    p = throughput_widget.planner_projection(v["n_devices"], v["accelerator"], v["params_b"] * 1e9,
                                             v["tokens_b"] * 1e9, v["mfu_fraction"],
                                             v["usd_per_device_hour"], v["avg_power_w"])
    return {"compute_flops": p.compute_flops, "petaflop_s_days": p.petaflop_s_days,
            "time_s": p.time_s, "energy_j": p.energy_j, "cost_usd": p.cost_usd,
            "peak_flops_per_device": p.peak_flops_per_device, "time_days": p.time_days,
            "device_hours": p.device_hours}


def _scaling_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    law = scaling_law.ChinchillaLaw(**consts["laws"][v["law"]])
    c = 10.0 ** v["log10_c"]
    n, d = law.compute_optimal(c)
    nk, dk = scaling_law.kaplan_compute_optimal(c)
    return {"compute_flops": c, "pf_days": scaling_law.to_pf_days(c), "n_opt": n, "d_opt": d,
            "loss": law.loss(n, d), "n_kaplan": nk, "d_kaplan": dk}


def _tp_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    d = consts["defaults"]
    peak = hardware.get(d["accelerator"]).peak_flops("bf16")
    c = tensor_cost.tp_layer_cost(v["seq_len"], d["micro_batch"], v["d_model"], v["tp"],
                              peak_flops=peak, mfu=d["mfu"], link=LINKS.get(v["link_choice"]))
    from labutils.activations import activation_bytes_per_layer

    act = [activation_bytes_per_layer(v["seq_len"], d["micro_batch"], v["d_model"],
                                      v["d_model"] // 128, tp=v["tp"], sequence_parallel=sp) / 1e9
           for sp in (False, True)]
    return {"compute_s": c.compute_s, "comm_s": c.comm_s, "comm_bytes": c.comm_bytes,
            "efficiency": c.efficiency,
            "weights_gb": tensor_cost.tp_weight_bytes_per_layer(v["d_model"], v["tp"]) / 1e9,
            "act_tp_gb": act[0], "act_tp_sp_gb": act[1]}


def _cp_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    a = v["d_model"] // v["head_dim"]
    kv = min(v["n_kv_heads"], a)
    spec, lk = hardware.get(v["accelerator"]), LINKS[v["link"]]
    f = 0.5 if v["causal"] else 1.0
    n = v["seq_len"] // v["cp"]
    step = context_cost.ring_step(n, v["d_model"], spec.peak_flops("bf16"),
                                      lk.bandwidth_bytes_per_s, n_heads=a, n_kv_heads=kv,
                                      mfu=v["mfu"], latency_s=lk.latency_s, causal_fraction=f)
    bound = context_cost.compute_bound_tokens_per_rank(
        spec.peak_flops("bf16"), lk.bandwidth_bytes_per_s, d_model=v["d_model"], n_heads=a,
        n_kv_heads=kv, mfu=v["mfu"], latency_s=lk.latency_s, causal_fraction=f)
    act = {flash: context_cost.cp_activation_bytes_per_layer(v["seq_len"], 1, v["d_model"], a,
                                                                 v["cp"], flash=flash)
           for flash in (True, False)}
    from labutils.attention import score_matrix_bytes

    return {"compute_s": step.compute_s, "comm_s": step.comm_s, "bound": bound,
            "act_flash": act[True], "act_naive": act[False],
            "sent": context_cost.ring_kv_bytes_per_rank(v["seq_len"], v["cp"], v["d_model"], a, kv),
            "score_bytes": score_matrix_bytes(v["seq_len"], a)}


def _pipeline_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    r, _ = pipeline_widget.explain(v["name"], v["p"], v["m"], v["v"], v["ratio"], v["p2p"])
    return {"makespan": r.makespan, "compute_per_stage": r.compute_per_stage,
            "idle_fraction": r.idle_fraction, "bubble_ratio": r.bubble_ratio,
            "p2p_messages": r.p2p_messages}


def _hardware_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    summary = hardware.get(v["device"]).summary(v["dtype"])
    return {row: value for row, value in summary.items() if not isinstance(value, str)}


def _flops_numbers(v: dict[str, Any], consts: dict[str, Any]) -> dict[str, float]:
    from labutils import flops
    from labutils.model import TransformerConfig, param_breakdown

    cfg = TransformerConfig(vocab_size=v["vocab_size"], seq_len=v["seq_len"], d_model=v["d_model"],
                            n_layers=v["n_layers"], n_heads=v["n_heads"], mlp=v["mlp"],
                            tied_embeddings=v["tied_embeddings"])
    d = 10.0 ** v["log10_tokens"]
    n = param_breakdown(cfg)["total"]
    return {"ffn": cfg.ffn_dim, "dense": flops.flops_per_token(cfg, attention=False),
            "training": flops.flops_per_token(cfg), "kaplan": flops.kaplan_flops_per_token(cfg),
            "attention_share": flops.attention_share(cfg),
            "forward": flops.flops_per_token(cfg, training=False),
            "compute_exact": flops.training_compute(cfg, d), "compute_6nd": flops.training_flops(n, d)}


NUMBERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, float]]] = {
    "memory": _memory_numbers, "throughput": _throughput_numbers, "scaling": _scaling_numbers,
    "tensor_parallel": _tp_numbers, "context_parallel": _cp_numbers,
    "pipeline": _pipeline_numbers, "hardware": _hardware_numbers, "flops": _flops_numbers,
}


def _js_numbers(name: str, js: Any) -> dict[str, float]:
    """The JavaScript ``compute`` result in the shape of NUMBERS[name]'s."""
    if name == "hardware":
        return {row: value for row, value, kind in js if kind != "str"}
    return js


def test_every_static_calculator_is_tested() -> None:
    assert set(BUILDERS) == set(static.CONSTANTS) == set(static_reference.REFERENCE) == set(NUMBERS)
    files = {p.stem for p in JS_DIR.glob("*.js")}
    assert set(static.CONSTANTS) <= files


@pytest.fixture(scope="module")
def fast_figures():
    """Skip drawing the figures of the Python references (their text does not depend on them)."""
    with mock.patch.object(memory_widget, "memory_figure", lambda *a, **k: None), \
         mock.patch.object(hardware_widget, "roofline_figure", lambda *a, **k: None):
        yield


@pytest.mark.parametrize("name", sorted(static.CONSTANTS))
def test_javascript_matches_labutils(name: str, fast_figures: None) -> None:
    payload = captured_payload(BUILDERS[name])
    consts = payload["constants"]
    grid = settings(payload, CASES_PER_CALCULATOR, seed=sum(map(ord, name)))
    got = run_node([{"name": name, "values": v, "constants": consts,
                    "error_style": payload["error_style"]} for v in grid])
    rejected = 0
    for values, js in zip(grid, got):
        want_text = static_reference.reference_html(name, values, consts)
        assert js["text"] == want_text, f"{name} at {values}:\njs:     {js['text']}\npython: {want_text}"
        if want_text.startswith("<span style="):  # rejected by labutils: the JS refused it too
            rejected += 1
            assert js["numbers"] is None, f"{name} at {values}: JS computed a rejected setting"
            continue
        want = NUMBERS[name](values, consts)
        have = _js_numbers(name, js["numbers"])
        for key, value in want.items():
            assert have[key] == pytest.approx(value, rel=RTOL, abs=0.0), (
                f"{name} at {values}: {key} js={have[key]!r} python={value!r}")
    assert len(grid) - rejected >= 30, f"{name}: {rejected} of {len(grid)} settings rejected"


def _memory_figure_labels(v: dict[str, Any]) -> list[str]:
    """The legend labels labutils.widgets.memory.memory_figure writes (its bar's parts)."""
    b = memory_widget.breakdown_for(v)
    spec = hardware.get(v["gpu"])
    labels = [f"{part} {b[part] / 1e9:.1f} GB" for part in memory_widget.PARTS]
    return labels + [f"{spec.name}: {spec.memory_bytes / 1e9:.1f} GB = "
                     f"{spec.memory_bytes / hardware.GiB:.1f} GiB"]


@pytest.mark.parametrize("name", ["memory", "pipeline", "hardware"])
def test_redrawn_figures_show_what_labutils_computes(name: str) -> None:
    """The SVG the page draws for a new setting: the pipeline's spans are the simulated events
    (one box each, at their times); the memory bar has its four parts, labelled as Python's;
    the roofline bends at labutils' ridge point, labelled as Python's legend."""
    payload = captured_payload(BUILDERS[name])
    grid = settings(payload, 40, seed=7)
    got = run_node([{"name": name, "values": v, "constants": payload["constants"],
                    "error_style": payload["error_style"]} for v in grid])
    drawn = 0
    for values, js in zip(grid, got):
        if js["numbers"] is None:
            continue
        drawn += 1
        svg = js["svg"]
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        if name == "pipeline":
            r, _ = pipeline_widget.explain(values["name"], values["p"], values["m"], values["v"],
                                           values["ratio"], values["p2p"])
            assert svg.count("<rect") == len(r.events), values
            widths = [float(w) for w in re.findall(r'<rect [^>]* width="([0-9.]+)"', svg)]
            scale = (720 - 60 - 12) / r.makespan  # the SVG's plot width over the step time
            want = sorted(round(e.duration_s * scale, 2) for e in r.events)
            assert sorted(widths) == pytest.approx(want, abs=0.011), values
        elif name == "hardware":
            spec = hardware.get(values["device"])
            ridge = spec.ridge_point(values["dtype"])
            assert f">{spec.name} (ridge {ridge:.0f} FLOP/B)</text>" in svg, values
            points = re.search(r'class="sc-roof"[^>]*points="([^"]+)"', svg).group(1).split()
            assert 0.1 <= ridge <= 1e4 and len(points) == 3, values  # rising, ridge, flat
            xs, ys = zip(*(map(float, p.split(",")) for p in points))
            assert ys[0] > ys[1] == ys[2], values  # SVG y grows downwards: up to the peak, then flat
            assert xs[1] == pytest.approx(64 + (math.log10(ridge) + 1) / 5 * (620 - 64 - 16), abs=0.01)
        else:
            assert svg.count("<rect") == 2 * len(memory_widget.PARTS), values
            for label in _memory_figure_labels(values):
                assert f">{label}</text>" in svg, (label, values)
    assert drawn >= 20
