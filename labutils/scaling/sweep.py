"""Train a sweep of tiny GPTs on a Markov source with a known entropy and record (N, D, C, loss).

This is the "lab" of Chapter 2: several model sizes at several compute budgets (an IsoFLOP grid,
Hoffmann et al. 2022, Sec. 3.2), on data whose irreducible loss is known exactly
(:mod:`labutils.markov`), so the fitted E can be compared with the truth.

The shipped recording ``labutils/data/scaling_sweep.json`` was made with (the defaults)::

    python -m labutils.scaling.sweep --out labutils/data/scaling_sweep.json --vocab-size 256 \
        --order 1 --concentration 1.0 --budgets 3e10 1e11 3e11 1e12 --max-tokens-per-param 600

and stores its own provenance (command, date, torch version, CPU, seed, wall time). The notebook
re-fits it live, and runs a much smaller sweep live with :func:`run_sweep`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from labutils.markov import MarkovConfig, make_source
from labutils.model import TransformerConfig, count_params
from labutils.scaling.law import FLOPS_PER_PARAM_TOKEN
from labutils.train import TrainConfig, train
from labutils.validate import positive

DEFAULT_SWEEP_PATH = Path(__file__).resolve().parent.parent / "data" / "scaling_sweep.json"
# An earlier recording on an order-2 source (32 tokens), where the Chinchilla law breaks down; it
# was written as scaling_sweep.json by the command in its provenance and renamed afterwards.
ORDER2_SWEEP_PATH = DEFAULT_SWEEP_PATH.with_name("scaling_sweep_order2.json")
DEFAULT_WIDTHS = (8, 12, 16, 24, 32, 48, 64)  # d_model of the swept models (2 layers, head size 8)
DEFAULT_BUDGETS_FLOPS = (3e10, 1e11, 3e11, 1e12)  # C of each IsoFLOP curve
SEQ_LEN = 32  # tokens per training window
N_LAYERS = 2
HEAD_DIM = 8


def model_config(d_model: int, vocab_size: int, seq_len: int = SEQ_LEN, n_layers: int = N_LAYERS) -> TransformerConfig:
    """The swept model family: ``n_layers`` blocks, head size 8, GELU MLP, learned positions."""
    return TransformerConfig(vocab_size=vocab_size, seq_len=seq_len, d_model=d_model,
                             n_layers=n_layers, n_heads=max(1, d_model // HEAD_DIM),
                             name=f"d{d_model}")


@dataclass(frozen=True)
class SweepRun:
    """One trained model. ``flops`` = 6·n_params·tokens (C = 6ND); losses in nats/token."""

    d_model: int
    n_layers: int
    n_params: int
    budget_flops: float  # the IsoFLOP curve this run belongs to
    tokens: int  # D actually trained on (whole steps)
    flops: float  # 6·N·D for the tokens actually trained on
    eval_loss: float
    wall_s: float


def plan_runs(widths: tuple[int, ...], budgets_flops: tuple[float, ...], vocab_size: int,
              min_tokens_per_param: float = 2.0, max_tokens_per_param: float = 600.0,
              seq_len: int = SEQ_LEN) -> list[tuple[int, float, int]]:
    """(d_model, budget C, tokens D = C/(6N)) for each width and budget, keeping only runs whose
    tokens-per-parameter ratio lies in [min, max] (very over- or under-trained runs waste time)."""
    if not widths or not budgets_flops:
        raise ValueError("widths and budgets_flops must be non-empty")
    lo = positive("min_tokens_per_param", min_tokens_per_param)
    hi = positive("max_tokens_per_param", max_tokens_per_param)
    if lo > hi:
        raise ValueError(f"min_tokens_per_param={lo:g} must be <= max_tokens_per_param={hi:g}")
    runs = []
    for c in budgets_flops:
        positive("budgets_flops[i]", c)
        for d in widths:
            n = count_params(model_config(d, vocab_size, seq_len))
            tokens = int(c / (FLOPS_PER_PARAM_TOKEN * n))  # D = C/(6N)
            if lo <= tokens / n <= hi:
                runs.append((d, float(c), tokens))
    if not runs:
        raise ValueError("no (width, budget) pair has a tokens-per-parameter ratio in range")
    return runs


def run_sweep(widths: tuple[int, ...] = DEFAULT_WIDTHS,
              budgets_flops: tuple[float, ...] = DEFAULT_BUDGETS_FLOPS,
              source: MarkovConfig = MarkovConfig(), seed: int = 0, batch_size: int = 32,
              lr: float = 3e-3, train_tokens: int = 16 * 2**20, eval_batches: int = 32,
              min_tokens_per_param: float = 2.0, max_tokens_per_param: float = 600.0,
              threads: int = 1, progress: bool = True,
              on_run: "Callable[[list[SweepRun]], None] | None" = None,
              command: str | None = None) -> dict:
    """Train every planned run and return the record (a JSON-ready dict, see module docstring).

    ``train_tokens`` fresh tokens are sampled once and shared by all runs (stored as uint8); the
    held-out set is sampled separately and every run is evaluated on the same windows.
    ``on_run(runs_so_far)`` is called after each finished run (the CLI saves progress with it).
    ``command`` is stored as provenance (the CLI passes its command line; by default the call).
    """
    if command is None:
        command = (f"labutils.scaling.sweep.run_sweep(widths={tuple(widths)}, "
                   f"budgets_flops={tuple(budgets_flops)}, source={source}, seed={seed})")
    from tqdm.auto import tqdm

    src = make_source(source)
    n_streams = 256
    data = src.sample(n_streams, max(train_tokens // n_streams, SEQ_LEN + 1), seed=seed + 1)
    data = data.to(torch.uint8 if src.vocab_size <= 256 else torch.int16)
    eval_data = src.sample(64, 4096, seed=seed + 2)
    plan = plan_runs(tuple(widths), tuple(budgets_flops), src.vocab_size,
                     min_tokens_per_param, max_tokens_per_param)
    t0 = time.perf_counter()
    runs: list[SweepRun] = []
    for d, c, tokens in tqdm(plan, desc="sweep", disable=not progress):
        cfg = model_config(d, src.vocab_size)
        tcfg = TrainConfig(tokens=tokens, batch_size=batch_size, lr=lr, seed=seed,
                           eval_batches=eval_batches, threads=threads, progress=progress,
                           label=f"d={d} C={c:.0e}")
        r = train(cfg, tcfg, data, eval_data)
        runs.append(SweepRun(d_model=d, n_layers=cfg.n_layers, n_params=r.n_params,
                             budget_flops=c, tokens=r.tokens_seen, flops=r.flops,
                             eval_loss=r.eval_loss, wall_s=r.wall_s))
        if on_run is not None:
            on_run(list(runs))
    return {
        "description": "Tiny GPTs (labutils.nn.GPT) trained on a random order-k Markov source; "
                       "eval_loss is the mean next-token loss (nats) on held-out windows.",
        "source": {**asdict(source), "entropy_rate_nats": src.entropy_rate(),
                   "window_entropy_nats": src.window_entropy(SEQ_LEN), "seq_len": SEQ_LEN},
        "train": {"batch_size": batch_size, "lr": lr, "seed": seed, "train_tokens": int(data.numel()),
                  "eval_batches": eval_batches, "schedule": "AdamW, 5% warm-up, cosine to 10%",
                  "threads": threads},
        "provenance": cpu_provenance(time.perf_counter() - t0, command),
        "runs": [asdict(r) for r in runs],
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_provenance(wall_s: float, command: str) -> dict:
    """Where and how a CPU recording was made: command, date, versions, CPU, wall time."""
    return {
        "command": command,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "wall_s": round(wall_s, 1),
    }


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep record: one entry per run in each array (N params, D tokens, C FLOPs, nats)."""

    n_params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    budget_flops: np.ndarray
    loss: np.ndarray
    entropy_rate: float  # exact entropy rate of the source, nats/token
    window_entropy: float  # lowest achievable mean loss over a training window, nats/token
    record: dict  # the whole JSON record (provenance, source and training settings)


