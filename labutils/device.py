"""What this machine is: a CUDA GPU or a CPU. Notebooks print ``describe()`` in their setup cell."""

from __future__ import annotations

import os
import platform

import torch


def has_cuda() -> bool:
    """True when PyTorch sees a usable CUDA device. GPU cells run live only then."""
    return torch.cuda.is_available()


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def datasheet_label(device_name: str) -> str:
    """Which :mod:`labutils.hardware` datasheet an exact CUDA device name maps to, in words:
    "datasheet H100-SXM", or "no labutils.hardware datasheet" for a GPU without one."""
    from labutils import hardware

    try:
        return f"datasheet {hardware.spec_for_device(device_name).name}"
    except ValueError:
        return "no labutils.hardware datasheet: pass a peak explicitly"


def describe() -> str:
    """One line naming the device the notebook runs on, with torch (and CUDA) versions.

    On a GPU: its name, the :mod:`labutils.hardware` datasheet it maps to, and the memory CUDA
    reports in GiB (2**30 bytes; a little under nvidia-smi's total, which includes the driver's
    reservation). On a CPU: the model, the cores this process may use and torch's thread count.
    """
    if has_cuda():
        i = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(i)
        return (f"GPU: {props.name} ({datasheet_label(props.name)}), "
                f"{props.total_memory / 2**30:.1f} GiB, "
                f"{torch.cuda.device_count()} device(s); torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"CPU: {cpu_model()}, {cores} core(s) available, {torch.get_num_threads()} torch "
            f"threads; torch {torch.__version__} (no CUDA: GPU cells show recorded results)")
