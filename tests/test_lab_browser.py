"""The calculators in a real JupyterLab, driven by Chromium through Playwright (issue #17).

nbmake cannot see the race the issue reports: in JupyterLab 4.6 with ipykernel 7, changing a
control of a calculator that drew with pyplot into an ``Output`` widget gave a blank, garbled or
traceback figure. Here a throwaway JupyterLab (127.0.0.1, a random token, its own settings and
workspace folders) opens two chapters, runs them, changes one control of each calculator through
the page, and checks that the text is what labutils computes for the new setting and that the
``<img>`` of the Image widget holds a real figure (its pixels, read back through a canvas, are
not blank). Screenshots go to ``book/_build/screenshots/lab/`` (printed).

Debian's Chromium is used (``make test`` installs it where it can); Playwright never downloads a
browser. Skipped, with the reason, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SHOTS = REPO / "book" / "_build" / "screenshots" / "lab"
NOTIFICATION_SETTINGS = ("@jupyterlab/apputils-extension", "notification.jupyterlab-settings")
SERVER_START_S = 90  # seconds to wait for the server to answer
CELL_TIMEOUT_MS = 150_000  # a chapter's cells on two busy cores
CHANGE_TIMEOUT_MS = 30_000  # one re-render after a control changes

pytestmark = [pytest.mark.browser, pytest.mark.book, pytest.mark.slow]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


if _chromium() is None:
    pytest.skip("no Chromium on this machine (`make test` installs Debian's chromium where it can)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -e '.[test]')")

# Read the pixels of an <img> back through a canvas: size, grey-level spread, share drawn.
PIXEL_STATS_JS = """img => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0, drawn = 0;
  for (let i = 0; i < d.length; i += 4) {
    const v = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; s += v; s2 += v * v; if (v < 230) drawn++;
  }
  const m = s / n;
  return {width: c.width, height: c.height, std: Math.sqrt(s2 / n - m * m), drawn: drawn / n};
}"""


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL and token."""

    url: str
    token: str

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(proc: subprocess.Popen, url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer in {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server by its PID (it shuts its kernels down), then SIGKILL its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group started below: the server and its kernels
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a random token, throwaway config, settings and workspaces,
    the "Jupyter news" prompt off; stopped by its PID afterwards."""
    tmp = tmp_path_factory.mktemp("lab")
    # The server works on a copy: JupyterLab saves notebooks (with their outputs) as it runs them,
    # and the repository's notebooks are committed without outputs.
    root = tmp / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp / "settings"
    (settings / NOTIFICATION_SETTINGS[0]).mkdir(parents=True)
    (settings / NOTIFICATION_SETTINGS[0] / NOTIFICATION_SETTINGS[1]).write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.allow_root=True", "--LabApp.news_url=None",
           "--LabApp.expose_app_in_browser=True"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_server(proc, url, token, log)
        yield Lab(url, token)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


def _open(browser: object, lab: Lab, name: str) -> object:
    """A page with notebook ``name`` open and its kernel started."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(CELL_TIMEOUT_MS)
    page.goto(lab.notebook_url(name))
    page.wait_for_function(
        """name => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                     const k = w && w.context && w.context.path.endsWith(name)
                               && w.sessionContext.session && w.sessionContext.session.kernel;
                     return k && k.status === 'idle'; }""", arg=name)
    return page


def _run(page: object, cells: list[int] | None) -> None:
    """Run all cells (``None``, as the Run menu's "Run All Cells") or the listed cell indices;
    returns when they have run (the notebook commands resolve then)."""
    page.evaluate("""async cells => {
        const app = window.jupyterapp, nb = app.shell.currentWidget;
        if (cells === null) { await app.commands.execute('notebook:run-all-cells'); return; }
        for (const i of cells) {
            nb.content.activeCellIndex = i;
            await app.commands.execute('notebook:run-cell');
        }
    }""", cells)


def _wait_done(page: object) -> None:
    """Wait until no cell is queued or running, then fail on any error output of the notebook
    (read from the notebook's model, so cells scrolled out of view count too)."""
    page.wait_for_function("""() => ![...document.querySelectorAll('.jp-InputPrompt')]
                              .some(e => e.textContent.includes('*'))""")
    errors = page.evaluate("""() => {
        const errs = [];
        for (const cell of window.jupyterapp.shell.currentWidget.content.model.cells) {
            if (cell.type !== 'code') continue;
            for (let i = 0; i < cell.outputs.length; i++) {
                const o = cell.outputs.get(i).toJSON();
                if (o.output_type === 'error') errs.push(`${o.ename}: ${o.evalue}`);
            }
        }
        return errs; }""")
    assert not errors, errors


def _calculator(page: object, label: str) -> object:
    """The output area holding the calculator with a control labelled ``label``."""
    out = page.locator(".jp-OutputArea-output").filter(
        has=page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$")))
    out.first.locator("img").last.wait_for(state="attached", timeout=CHANGE_TIMEOUT_MS)
    out.first.scroll_into_view_if_needed()
    return out.first


def _select(calc: object, label: str, option: str) -> None:
    """Choose ``option`` in the dropdown labelled ``label``, as a reader does."""
    calc.locator(".widget-dropdown").filter(
        has=calc.page.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))
    ).locator("select").select_option(option)


def control_value(calc: object, label: str) -> str:
    """What the page's dropdown labelled ``label`` shows."""
    return calc.locator(".widget-dropdown").filter(
        has=calc.page.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))
    ).locator("select").evaluate("e => e.value")