def as_sweep(record: dict) -> Sweep:
    """Turn a record from :func:`run_sweep` (or its JSON) into arrays."""
    if not isinstance(record, dict) or not {"runs", "source"} <= set(record):
        raise TypeError("record must be a dict from run_sweep (or its JSON) with 'runs' and "
                        f"'source', got {type(record).__name__}")
    runs = record["runs"]
    if not runs:
        raise ValueError("the sweep record has no runs")
    col = lambda k: np.array([r[k] for r in runs], dtype=float)  # noqa: E731
    return Sweep(n_params=col("n_params"), tokens=col("tokens"), flops=col("flops"),
                 budget_flops=col("budget_flops"), loss=col("eval_loss"),
                 entropy_rate=float(record["source"]["entropy_rate_nats"]),
                 window_entropy=float(record["source"]["window_entropy_nats"]), record=record)


def load_sweep(path: str | os.PathLike | None = None) -> Sweep:
    """Load a recorded sweep (default: the shipped ``labutils/data/scaling_sweep.json``)."""
    p = Path(path) if path is not None else DEFAULT_SWEEP_PATH
    return as_sweep(json.loads(p.read_text()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_SWEEP_PATH, help="JSON file to write")
    ap.add_argument("--widths", type=int, nargs="+", default=list(DEFAULT_WIDTHS))
    ap.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS_FLOPS),
                    help="compute budgets C in FLOPs (C = 6ND)")
    ap.add_argument("--vocab-size", type=int, default=MarkovConfig.vocab_size)
    ap.add_argument("--order", type=int, default=MarkovConfig.order)
    ap.add_argument("--concentration", type=float, default=MarkovConfig.concentration)
    ap.add_argument("--source-seed", type=int, default=MarkovConfig.seed)
    ap.add_argument("--min-tokens-per-param", type=float, default=2.0)
    ap.add_argument("--max-tokens-per-param", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial.json")

    def save_progress(runs: list[SweepRun]) -> None:  # so a long sweep never loses finished runs
        partial.write_text(json.dumps([asdict(r) for r in runs], indent=1) + "\n")
        print(f"{len(runs)} runs done; last: {asdict(runs[-1])}", flush=True)

    cli = "python -m labutils.scaling.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    source = MarkovConfig(vocab_size=args.vocab_size, order=args.order,
                          concentration=args.concentration, seed=args.source_seed)
    record = run_sweep(widths=tuple(args.widths), budgets_flops=tuple(args.budgets), seed=args.seed,
                       source=source, min_tokens_per_param=args.min_tokens_per_param,
                       max_tokens_per_param=args.max_tokens_per_param,
                       command=cli,
                       batch_size=args.batch_size, lr=args.lr, threads=args.threads,
                       progress=not args.no_progress, on_run=save_progress)
    partial.unlink(missing_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {len(record['runs'])} runs to {args.out} in {record['provenance']['wall_s']} s")


if __name__ == "__main__":
    main()
