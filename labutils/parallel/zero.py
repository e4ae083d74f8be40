"""Moved to :mod:`labutils.parallel.data.zero` (the engine) and
:mod:`labutils.parallel.data.zero_workers` (the runs). This path re-exports both for Chapter 4,
which still imports it here; import the new ones."""

from labutils.parallel.data.zero import *  # noqa: F403
from labutils.parallel.data.zero_workers import *  # noqa: F403
