"""Moved to :mod:`labutils.parallel.context` (``sharding``, ``ring``, ``workers``, ``cost``).
This path re-exports them for the modules that still import it here (``labutils.plan``, the
static calculators' test); import the new ones."""

from labutils.parallel.context.cost import *  # noqa: F403
from labutils.parallel.context.ring import *  # noqa: F403
from labutils.parallel.context.sharding import *  # noqa: F403
from labutils.parallel.context.workers import *  # noqa: F403
