"""Moved to :mod:`labutils.parallel.pipeline.schedule` and :mod:`labutils.parallel.pipeline.cost`.
This path re-exports both for the modules that still import it here (``labutils.plan``,
``labutils.widgets.static``); import the new ones."""

from labutils.parallel.pipeline.cost import *  # noqa: F403
from labutils.parallel.pipeline.schedule import *  # noqa: F403
