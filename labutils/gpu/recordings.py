"""Load benchmark results recorded on real GPUs (JSON files under ``labutils/data/gpu/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORDINGS_DIR = Path(__file__).resolve().parent.parent / "data" / "gpu"
REQUIRED_KEYS = ("benchmark", "device", "torch", "cuda", "driver", "date", "command", "results")


def available() -> list[str]:
    """Names of the recordings shipped with this checkout (file stems)."""
    return sorted(p.stem for p in RECORDINGS_DIR.glob("*.json"))


def recorded(name: str) -> dict[str, Any]:
    """The recording ``name`` (e.g. "matmul"), checked to carry its provenance."""
    path = RECORDINGS_DIR / f"{name}.json"
    if not path.is_file():
        have = ", ".join(available()) or "none yet"
        raise FileNotFoundError(
            f"no GPU recording named {name!r} (available: {have}); record one on a GPU with "
            f"`python -m labutils.gpu.bench {name} --out labutils/data/gpu/`"
        )
    data = json.loads(path.read_text())
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"recording {path.name} lacks provenance fields {missing}")
    if isinstance(data["results"], dict) and data["results"].get("rehearsal"):
        raise ValueError(f"recording {path.name} is a CPU rehearsal (tiny sizes, meaningless "
                         "timings), not a GPU measurement")
    return data


def provenance(data: dict[str, Any]) -> str:
    """One line saying where and when a recording was measured."""
    return (f"Recorded on {data['device']} with torch {data['torch']}, CUDA {data['cuda']}, "
            f"driver {data['driver']}, on {data['date']} by `{data['command']}`")
