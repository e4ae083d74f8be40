"""The one pattern every calculator follows: controls → a pure ``render`` → HTML text and a PNG.

Why this shape (issue #17). JupyterLab 4.6 sends widget messages on a kernel subshell, and
ipykernel 7 can handle an ``Output`` widget's state echo while a callback is still drawing with
pyplot, so two renders overlap and the figure comes back blank or as a traceback. Here nothing is
captured: ``render(values)`` is a pure function of the controls' values that returns
``(html, figure)``; the figure is a :class:`matplotlib.figure.Figure` (no pyplot, no global
state) saved to PNG bytes for a ``widgets.Image``, and the text goes to a ``widgets.HTML``. A
callback only assigns those two traits, so overlapping callbacks cannot garble each other.

In the static HTML book there is no kernel. ``static="<name>"`` also writes a hidden copy of the
controls and constants (:mod:`labutils.widgets.static`) that the book's JavaScript
(``book/_static/calculators/<name>.js``) recomputes in the page; without it the book labels the
widget as a snapshot and says how to run it live.

A bad setting (a ``ValueError`` or ``TypeError`` from labutils, which names the argument and its
allowed range) is shown as a red message in the text, never as a traceback; the last figure is
hidden until a valid setting draws a new one.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import ipywidgets as widgets
from matplotlib.figure import Figure

from labutils.widgets.static import ERROR_STYLE, payload, show, snapshot_markup, static_markup

Render = Callable[[dict[str, object]], tuple[str, Figure | None]]
PNG_DPI = 90  # dots per inch of the PNG a figure is saved to


def figure_png(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    """``fig`` as PNG bytes (``dpi`` dots per inch), drawn with the Agg canvas, no pyplot.

    The box is tight around everything drawn, as the inline backend's is, so a legend placed
    outside the axes is kept."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself as a PNG in a notebook
    (``display(fig)``, or ``fig`` as a cell's last expression) without pyplot; pyplot's ``show``
    does not know it."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def error_html(err: Exception) -> str:
    """A red, HTML-escaped message for a rejected setting."""
    return f"<span style='{ERROR_STYLE}'>{html.escape(str(err))}</span>"


def html_table(rows: list[tuple[str, object]], floatfmt: str = ",.1f",
               header: tuple[str, str] | None = None) -> str:
    """A two-column HTML table of (quantity, value) rows, HTML-escaped; floats are formatted
    with ``floatfmt`` (as :func:`labutils.tables.markdown_table` does), the rest with ``str``."""
    def cell(value: object) -> str:
        return html.escape(format(value, floatfmt) if isinstance(value, float) else str(value))

    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                   f"<td style='text-align:right'>{cell(v)}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


@dataclass(frozen=True)
class Calculator:
    """Controls wired to a pure ``render``; lay out ``controls``, ``text`` and ``image`` freely.

    ``image`` is None for a text-only calculator. :meth:`refresh` re-renders from the current
    values; every control's ``value`` change calls it. A setting already shown is not drawn
    again, and :meth:`hold` draws once after several controls change together.
    """

    controls: Mapping[str, widgets.ValueWidget]
    render: Render
    text: widgets.HTML
    image: widgets.Image | None
    _state: dict = field(default_factory=lambda: {"held": 0, "shown": None}, repr=False)

    def values(self) -> dict[str, object]:
        """The current value of every control, by the name it was given."""
        return {name: control.value for name, control in self.controls.items()}

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls inside ``with calc.hold():``; one render follows."""
        self._state["held"] += 1
        try:
            yield
        finally:
            self._state["held"] -= 1
            self.refresh()

    def refresh(self, *_: object) -> None:
        """Render the current values into ``text`` (and ``image``); errors become red text."""
        values = self.values()
        if self._state["held"] or values == self._state["shown"]:
            return
        self._state["shown"] = values
        try:
            body, fig = self.render(values)
        except (ValueError, TypeError) as err:  # labutils' argument checks
            self.text.value = error_html(err)
            if self.image is not None:
                self.image.layout.display = "none"
            return
        self.text.value = body
        if self.image is not None:
            if fig is None:
                self.image.layout.display = "none"
            else:
                self.image.value = figure_png(fig)
                self.image.layout.display = None


def calculator(controls: Mapping[str, widgets.ValueWidget], render: Render, *,
               figure: bool = True, static: str | None = None,
               static_data: Mapping[str, object] | None = None) -> Calculator:
    """Wire ``controls`` (name → widget) to ``render`` and draw the first setting.

    ``figure=False`` makes a text-only calculator (``render`` then returns ``(html, None)``).
    Observers that keep controls consistent with each other (say, a dtype list that follows
    the accelerator) must be registered on the controls *before* this call, so that they run
    before the re-render.

    ``static`` names the calculator's JavaScript twin for the static book (a key of
    :data:`labutils.widgets.static.CONSTANTS`; ``static_data``: constants only the caller
    knows, such as the scaling explorer's laws). In a kernel this displays hidden markup for
    the book before the widget (JupyterLab shows nothing of it); None displays a hidden
    "snapshot" notice instead.
    """
    image = widgets.Image(format="png") if figure else None
    calc = Calculator(dict(controls), render, widgets.HTML(), image)
    for control in calc.controls.values():
        control.observe(calc.refresh, names="value")
    calc.refresh()
    if static is None:
        show(snapshot_markup())
    else:  # the book shows the first setting's figure, labelled, beside the recomputed text
        drawn = image is not None and image.layout.display != "none"
        show(static_markup(payload(static, controls, static_data,
                                   figure_png=image.value if drawn else b"")))
    return calc
