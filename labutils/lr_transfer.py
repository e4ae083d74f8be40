"""Does the best learning rate transfer across widths? An LR sweep under SP and muP (Chapter 10).

Train the reference GPT at several widths and a grid of peak LRs (powers of 2), once under the
standard parametrization and once under muP (:mod:`labutils.mup`), on the order-1 Markov source
of chapter 2, and record each run's held-out loss. Under SP the best LR moves with width; under
muP it should stay put (Yang et al. 2022, "Tensor Programs V", Fig. 1 and Sec. 6.1).

The shipped recording ``labutils/data/lr_transfer.json`` was made with (widths 64 to 512, LRs
2^-12 to 2^-4, 200 steps of 16 × 32 tokens, one torch thread per run)::

    python -m labutils.lr_transfer --widths 64 128 256 512 --threads 1 --out <file>

and stores its provenance (command, date, torch version, CPU, wall time). The notebook plots it
and runs a smaller sweep live (:data:`LIVE`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from labutils.markov import MarkovConfig, make_source
from labutils.model import TransformerConfig
from labutils.mup import Parametrization, check_widths, mup, sp, width_family_config
from labutils.scaling.sweep import cpu_provenance
from labutils.train import TrainConfig, train
from labutils.validate import integer

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "lr_transfer.json"
PARAMETRIZATIONS = ("SP", "muP")


@dataclass(frozen=True)
class TransferConfig:
    """A width × LR grid. Widths are d_model (features); LRs are 2**lr_log2 (AdamW peak LR)."""

    widths: tuple[int, ...] = (64, 128, 256)  # the first is the base (proxy) width
    lr_log2: tuple[int, ...] = tuple(range(-12, -3))  # 2^-12 ... 2^-4
    n_heads: int = 4  # fixed: head size grows with width, as in the coordinate check
    n_layers: int = 2
    vocab_size: int = 64
    order: int = 1  # of the Markov source
    seq_len: int = 32
    batch_size: int = 16
    steps: int = 200  # optimizer steps per run (cosine with 5 % warm-up, to 10 % of the peak)
    seed: int = 0
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_widths(self.widths, self.n_heads)
        if not isinstance(self.lr_log2, tuple) or len(self.lr_log2) < 3:
            raise ValueError(f"lr_log2 must be a tuple of at least 3 exponents, got {self.lr_log2!r}")
        for e in self.lr_log2:
            integer("lr_log2[i]", e, -30, 0)
        if list(self.lr_log2) != sorted(set(self.lr_log2)):
            raise ValueError(f"lr_log2 must be strictly increasing, got {self.lr_log2!r}")
        for f in ("n_heads", "n_layers", "seq_len", "batch_size", "steps"):
            integer(f, getattr(self, f), 1)
        integer("vocab_size", self.vocab_size, 2, 4096)
        integer("order", self.order, 1, 3)
        integer("seed", self.seed, 0)

    def parametrization(self, name: str) -> Parametrization:
        """SP or muP with this grid's base width and base head size."""
        if name not in PARAMETRIZATIONS:
            raise ValueError(f"name must be one of {PARAMETRIZATIONS}, got {name!r}")
        base, head = self.widths[0], self.widths[0] // self.n_heads
        return sp(base, head) if name == "SP" else mup(base, head)

    def model_config(self, width: int) -> TransformerConfig:
        """The GPT at ``width`` (:func:`labutils.mup.width_family_config`)."""
        return width_family_config(width, n_heads=self.n_heads, n_layers=self.n_layers,
                                   vocab_size=self.vocab_size, seq_len=self.seq_len)


# A sweep small enough for a test and for the notebook (20 runs, about 15 s on 2 cores): a 4×
# wider model, so SP's best LR should move about 2 grid points (LR ∝ 1/width) and muP's none.
LIVE = TransferConfig(widths=(32, 128), lr_log2=tuple(range(-9, -4)), steps=60, batch_size=8,
                      name="live")


