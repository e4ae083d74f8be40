"""Every calculator (labutils.widgets) follows one race-free pattern (issue #17).

For each one: build it, change one control programmatically, and check that the HTML text shows
the value labutils (or a hand-worked formula written here) gives for the new setting, and that
the ``widgets.Image`` holds a real, non-blank PNG. A grep keeps pyplot and ``Output`` widgets
out of labutils/widgets: those are what raced in JupyterLab 4.6 with ipykernel 7.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

ipywidgets = pytest.importorskip("ipywidgets")
import matplotlib.image as mpimg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

WIDGETS_DIR = Path(__file__).resolve().parents[1] / "labutils" / "widgets"


def walk(widget: ipywidgets.Widget):
    """``widget`` and every widget inside it, depth first."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def control(panel: ipywidgets.Widget, description: str) -> ipywidgets.Widget:
    """The one control of ``panel`` whose description is ``description``."""
    found = [c for c in walk(panel) if getattr(c, "description", None) == description]
    assert len(found) == 1, f"{description!r}: {len(found)} controls"
    return found[0]


def text_of(panel: ipywidgets.Widget) -> str:
    """The calculator's HTML text: the HTML widget that follows the controls (the last one)."""
    return [c for c in walk(panel) if isinstance(c, ipywidgets.HTML)][-1].value


def image_of(panel: ipywidgets.Widget) -> ipywidgets.Image:
    images = [c for c in walk(panel) if isinstance(c, ipywidgets.Image)]
    assert len(images) == 1
    return images[0]


