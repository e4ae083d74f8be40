"""Load benchmark results recorded on real GPUs (JSON files under ``labutils/data/gpu/``)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

RECORDINGS_DIR = Path(__file__).resolve().parent.parent / "data" / "gpu"
REQUIRED_KEYS = ("benchmark", "device", "torch", "cuda", "driver", "date", "command", "results")


def available() -> list[str]:
    """Names of the recordings shipped with this checkout (file stems)."""
    return sorted(p.stem for p in RECORDINGS_DIR.glob("*.json"))


def check_record(data: object, where: str) -> dict[str, Any]:
    """``data`` if it is a GPU measurement with its provenance; else a ValueError naming ``where``.

    Refused: a non-object, missing provenance fields (:data:`REQUIRED_KEYS`), an empty device
    name, a date that is not ISO ``YYYY-MM-DD`` and a CPU rehearsal (``results["rehearsal"]``
    true: tiny sizes, meaningless timings).
    """
    if not isinstance(data, dict):
        raise ValueError(f"recording {where} must hold a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"recording {where} lacks provenance fields {missing}")
    if not (isinstance(data["device"], str) and data["device"].strip()):
        raise ValueError(f"recording {where} has no device name (provenance)")
    try:
        datetime.date.fromisoformat(str(data["date"]))
    except ValueError:
        raise ValueError(f"recording {where} has date {data['date']!r}, not YYYY-MM-DD "
                         "(provenance)") from None
    if isinstance(data["results"], dict) and data["results"].get("rehearsal"):
        raise ValueError(f"recording {where} is a CPU rehearsal (tiny sizes, meaningless "
                         "timings), not a GPU measurement")
    return data


def recorded(name: str) -> dict[str, Any]:
    """The recording ``name`` (e.g. "matmul"), checked to carry its provenance."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a recording's file stem such as 'matmul', got {name!r}")
    path = RECORDINGS_DIR / f"{name}.json"
    if not path.is_file():
        have = ", ".join(available()) or "none yet"
        raise FileNotFoundError(
            f"no GPU recording named {name!r} (available: {have}); record one on a GPU with "
            f"`python -m labutils.gpu.bench {name} --out labutils/data/gpu/`"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"recording {path.name} is not valid JSON: {err}") from None
    return check_record(data, path.name)


def provenance(data: dict[str, Any]) -> str:
    """One line saying where and when a recording was measured."""
    return (f"Recorded on {data['device']} with torch {data['torch']}, CUDA {data['cuda']}, "
            f"driver {data['driver']}, on {data['date']} by `{data['command']}`")