def _changed(calc: object, old_src: str, needle: str) -> tuple[str, dict]:
    """Wait for a new figure (the calculator's last ``<img>``) and for ``needle`` in its text;
    return the calculator's text and the figure's pixel stats. The page is queried afresh on
    every poll, so a figure drawn some other way (say, into an Output widget) is judged too."""
    try:
        calc.page.wait_for_function(
            """([out, old, needle]) => {
                 out.scrollIntoView({block: 'nearest'});  // windowed notebook: keep it drawn
                 const imgs = out.querySelectorAll('img'), img = imgs[imgs.length - 1];
                 return img && img.src !== old && img.complete && img.naturalWidth > 0
                        && out.textContent.includes(needle); }""",
            arg=[calc.element_handle(), old_src, needle], timeout=CHANGE_TIMEOUT_MS)
    except sync_api.TimeoutError:
        SHOTS.mkdir(parents=True, exist_ok=True)
        calc.page.screenshot(path=str(SHOTS / "failed-change.png"))
        pytest.fail(f"no new figure with {needle!r} in the text after {CHANGE_TIMEOUT_MS} ms "
                    f"(screenshot {SHOTS / 'failed-change.png'}); text: {calc.inner_text()!r}")
    calc.scroll_into_view_if_needed()  # the notebook skips rendering cells out of view
    return calc.inner_text(), calc.locator("img").last.evaluate(PIXEL_STATS_JS)


def _figure_src(calc: object) -> str:
    return calc.locator("img").last.get_attribute("src")


def _assert_real_figure(stats: dict) -> None:
    assert stats["width"] >= 200 and stats["height"] >= 150, stats
    assert stats["std"] > 20, f"blank figure: {stats}"  # grey levels 0-255
    assert stats["drawn"] > 0.01, f"almost nothing drawn: {stats}"


def _shoot(page: object, calc: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    calc.scroll_into_view_if_needed()
    calc.screenshot(path=str(SHOTS / f"{name}.png"))
    page.screenshot(path=str(SHOTS / f"{name}-page.png"))
    print(f"screenshots: {SHOTS / name}.png, {SHOTS / name}-page.png")


def _code_cells_with(notebook: str, *needles: str) -> list[int]:
    """Indices (among all cells) of the first code cell containing each needle."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    found = []
    for needle in needles:
        hits = [i for i, c in enumerate(cells)
                if c["cell_type"] == "code" and needle in "".join(c["source"])]
        assert hits, f"{notebook}: no code cell contains {needle!r}"
        found.append(hits[0])
    return found


def test_hardware_explorer_in_lab(lab: Lab, browser: object) -> None:
    """Chapter 0, Run All, then pick another accelerator: the datasheet and roofline follow."""
    from labutils import hardware

    page = _open(browser, lab, "00_introduction.ipynb")
    _run(page, None)
    _wait_done(page)
    calc = _calculator(page, "accelerator")
    old = _figure_src(calc)
    _select(calc, "accelerator", "A100-80GB")
    text, stats = _changed(calc, old, "A100-80GB")
    assert control_value(calc, "dtype") == "bf16"
    for quantity, value in hardware.get("A100-80GB").summary("bf16").items():
        shown = format(value, ",.1f") if isinstance(value, float) else str(value)
        assert re.search(rf"{re.escape(quantity)}\s+{re.escape(shown)}", text), (quantity, text)
    _assert_real_figure(stats)
    assert page.get_by_text("official Jupyter news").count() == 0, "the news prompt is on"
    _shoot(page, calc, "00_hardware_explorer")
    page.close()


def _llama_7b_total_gb(dp: int) -> float:
    """labutils.memory's bytes per device (in GB) for the calculator's defaults at ``dp``."""
    from labutils.memory import device_memory_breakdown
    from labutils.model import count_params, preset

    cfg = preset("llama-7b")
    b = device_memory_breakdown(count_params(cfg), n_layers=cfg.n_layers, d_model=cfg.d_model,
                                n_heads=cfg.n_heads, seq_len=2048, micro_batch=1,
                                recipe="mixed_adam", zero_stage=1, dp=dp, tp=1, pp=1,
                                sequence_parallel=False, recompute="selective")
    return b["total"] / 1e9


def test_memory_calculator_in_lab(lab: Lab, browser: object) -> None:
    """Chapter 4's imports and its calculator cell, then DP 8 → 64: the verdict line is
    labutils.memory's number and the stacked bar is a real figure; then quick double changes."""
    from labutils.model import count_params, preset

    page = _open(browser, lab, "04_memory.ipynb")
    # The whole chapter takes about a minute on idle cores: run its imports and the calculator.
    _run(page, _code_cells_with("04_memory.ipynb", "from labutils.widgets.memory import",
                                "memory_calculator("))
    _wait_done(page)
    calc = _calculator(page, "DP")
    old = _figure_src(calc)
    _select(calc, "DP", "64")
    cfg = preset("llama-7b")
    expected = f"{_llama_7b_total_gb(64):.1f} GB per device"
    text, stats = _changed(calc, old, expected)
    assert f"{cfg.name or 'llama-7b'} ({count_params(cfg) / 1e9:.2f}B parameters): {expected}" in text
    _assert_real_figure(stats)
    for dp in (16, 32, 128):  # two changes in a row, the second before the first has drawn
        old = _figure_src(calc)
        _select(calc, "DP", "8")
        _select(calc, "DP", str(dp))
        _, stats = _changed(calc, old, f"{_llama_7b_total_gb(dp):.1f} GB per device")
        _assert_real_figure(stats)
    _shoot(page, calc, "04_memory_calculator")
    page.close()
