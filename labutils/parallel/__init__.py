"""Parallelism on torch.distributed: a shared base, then one folder per parallelism.

The base: ``launch`` runs a worker on N gloo ranks on this machine and ``run`` runs the same
workers under ``torchrun``; ``grid`` lays the ranks out over (dp, pp, cp, tp) and hands each
strategy its process group; ``comm_log`` records what a rank sent; ``harness`` holds the tiny
GPT, its batches and the single-process reference every strategy is checked against;
``collectives`` and ``alpha_beta`` are the rings built from send/recv and their price. Then
``data/`` (DDP, ZeRO), ``tensor/``, ``pipeline/`` and ``context/``, each with its engine, its
communication, its cost model and its workers, and ``composition`` to train them together.
"""

from labutils.parallel.launch import LaunchTimeout, RankError, launch

__all__ = ["launch", "LaunchTimeout", "RankError"]