def assert_real_png(png: bytes, min_side: int = 50) -> None:
    """A decodable PNG of at least ``min_side`` pixels a side, not one flat colour, and with a
    fair share of drawn (non-white) pixels."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]  # (H, W, RGB) in [0, 1]
    assert min(pixels.shape[:2]) >= min_side
    assert pixels.std() > 0.05, "blank figure"
    assert (pixels.min(axis=-1) < 0.9).mean() > 0.01, "almost nothing drawn"


# ---- the pattern itself -----------------------------------------------------------------------

def test_calculator_renders_on_change_and_shows_errors_in_red() -> None:
    from labutils.widgets.calculator import calculator

    def render(values: dict) -> tuple[str, Figure]:
        if values["n"] < 1:
            raise ValueError(f"n must be an int >= 1, got {values['n']}")
        fig = Figure(figsize=(3, 2))
        fig.subplots().plot(range(values["n"] + 1), color="k")
        return f"n squared is {values['n'] ** 2}", fig

    n = ipywidgets.IntSlider(value=3, min=-2, max=9)
    calc = calculator({"n": n}, render)
    assert calc.text.value == "n squared is 9"
    first = calc.image.value
    assert_real_png(first)
    n.value = 7
    assert calc.text.value == "n squared is 49" and calc.image.value != first
    n.value = 0  # rejected: red text naming the argument, figure hidden, no exception
    assert "n must be an int &gt;= 1" in calc.text.value and "color:#b00" in calc.text.value
    assert calc.image.layout.display == "none"
    n.value = 2  # a valid setting shows the figure again
    assert calc.text.value == "n squared is 4" and calc.image.layout.display is None


def test_hold_renders_once_and_a_shown_setting_is_not_drawn_again() -> None:
    from labutils.widgets.calculator import calculator

    seen = []

    def render(values: dict) -> tuple[str, None]:
        seen.append(dict(values))
        return f"{values['a']} + {values['b']} = {values['a'] + values['b']}", None

    a, b = ipywidgets.IntText(value=1), ipywidgets.IntText(value=2)
    calc = calculator({"a": a, "b": b}, render, figure=False)
    with calc.hold():
        a.value, b.value = 10, 20
    assert seen == [{"a": 1, "b": 2}, {"a": 10, "b": 20}] and calc.text.value == "10 + 20 = 30"
    calc.refresh()  # nothing changed: not drawn again
    assert len(seen) == 2


def test_error_text_is_escaped() -> None:
    from labutils.widgets.calculator import calculator

    def render(values: dict) -> tuple[str, None]:
        raise TypeError("x must be <b>an int</b>")

    calc = calculator({"x": ipywidgets.IntText(value=1)}, render, figure=False)
    assert calc.image is None and "&lt;b&gt;an int&lt;/b&gt;" in calc.text.value


def test_figures_show_themselves_in_a_notebook_without_pyplot() -> None:
    """``display(fig)`` of a calculator figure gives a PNG (IPython's own formatter, no inline
    backend): chapters show ``roofline_figure(...)`` that way."""
    from IPython.core.formatters import DisplayFormatter

    from labutils.widgets.hardware import roofline_figure

    data, _ = DisplayFormatter().format(roofline_figure(["H100-SXM", "A100-80GB"], "bf16"))
    assert_real_png(data["image/png"])


#: labutils.widgets.static.show displays the static book's hidden markup once, while the
#: calculator is built in the cell (never in a callback, where displays raced).
DISPLAY_ONCE = {("static.py", "from IPython.display import HTML, display")}


def test_no_pyplot_and_no_output_widget_in_labutils_widgets() -> None:
    banned = re.compile(r"matplotlib\.pyplot|from matplotlib import pyplot|\bplt\.|"
                        r"\bOutput\(|clear_output|IPython\.display")
    hits = [f"{p.name}:{i}: {line.strip()}" for p in sorted(WIDGETS_DIR.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if banned.search(line) and not line.lstrip().startswith(("#", '"', "``", ":"))
            and "no pyplot" not in line and (p.name, line.strip()) not in DISPLAY_ONCE]
    assert not hits, "\n".join(hits)


# ---- each calculator: change one control, read the text, check the figure ----------------------

def test_hardware_explorer() -> None:
    from labutils import hardware
    from labutils.widgets.hardware import hardware_explorer

    panel = hardware_explorer("H100-SXM", "bf16")
    control(panel, "accelerator").value = "A100-80GB"
    spec = hardware.get("A100-80GB")
    # A100 SXM: 312 TFLOP/s dense bf16, 2,039 GB/s (NVIDIA's datasheet, as labutils.hardware)
    assert spec.peak_flops("bf16") == pytest.approx(312e12)
    text = text_of(panel)
    assert "A100-80GB" in text and ">312.0<" in text and ">2,039.0<" in text
    assert f">{312e12 / 2039e9:,.1f}<" in text  # ridge point: peak / bandwidth, FLOP per byte
    assert_real_png(image_of(panel).value)


def test_hardware_explorer_keeps_dtype_valid() -> None:
    from labutils.widgets.hardware import hardware_explorer

    panel = hardware_explorer("H100-SXM", "fp8")
    control(panel, "accelerator").value = "TPU-v4"  # no fp8 on a TPU v4
    assert control(panel, "dtype").value == "bf16" and "TPU-v4" in text_of(panel)
    control(panel, "accelerator").value = "H100-SXM"
    assert control(panel, "dtype").value == "bf16"
    assert_real_png(image_of(panel).value)


def test_hardware_explorer_never_shows_the_reset_dtype() -> None:
    """A new dtype list resets the selection to its first entry (fp64) before the kept dtype
    comes back: the page must never be sent that intermediate datasheet (seen in JupyterLab)."""
    from labutils.widgets.hardware import hardware_explorer

    panel = hardware_explorer("H100-SXM", "bf16")
    texts = []
    [c for c in walk(panel) if isinstance(c, ipywidgets.HTML)][-1].observe(
        lambda change: texts.append(change["new"]), names="value")
    control(panel, "accelerator").value = "A100-80GB"
    assert len(texts) == 1 and "bf16 TFLOP/s" in texts[0] and "fp64" not in texts[0]


def test_memory_calculator() -> None:
    from labutils.memory import device_memory_breakdown
    from labutils.model import count_params, preset
    from labutils.widgets.memory import memory_calculator

    panel = memory_calculator("llama-7b", "A100-80GB")
    control(panel, "DP").value = 64
    cfg = preset("llama-7b")
    b = device_memory_breakdown(count_params(cfg), n_layers=cfg.n_layers, d_model=cfg.d_model,
                                n_heads=cfg.n_heads, seq_len=2048, micro_batch=1,
                                recipe="mixed_adam", zero_stage=1, dp=64, tp=1, pp=1,
                                sequence_parallel=False, recompute="selective")
    text = text_of(panel)
    assert f"{b['total'] / 1e9:.1f} GB per device" in text
    # Mixed-precision Adam keeps 16 bytes per parameter (ZeRO, Sec. 3.1): 2 + 2 + 12K/N_d
    # with ZeRO-1 over 64 ranks, so model states are N·(4 + 12/64) bytes.
    n = count_params(cfg)
    assert b["params"] + b["grads"] + b["optimizer"] == pytest.approx(n * (4 + 12 / 64), rel=1e-6)
    assert_real_png(image_of(panel).value)


def test_memory_calculator_bad_layout_is_red_text() -> None:
    from labutils.widgets.memory import memory_calculator

    panel = memory_calculator("gpt2-small", "A100-80GB")  # 12 heads: TP = 8 does not divide them
    control(panel, "TP").value = 8
    assert "color:#b00" in text_of(panel) and "tp" in text_of(panel)
    assert image_of(panel).layout.display == "none"


def test_mup_explorer() -> None:
    from labutils.widgets.mup import mup_explorer

    panel = mup_explorer()
    control(panel, "target width").value = 512  # ñ = 512 / 256 = 2
    text = text_of(panel)
    # muP (Tensor Programs V, Table 3): hidden AdamW LR = η / ñ = 0.01 / 2
    assert "ñ = 2" in text and "<td style='padding:2px 8px'>0.005</td>" in text
    assert_real_png(image_of(panel).value)


def test_pipeline_explorer() -> None:
    from labutils.widgets.pipeline import pipeline_explorer

    panel = pipeline_explorer()
    control(panel, "micro-batches m").value = 16
    # 1F1B bubble over compute (Narayanan et al. 2021): (p - 1) / m = 3 / 16
    assert f"{3 / 16:.1%}" in text_of(panel)
    assert_real_png(image_of(panel).value)


def test_scaling_explorer() -> None:
    from labutils.scaling import HOFFMANN_2022
    from labutils.widgets.scaling import scaling_explorer

    panel = scaling_explorer()
    control(panel, "log10 C (FLOPs)").value = 24.0
    n_opt, d_opt = HOFFMANN_2022.compute_optimal(1e24)
    assert n_opt * d_opt * 6 == pytest.approx(1e24, rel=1e-9)  # C = 6ND on the optimum
    text = text_of(panel)
    assert f"<code>{n_opt:.3g}</code>" in text and f"<code>{d_opt:.3g}</code>" in text
    assert_real_png(image_of(panel).value)


def test_training_recipe_explorer() -> None:
    from labutils.widgets.training_recipe import training_recipe_explorer

    panel = training_recipe_explorer()
    control(panel, "LSH bands b").value = 10
    control(panel, "LSH rows r").value = 8
    assert f"{(1 / 10) ** (1 / 8):.3f}" in text_of(panel)  # threshold (1/b)^(1/r)
    assert_real_png(image_of(panel).value)


def test_format_explorer() -> None:
    import torch

    from labutils.widgets.precision import format_explorer

    panel = format_explorer()
    control(panel, "value").value = 0.1
    bf16 = float(torch.tensor(0.1).to(torch.bfloat16))  # 0.10009765625, torch's own rounding
    text = text_of(panel)
    assert f"rounded value: {bf16:.10g}" in text and "0 01111011 1001101" in text
    assert_real_png(image_of(panel).value, min_side=20)


def test_flops_calculator() -> None:
    from labutils.widgets.flops import flops_calculator

    panel = flops_calculator()
    control(panel, "layers").value = 24
    # GPT-2 shape with tied embeddings and biases: V·d + T·d + L·(12d² + 13d) + 2d
    d, V, T, L = 768, 50257, 1024, 24
    assert f"{V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d:,}" in text_of(panel)
    control(panel, "heads").value = 7  # 768 is not a multiple of 7
    assert "color:#b00" in text_of(panel) and "n_heads" in text_of(panel)


def test_context_parallel_explorer() -> None:
    from labutils.widgets.context_parallel import context_parallel_explorer

    panel = context_parallel_explorer()
    control(panel, "CP degree").value = 16
    assert f"{131072 // 16:,} tokens per rank" in text_of(panel)
    assert "in 15 steps" in text_of(panel)  # a ring of 16 ranks: cp - 1 transfers


def test_data_parallel_explorer() -> None:
    from labutils.widgets.data_parallel import data_parallel_explorer

    panel = data_parallel_explorer()
    control(panel, "GPUs").value = 8
    control(panel, "parameters (B)").value = 1.0
    text = text_of(panel)
    # bf16 gradients of 1e9 parameters: 2 bytes each
    assert "<b>8 GPU(s)</b>" in text and "gradients all-reduced: 2.00 GB" in text


def test_tensor_parallel_explorer() -> None:
    from labutils.widgets.tensor_parallel import tensor_parallel_explorer

    panel = tensor_parallel_explorer()
    control(panel, "TP degree").value = 4
    h = 12288  # bf16 matmul weights of a layer: 12·h² parameters, 2 bytes, split 4 ways
    assert f"weights per rank per layer (bf16): {12 * h * h * 2 / 4 / 1e9:.3f} GB" in text_of(panel)


def test_run_planner() -> None:
    from labutils.plan import Goal, plan_run
    from labutils.widgets.plan import run_planner

    panel = run_planner()
    control(panel, "GPUs").value = 2048
    plan = plan_run(Goal(compute_flops=1e24, accelerator="H100-SXM", n_gpus=2048, seq_len=4096,
                         global_batch_tokens=4 * 2**20, law="hoffmann", usd_per_gpu_hour=2.0),
                    max_cp=1)
    assert f"{plan.projection.time_days:,.1f} days" in text_of(panel)
    assert plan.best.layout.label() in text_of(panel)


def test_throughput_planner() -> None:
    from labutils import hardware
    from labutils.widgets.throughput import planner

    panel = planner()
    control(panel, "GPUs K").value = 512
    # t = 6·N·D / (K·F·MFU): 7e9 parameters, 150e9 tokens, 512 A100s at 35 % MFU
    peak = hardware.get("A100-80GB").peak_flops("bf16")
    days = 6 * 7e9 * 150e9 / (512 * peak * 0.35) / 86400
    assert f"{days:,.2f} days" in text_of(panel)
    control(panel, "GPUs K").value = 0
    assert "color:#b00" in text_of(panel) and "n_devices" in text_of(panel)


@pytest.mark.parametrize("module", sorted(p.stem for p in WIDGETS_DIR.glob("*.py")
                                          if p.stem not in ("__init__", "calculator")
                                          and not p.stem.startswith("static")))
def test_every_calculator_uses_the_one_pattern(module: str) -> None:
    import importlib

    mod = importlib.import_module(f"labutils.widgets.{module}")
    source = Path(mod.__file__).read_text()
    assert "from labutils.widgets.calculator import" in source and "calculator(" in source


def test_static_markup_stays_hidden_and_needs_no_kernel() -> None:
    """Outside a kernel nothing is displayed; the markup is a hidden div (JupyterLab's sanitizer
    keeps ``hidden``) whose JSON cannot close its own script tag."""
    from unittest import mock

    from labutils.widgets import calculator as calculator_module
    from labutils.widgets import static
    from labutils.widgets.memory import memory_calculator

    shown: list[str] = []
    with mock.patch.object(calculator_module, "show", shown.append):
        memory_calculator()
        from labutils.widgets.mup import mup_explorer  # a calculator with no static version
        mup_explorer()
    assert shown[0].startswith("<div hidden class='static-calculator' data-calculator='memory'>")
    assert shown[0].count("</script>") == 1
    assert shown[1].startswith("<div hidden class='static-calculator-snapshot'>")
    assert "make lab" in shown[1]
    static.show("<p>not shown</p>")  # no kernel here: a no-op, not a printed repr
    with pytest.raises(ValueError, match="static must be one of"):
        static.constants("muP")
