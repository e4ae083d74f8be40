"""Data parallelism, Chapter 5 (and ZeRO, Chapter 4): ``ddp`` (the four teaching wrappers),
``ddp_workers``, ``zero`` (ZeRO stages 0-3), ``zero_workers`` (runs vs one process, DDP and
FSDP2), ``cost`` (step time, overlap and scaling on a cluster)."""
