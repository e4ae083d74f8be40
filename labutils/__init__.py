"""labutils: the tested helper package of the course-book "Pretraining at Scale".

Notebooks narrate; labutils computes. Every formula, simulator, kernel and widget the book uses
lives here, with unit tests in ``tests/``. Modules are named after ideas, not chapters:
``labutils.flops``, ``labutils.scaling``, ``labutils.memory``, ``labutils.parallel.data.zero``...
"""

from __future__ import annotations

import os
import random
import time

__version__ = "0.1.0"

_IMPORTED_AT_S = time.perf_counter()


def seconds_since_import() -> float:
    """Wall-clock seconds since ``labutils`` was first imported in this process.

    Every chapter imports labutils in its first cell and glues this value in its last one, so the
    "Runtime" line at the top of each page is the time the page took to execute, measured, not typed.
    """
    return time.perf_counter() - _IMPORTED_AT_S


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a notebook gives the same numbers each run."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # inherited by processes started afterwards
