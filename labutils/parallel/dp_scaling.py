"""Moved to :mod:`labutils.parallel.data.cost`. This path re-exports it for ``labutils.plan``,
which still imports it here; import the new one."""

from labutils.parallel.data.cost import *  # noqa: F403
