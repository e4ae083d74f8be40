"""Run parallel demos under ``torchrun``: the same workers ``launch`` runs on one CPU.

    torchrun --nproc-per-node 4 -m labutils.parallel.run ring_exchange
    torchrun --nproc-per-node 2 -m labutils.parallel.run ddp zero tp pp cp
    torchrun --nproc-per-node 8 -m labutils.parallel.run tp_pp_dp
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 -m labutils.parallel.run ring_exchange

Each strategy's demo (:mod:`labutils.parallel.checks`) prints the largest difference from one
process; the course's bar is 1e-5 in fp32. Several names run one after the other in one job.

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

from labutils.parallel import checks, demos

# name -> worker. Chapters register the workers a reader may want to run under torchrun.
DEMOS: dict[str, Callable[..., Any]] = {
    "whoami": demos.whoami,
    "device": checks.device_name,
    "ring_exchange": demos.ring_exchange,
    "ring_all_reduce": demos.ring_all_reduce_check,  # Chapter 5: our ring vs dist.all_reduce
    "ring_collectives": demos.ring_collectives_check,  # Chapter 5: all three ring collectives
    "ddp": checks.ddp_check,  # Chapter 5: overlapped, bucketed DDP
    "zero": checks.zero_check,  # Chapter 5: ZeRO 1-3 and FSDP2
    "tp": checks.tp_check,  # Chapter 6: Megatron tensor parallelism
    "pp": checks.pp_check,  # Chapter 7: 1F1B pipeline
    "cp": checks.cp_check,  # Chapter 8: zigzag ring attention
    "tp_dp": checks.tp_dp_check,  # Chapter 12: compositions on one rank grid
    "pp_dp": checks.pp_dp_check,
    "cp_dp": checks.cp_dp_check,
    "tp_pp_dp": checks.tp_pp_dp_check,
}


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", nargs="+", choices=sorted(DEMOS),
                        help="which workers to run on every rank, in order")
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
        results = []
        for name in args.demo:
            results.append(DEMOS[name]())
            # one write per line: ranks share stdout, and print's separate newline write
            # interleaves
            line = f"[rank {dist.get_rank()}/{dist.get_world_size()}] {name}: {results[-1]}\n"
            print(line, end="", flush=True)
        return results[0] if len(results) == 1 else results
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
