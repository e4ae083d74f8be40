"""GPU work: benchmarks that run on real GPUs, and the recordings they leave for CPU readers.

When ``labutils.device.has_cuda()`` is false, GPU cells call :func:`recorded` to show results that
``python -m labutils.gpu.bench`` measured on real hardware, and :func:`provenance` to label them
with device, software versions and date.
"""

from labutils.gpu.recordings import RECORDINGS_DIR, available, check_record, provenance, recorded

__all__ = ["RECORDINGS_DIR", "available", "check_record", "provenance", "recorded"]