def run_sweep(config: TransferConfig = TransferConfig(), *, threads: int = 0,
              progress: bool = True, command: str = "") -> dict:
    """Train every (parametrization, width, LR) of ``config``; return a JSON-ready record.

    ``record["loss"][p]`` is a (widths, LRs) nested list of held-out losses in nats/token (NaN
    for a run that diverged).
    """
    source = make_source(MarkovConfig(vocab_size=config.vocab_size, order=config.order, seed=0))
    tokens = source.sample(32, 4096, seed=config.seed)
    held_out = source.sample(8, 4096, seed=config.seed + 1)
    tokens_per_step = config.batch_size * config.seq_len
    t0 = time.perf_counter()
    losses: dict[str, list[list[float]]] = {}
    from tqdm.auto import tqdm

    jobs = [(p, w, e) for p in PARAMETRIZATIONS for w in config.widths for e in config.lr_log2]
    bar = tqdm(jobs, desc="LR sweep", disable=not progress, leave=False)
    for p, w, e in bar:
        bar.set_postfix_str(f"{p} d={w} lr=2^{e}")
        tc = TrainConfig(tokens=config.steps * tokens_per_step, batch_size=config.batch_size,
                         lr=2.0**e, grad_clip=0.0, seed=config.seed, threads=threads,
                         progress=False)
        r = train(config.model_config(w), tc, tokens, held_out,
                  parametrization=config.parametrization(p))
        loss = r.eval_loss if math.isfinite(r.eval_loss) else float("nan")
        losses.setdefault(p, [[] for _ in config.widths])[config.widths.index(w)].append(loss)
    record = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "entropy_rate_nats": source.entropy_rate(),
        "loss": losses,
    }
    if command:
        record["provenance"] = cpu_provenance(time.perf_counter() - t0, command)
    return record


@dataclass(frozen=True)
class Transfer:
    """A sweep's result as arrays: ``loss[p]`` is (widths, LRs) in nats/token."""

    widths: tuple[int, ...]
    lr_log2: tuple[int, ...]
    loss: dict[str, np.ndarray]
    record: dict

    def best_lr_log2(self, p: str) -> list[int]:
        """log2 of the best LR at each width (diverged runs count as worst)."""
        return [self.lr_log2[int(np.nanargmin(row))] for row in self.loss[p]]

    def shift(self, p: str) -> int:
        """Grid points the best LR moves from the smallest to the largest width (signed)."""
        best = self.best_lr_log2(p)
        return best[-1] - best[0]


def as_transfer(record: dict) -> Transfer:
    """Turn a record from :func:`run_sweep` (or its JSON) into arrays."""
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict from run_sweep (or its JSON), got "
                        f"{type(record).__name__}")
    missing = [k for k in ("config", "loss") if k not in record]
    if missing:
        raise ValueError(f"record lacks keys {missing}; expected a record from run_sweep")
    cfg = record["config"]
    loss = {p: np.array(v, dtype=float) for p, v in record["loss"].items()}
    for p, a in loss.items():
        if a.shape != (len(cfg["widths"]), len(cfg["lr_log2"])):
            raise ValueError(f"record['loss'][{p!r}] has shape {a.shape}, expected "
                             f"({len(cfg['widths'])}, {len(cfg['lr_log2'])})")
        a[~np.isfinite(a)] = np.nan
    return Transfer(widths=tuple(cfg["widths"]), lr_log2=tuple(cfg["lr_log2"]), loss=loss,
                    record=record)


def load_transfer(path: str | Path | None = None) -> Transfer:
    """Load the shipped recording (default ``labutils/data/lr_transfer.json``)."""
    return as_transfer(json.loads(Path(path or DEFAULT_PATH).read_text()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--widths", type=int, nargs="+", default=list(TransferConfig.widths))
    ap.add_argument("--lr-log2", type=int, nargs="+", default=list(TransferConfig.lr_log2))
    ap.add_argument("--steps", type=int, default=TransferConfig.steps)
    ap.add_argument("--batch-size", type=int, default=TransferConfig.batch_size)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = TransferConfig(widths=tuple(args.widths), lr_log2=tuple(args.lr_log2),
                         steps=args.steps, batch_size=args.batch_size)
    cli = "python -m labutils.lr_transfer " + " ".join(sys.argv[1:] if argv is None else argv)
    record = run_sweep(cfg, threads=args.threads, command=cli.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    t = as_transfer(record)
    for p in PARAMETRIZATIONS:
        print(f"{p}: best log2 LR by width {dict(zip(t.widths, t.best_lr_log2(p)))}")


if __name__ == "__main__":
    main()
