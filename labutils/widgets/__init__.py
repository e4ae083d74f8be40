"""ipywidgets front-ends. Each submodule builds the calculator of one idea (``hardware``,
``flops``, ``scaling``...) from tested labutils functions; the callbacks compute nothing themselves.

All of them follow one pattern, :func:`labutils.widgets.calculator.calculator`: the module keeps
its controls and a pure ``render(values) -> (html, figure)``; the figure is a matplotlib
``Figure`` saved to PNG for a ``widgets.Image`` and the text goes to a ``widgets.HTML`` (no pyplot,
no ``Output`` widget: those raced in JupyterLab 4.6 with ipykernel 7, issue #17).
"""
