"""The built static book (``make book`` builds it; ``make test`` builds it before running this).

* index.html and every page in the table of contents exist, with executed outputs;
* no page loads anything over http(s): no http(s) ``src``/``href`` anywhere, no remote CSS url();
* MathJax is served from the book itself;
* a headless Chromium (Playwright driving Debian's chromium) loads every page from a local http
  server and checks what a reader sees: math typeset, every image loaded, no console error or
  uncaught exception, no request to another host, no failed request, no markdown table left as
  raw pipe text, tables and code that fit the column or scroll inside their own box, no blank
  gap from a hidden progress bar, and the introduction's widget rendered. One screenshot per
  chapter goes to book/_build/screenshots/ (gitignored) for a person to look at.
* on the same visit, every static calculator (book/_static/calculators/, issue #17) gets one
  control changed: its text must change, equal what labutils computes for the new setting
  (``labutils.widgets.static_reference.reference_html``) and be what the page shows; the frozen widget
  beside it is hidden, calculators that need a kernel say they are snapshots, and a screenshot
  of each calculator after its change goes to book/_build/screenshots/calculator_<name>.png.
"""

from __future__ import annotations

import functools
import html as html_lib
import http.server
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parent.parent
#: The built book; LABUTILS_BOOK_HTML points the tests at another build (say, a small book of
#: a few pages built into /tmp while working on one chapter).
HTML = Path(os.environ.get("LABUTILS_BOOK_HTML", REPO / "book" / "_build" / "html"))
SHOTS = REPO / "book" / "_build" / "screenshots"
#: The whole browser pass (every page, one browser) must stay within this budget on 2 CPU cores.
BROWSER_BUDGET_S = 120.0
#: How long one page may take to render its widgets and typeset its math before we look at it.
SETTLE_TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 900}
# What a page loads: any src=, and href= on <link> (stylesheets, icons, preloads). A plain <a href>
# to another site loads nothing (the launch buttons in book/_config.yml are such links).
REMOTE_ATTR = re.compile(
    r"""(?:\bsrc|<link\b[^>]*\bhref)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
REMOTE_CSS = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def html() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` (make test builds it first)")
    return HTML


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [ch["file"] for ch in part.get("chapters", [])]
    return pages


def test_every_page_exists(html: Path) -> None:
    assert (html / "index.html").exists()
    for page in _toc_pages():
        assert (html / f"{page}.html").exists(), f"{page}.html was not built"


def test_chapter_pages_carry_executed_outputs(html: Path) -> None:
    for page in _toc_pages():
        if page.startswith("notebooks/"):
            text = (html / f"{page}.html").read_text()
            assert "cell_output" in text, f"{page}: no executed output in the built page"


def test_nothing_loads_over_the_network(html: Path) -> None:
    offenders = []
    for path in html.rglob("*.html"):
        for m in REMOTE_ATTR.finditer(path.read_text(errors="replace")):
            offenders.append(f"{path.relative_to(html)}: {m.group(0)}")
    for path in html.rglob("*.css"):
        for m in REMOTE_CSS.finditer(path.read_text(errors="replace")):
            offenders.append(f"{path.relative_to(html)}: {m.group(0)}")
    assert not offenders, "remote references:\n" + "\n".join(offenders[:20])


def test_mathjax_is_served_locally(html: Path) -> None:
    page = (html / "notebooks" / "00_introduction.html").read_text()
    m = re.search(r'<script[^>]*src="([^"]*tex-mml-chtml\.js)[^"]*"', page)
    assert m, "the introduction loads MathJax"
    src = m.group(1).split("?")[0]
    assert not src.startswith(("http:", "https:", "//"))
    assert (html / "notebooks" / src).resolve().is_file(), f"MathJax at {src} is missing"


def test_widget_state_is_embedded(html: Path) -> None:
    page = (html / "notebooks" / "00_introduction.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in page
    assert "application/vnd.jupyter.widget-view+json" in page
    assert (html / "_static" / "html-manager" / "embed-amd.js").is_file()



# --------------------------------------------------------------------------------------------
# The browser pass: every built page, in one headless Chromium, served from 127.0.0.1.
# --------------------------------------------------------------------------------------------

#: Waits (in the page) until the widget manager has drawn every widget view and MathJax has
#: finished typesetting, or until the timeout; returns what was still pending.
SETTLE_JS = """async (timeoutMs) => {
  const views = () => document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length;
  const drawn = () => document.querySelectorAll('.widget-subarea').length;
  const t0 = performance.now();
  while (drawn() < views() && performance.now() - t0 < timeoutMs) {
    await new Promise(r => setTimeout(r, 50));
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise,
                        new Promise(r => setTimeout(r, Math.max(0, timeoutMs - (performance.now() - t0))))]);
  }
  return {views: views(), drawn: drawn()};
}"""

#: Reads the rendered page: the facts each test below asserts on.
INSPECT_JS = r"""() => {
  const main = document.querySelector('main') || document.body;
  const column = (document.querySelector('.bd-article') || main).getBoundingClientRect();
  const scrollsX = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  // The box that must fit the column: the nearest ancestor that scrolls sideways, else el.
  const box = el => {
    for (let a = el; a && a !== main; a = a.parentElement) if (scrollsX(a)) return a;
    return el;
  };
  const label = el => (el.closest('[id]') || {}).id || el.tagName.toLowerCase();
  const overflowing = sel => [...main.querySelectorAll(sel)]
      .filter(el => el.getClientRects().length > 0)
      .filter(el => box(el).getBoundingClientRect().right > column.right + 1)
      .map(el => `${sel} in #${label(el)} ends at ${Math.round(box(el).getBoundingClientRect().right)}`
                 + ` px, column ends at ${Math.round(column.right)} px`);
  const mathNodes = [...main.querySelectorAll('.math')];
  const proseText = [...main.querySelectorAll('p, li, td, th, h1, h2, h3, h4, dt, dd')]
      .filter(el => !el.closest('pre, code, .highlight'))
      .map(el => el.textContent);
  return {
    title: document.title,
    math: mathNodes.length,
    untypesetMath: mathNodes.filter(el => !el.querySelector('mjx-container'))
        .map(el => el.textContent.trim().slice(0, 60)),
    rawDollars: proseText.filter(t => t.includes('$$')).map(t => t.trim().slice(0, 80)),
    brokenImages: [...document.images].filter(img => !img.complete || img.naturalWidth === 0)
        .map(img => (img.getAttribute('src') || '').slice(0, 80)),
    // A table that fell back to a paragraph: starts with '|' and has a |---|---| row (whose
    // dashes the typographer may have turned into en or em dashes).
    rawTables: [...main.querySelectorAll('p')].map(p => p.textContent.trim())
        .filter(t => t.startsWith('|') && /^\s*\|(\s*:?[-\u2013\u2014]+:?\s*\|)+\s*$/m.test(t))
        .map(t => t.slice(0, 80)),
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: window.innerWidth,
    overflow: overflowing('table').concat(overflowing('pre'), overflowing('img')),
    hiddenGaps: [...main.querySelectorAll('.cell_output .jupyter-widgets')]
        .filter(el => getComputedStyle(el).visibility === 'hidden' && el.offsetHeight > 0)
        .map(el => `${label(el)}: ${el.offsetHeight} px`),
    widgets: main.querySelectorAll('.widget-subarea .jupyter-widgets').length,
    dropdowns: main.querySelectorAll('.widget-dropdown select').length,
    text: main.innerText.slice(0, 20000),
  };
}"""


#: Changes one control of every static calculator on the page (the first select or slider
#: whose change changes the text) and reports what the page computed and shows.
CALCULATORS_JS = r"""async () => {
  const out = [];
  const settle = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  for (const host of document.querySelectorAll('div.static-calculator')) {
    const data = JSON.parse(host.querySelector('script[type="application/json"]').textContent);
    const before = host.staticHtml;
    let changed = null;
    for (const row of host.querySelectorAll('.sc-control')) {
      const input = row.querySelector('select, input[type="range"]');
      if (!input) continue;
      const last = input.tagName === 'SELECT' ? String(input.options.length - 1) : input.max;
      const target = input.value === last ? (input.tagName === 'SELECT' ? '0' : input.min) : last;
      input.value = target;
      input.dispatchEvent(new Event(input.tagName === 'SELECT' ? 'change' : 'input', {bubbles: true}));
      await settle();
      if (host.staticHtml !== before) { changed = row.dataset.name; break; }
    }
    const cell = host.closest('.cell_output');
    const widgets = cell ? [...cell.querySelectorAll('.widget-subarea, .jupyter-widgets')] : [];
    out.push({
      calculator: data.calculator, changed, before, html: host.staticHtml,
      values: JSON.parse(host.dataset.values), constants: data.constants,
      first: Object.fromEntries(data.controls.map(c => [c.name, c.value])),
      shown: host.querySelector('.sc-text').innerText,
      visible: host.offsetParent !== null && !host.hidden,
      visibleWidgets: widgets.filter(w => w.offsetParent !== null).length,
      figure: !!host.querySelector('.sc-figure'),
      staleFigure: !!host.querySelector('.sc-figure.sc-stale'),
      canDraw: typeof StaticCalc.calculators[data.calculator].draw === 'function',
      redrawn: !!host.querySelector('.sc-figure:not([hidden]) .sc-drawn svg'),
    });
  }
  const notes = [...document.querySelectorAll('div.static-calculator-snapshot')];
  return {calculators: out, snapshots: notes.length,
          hiddenSnapshots: notes.filter(n => n.hidden || n.offsetParent === null).length};
}"""


@dataclass
class PageReport:
    """What the browser saw on one page."""
    page: str
    load_s: float = 0.0
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        pass


@pytest.fixture(scope="module")
def book_url(html: Path) -> Iterator[str]:
    """The built book served over http on a free port of 127.0.0.1 (never a fixed port)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _all_pages(html: Path) -> list[str]:
    """Every page of the built book (not the theme's or the sources' files), index first."""
    skip = {"_static", "_sources", "_images", "_downloads"}
    pages = [p.relative_to(html).as_posix() for p in html.rglob("*.html")
             if not skip & set(p.relative_to(html).parts)]
    return sorted(pages, key=lambda p: (p != "index.html", p))


