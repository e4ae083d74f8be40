"""Run a parallel demo under ``torchrun``: the same workers ``launch`` runs on one CPU.

    torchrun --nproc-per-node 4 -m labutils.parallel.run ring_exchange
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 -m labutils.parallel.run ring_exchange

``torchrun`` sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; we initialise the default process
group from them (``init_method="env://"``), with NCCL when CUDA is present and gloo otherwise, then
call the worker and print its result from every rank. That is how the book's code scales past one
machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from labutils.parallel import demos

# name -> worker. Chapters register the workers a reader may want to run under torchrun.
DEMOS: dict[str, Callable[..., Any]] = {
    "whoami": demos.whoami,
    "ring_exchange": demos.ring_exchange,
    "ring_all_reduce": demos.ring_all_reduce_check,  # Chapter 5: our ring vs dist.all_reduce
    "ring_collectives": demos.ring_collectives_check,  # Chapter 5: all three ring collectives
}


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", choices=sorted(DEMOS), help="which worker to run on every rank")
    parser.add_argument("--timeout-s", type=float, default=120.0,
                        help="collective timeout in seconds (a stuck rank fails instead of hanging)")
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        parser.error("run me under torchrun (RANK/WORLD_SIZE are not set); on one CPU use "
                     "labutils.parallel.launch instead")
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://",
                            timeout=datetime.timedelta(seconds=args.timeout_s))
    try:
        result = DEMOS[args.demo]()
        # one write per line: ranks share stdout, and print's separate newline write interleaves
        line = f"[rank {dist.get_rank()}/{dist.get_world_size()}] {args.demo}: {result}\n"
        print(line, end="", flush=True)
        return result
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
