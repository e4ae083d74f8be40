"""Moved to :mod:`labutils.parallel.tensor.cost`. This path re-exports it for the modules that
still import it here (``labutils.plan``, ``labutils.widgets.static``); import the new one."""

from labutils.parallel.tensor.cost import *  # noqa: F403