def test_page_scripts_are_written_once() -> None:
    """book/_ext/book_assets.py: Sphinx 7.4 keeps a late inline script twice, once with filename
    None and once with '' (the doubled `const THEBE_JS_URL` threw on every page)."""
    import importlib.util

    from sphinx.builders.html._assets import _JavaScript

    spec = importlib.util.spec_from_file_location(
        "book_assets", REPO / "book" / "_ext" / "book_assets.py")
    assets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assets)
    body = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("_static/a.js", priority=500), _JavaScript(None, body=body),
               _JavaScript("", body=body), _JavaScript("_static/a.js", priority=800),
               _JavaScript("", body="let other = 1")]
    kept = assets._unique_scripts(scripts)
    assert [(str(s.filename or ""), s.attributes.get("body", "")) for s in kept] == [
        ("_static/a.js", ""), ("", body), ("", "let other = 1")]
    assert kept[0].priority == 500


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _launch_options() -> dict[str, Any]:
    """Debian's chromium when installed (make chromium), else Playwright's own if downloaded."""
    exe = _chromium()
    return {"executable_path": exe, "args": ["--no-sandbox"]} if exe else {}


REDIRECT = re.compile(r"""<meta[^>]+http-equiv=["']?refresh""", re.IGNORECASE)


def _visit(page: Any, html: Path, url: str, name: str, report: PageReport) -> None:
    start = time.perf_counter()
    page.goto(url + name, wait_until="load")
    if REDIRECT.search((html / name).read_text(errors="replace")):  # index.html -> intro.html
        page.wait_for_url(lambda u: u != url + name)
        page.wait_for_load_state("load")
    settled = page.evaluate(SETTLE_JS, SETTLE_TIMEOUT_MS)
    report.facts = page.evaluate(INSPECT_JS)
    report.facts["settled"] = settled
    report.facts["static"] = page.evaluate(CALCULATORS_JS)
    report.load_s = time.perf_counter() - start
    if name.startswith("notebooks/"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{Path(name).stem}.png"), full_page=True)
    hosts = page.locator("div.static-calculator")
    for i, calc in enumerate(report.facts["static"]["calculators"]):  # after their change
        SHOTS.mkdir(parents=True, exist_ok=True)
        hosts.nth(i).screenshot(path=str(SHOTS / f"calculator_{calc['calculator']}.png"))


@pytest.fixture(scope="module")
def browser_pass(html: Path, book_url: str) -> dict[str, Any]:
    """Load every page once, in sequence, in one browser and one context; record what happens.

    Returns {"pages": {name: PageReport}, "seconds": wall time of the whole pass}."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    host = book_url.rstrip("/")
    reports: dict[str, PageReport] = {}
    current: list[PageReport] = []  # the report the event handlers write to

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            current[0].console_errors.append(f"{msg.text} ({msg.location.get('url', '')})")

    def on_request(request: Any) -> None:
        url = request.url
        if not (url.startswith(host + "/") or url.startswith(("data:", "blob:", "about:"))):
            current[0].foreign_requests.append(url)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            current[0].failed_requests.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        # ERR_ABORTED: a load cut short by our next navigation (the favicon), or the tail of a
        # 4xx/5xx that on_response has already recorded.
        if "ERR_ABORTED" not in (request.failure or ""):
            current[0].failed_requests.append(f"{request.failure} {request.url}")

    start = time.perf_counter()
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(**_launch_options())
        except sync_api.Error as err:
            pytest.skip(f"no Chromium for Playwright (make chromium installs one): {err}")
        context = browser.new_context(viewport=VIEWPORT)
        # Anything not served by our server is refused, so a page cannot reach the network.
        context.route(re.compile(r"^(?!" + re.escape(host) + r"/).*"),
                      lambda route: route.abort())
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda err: current[0].page_errors.append(str(err)))
        page.on("request", on_request)
        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        for name in _all_pages(html):
            current[:] = [PageReport(name)]
            _visit(page, html, book_url, name, current[0])
            reports[name] = current[0]
        browser.close()
    return {"pages": reports, "seconds": time.perf_counter() - start}


def _offenders(browser_pass: dict[str, Any], what: str) -> list[str]:
    """`page: item` for every page whose report lists something under `what`."""
    out = []
    for name, report in browser_pass["pages"].items():
        items = getattr(report, what, None)
        if items is None:
            items = report.facts.get(what, [])
        out += [f"{name}: {item}" for item in items]
    return out


def test_browser_visits_every_toc_page(html: Path, browser_pass: dict[str, Any]) -> None:
    visited = set(browser_pass["pages"])
    missing = [p for p in _toc_pages() if f"{p}.html" not in visited]
    assert not missing, f"pages in the toc that the browser pass did not load: {missing}"
    assert "index.html" in visited


def test_browser_pass_fits_its_budget(browser_pass: dict[str, Any]) -> None:
    slowest = max(browser_pass["pages"].values(), key=lambda r: r.load_s)
    assert browser_pass["seconds"] <= BROWSER_BUDGET_S, (
        f"the browser pass took {browser_pass['seconds']:.0f} s (budget {BROWSER_BUDGET_S:.0f} s);"
        f" slowest page {slowest.page}: {slowest.load_s:.1f} s")


def test_no_console_errors(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "console_errors")
    assert not bad, "console errors:\n" + "\n".join(bad[:30])


def test_no_uncaught_exceptions(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "page_errors")
    assert not bad, "uncaught JavaScript exceptions:\n" + "\n".join(bad[:30])


def test_no_request_leaves_localhost(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "foreign_requests")
    assert not bad, "requests to other hosts:\n" + "\n".join(bad[:30])


def test_no_failed_request(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "failed_requests")
    assert not bad, "requests that failed (404s, aborted):\n" + "\n".join(bad[:30])


def test_math_is_typeset(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "untypesetMath") + _offenders(browser_pass, "rawDollars")
    assert not bad, "math left as TeX source:\n" + "\n".join(bad[:30])
    chapters_with_math = [n for n, r in browser_pass["pages"].items()
                          if n.startswith("notebooks/") and r.facts["math"] > 0]
    assert chapters_with_math, "no chapter page has any typeset math: is MathJax loading?"


def test_every_image_loads(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "brokenImages")
    assert not bad, "images that did not load:\n" + "\n".join(bad[:30])


def test_no_raw_markdown_table(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "rawTables")
    assert not bad, "markdown tables rendered as pipe text:\n" + "\n".join(bad[:30])


def test_tables_and_code_fit_or_scroll_in_their_box(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "overflow")
    bad += [f"{n}: the page is {r.facts['pageWidth']} px wide in a {r.facts['viewportWidth']} px"
            " window" for n, r in browser_pass["pages"].items()
            if r.facts["pageWidth"] > r.facts["viewportWidth"]]
    assert not bad, "content wider than the text column:\n" + "\n".join(bad[:30])


def test_no_blank_gaps_from_hidden_widgets(browser_pass: dict[str, Any]) -> None:
    bad = _offenders(browser_pass, "hiddenGaps")
    assert not bad, "hidden widgets (tqdm leave=False) still taking space:\n" + "\n".join(bad)


def test_every_widget_view_is_drawn(browser_pass: dict[str, Any]) -> None:
    bad = [f"{n}: {r.facts['settled']['drawn']} of {r.facts['settled']['views']} widget views"
           for n, r in browser_pass["pages"].items()
           if r.facts["settled"]["drawn"] < r.facts["settled"]["views"]]
    assert not bad, "the widget manager did not draw every widget:\n" + "\n".join(bad)


def test_introduction_renders_its_widget_and_screenshots(browser_pass: dict[str, Any]) -> None:
    intro = browser_pass["pages"]["notebooks/00_introduction.html"].facts
    assert intro["dropdowns"] >= 1, "the hardware explorer's dropdowns were not rendered"
    assert "H100-SXM" in intro["text"]
    for name in browser_pass["pages"]:
        if name.startswith("notebooks/"):
            shot = SHOTS / f"{Path(name).stem}.png"
            assert shot.is_file() and shot.stat().st_size > 50_000, f"{shot} is missing or blank"


# --------------------------------------------------------------------------------------------
# Static calculators (issue #17): they recompute in the page, as labutils does.
# --------------------------------------------------------------------------------------------


def _static_calculators(browser_pass: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, calc) for name, report in browser_pass["pages"].items()
            for calc in report.facts["static"]["calculators"]]


def _words(text: str) -> str:
    """``text`` without whitespace (innerText puts tabs and newlines between table cells)."""
    return "".join(text.split())


def test_every_static_calculator_is_in_the_book(browser_pass: dict[str, Any]) -> None:
    from labutils.widgets.static import CONSTANTS

    found = {calc["calculator"] for _, calc in _static_calculators(browser_pass)}
    assert found == set(CONSTANTS), f"static calculators not on any page: {set(CONSTANTS) - found}"


def test_static_calculators_recompute_as_labutils_does(browser_pass: dict[str, Any]) -> None:
    """The page starts on the widget's first setting with labutils' text; one control changed
    per calculator: the text changed, it is exactly labutils' text for the new setting, and the
    page shows it (whitespace aside)."""
    from labutils.widgets.static_reference import reference_html

    for page, calc in _static_calculators(browser_pass):
        where = f"{page}: {calc['calculator']}"
        assert calc["visible"], f"{where}: the static calculator is not shown"
        assert calc["changed"], f"{where}: no control changed its text"
        assert calc["html"] != calc["before"]
        first = reference_html(calc["calculator"], calc["first"], calc["constants"])
        assert calc["before"] == first, (
            f"{where}: first setting\npage:     {calc['before']}\nlabutils: {first}")
        want = reference_html(calc["calculator"], calc["values"], calc["constants"])
        assert calc["html"] == want, (
            f"{where} at {calc['values']}:\npage:     {calc['html']}\nlabutils: {want}")
        plain = html_lib.unescape(re.sub(r"<[^>]+>", "", want))
        assert _words(calc["shown"]) == _words(plain), f"{where}: shows {calc['shown']!r}"
        shot = SHOTS / f"calculator_{calc['calculator']}.png"
        assert shot.is_file() and shot.stat().st_size > 5_000, f"{shot} is missing or blank"


def test_frozen_widgets_are_hidden_and_snapshots_say_so(browser_pass: dict[str, Any]) -> None:
    """The widget snapshot beside a static calculator is hidden, its figure is redrawn (or, with
    no SVG version, Python's first figure dimmed) once the setting differs, and every calculator
    without a static version says it is a snapshot."""
    for page, calc in _static_calculators(browser_pass):
        assert calc["visibleWidgets"] == 0, f"{page}: {calc['calculator']}'s widget still shows"
        if calc["figure"]:  # redrawn in the page where it can be, else dimmed
            state = (calc["redrawn"], calc["staleFigure"])
            assert state == ((True, False) if calc["canDraw"] else (False, True)), (
                f"{page}: {calc['calculator']}'s figure after a change: redrawn, dimmed = {state}")
    hidden = {n: r.facts["static"]["hiddenSnapshots"] for n, r in browser_pass["pages"].items()
              if r.facts["static"]["hiddenSnapshots"]}
    assert not hidden, f"snapshot notices left hidden: {hidden}"
    assert sum(r.facts["static"]["snapshots"] for r in browser_pass["pages"].values()) >= 1
