"""The rank grid: which rank does what under data, pipeline, context and tensor parallelism.

``world_size = dp × pp × cp × tp`` ranks are laid out as a 4-D array of shape
``(dp, pp, cp, tp)``, ``tp`` varying fastest (picotron's ``ProcessGroupManager`` uses the same
order). Neighbouring ranks then share a tensor-parallel group: on a cluster they sit in one
node, where TP's per-layer all-reduces get NVSwitch bandwidth, while data parallelism, which
communicates once per step, spans nodes. torchtitan's ``ParallelDims`` builds its device mesh
as ``("pp", "dp_replicate", "dp_shard", "cp", "tp")``: ``pp`` outermost instead, ``tp`` again
innermost.

:class:`GridShape` is the arithmetic (validated sizes, coordinates of a rank, the ranks of
every group) and needs no processes. :class:`RankGrid` is built inside a worker: it creates
one ``torch.distributed`` process group per group of each axis with plain ``dist.new_group``
(every rank must create every group, in the same order), and hands each strategy its own.
We use plain groups rather than ``DeviceMesh`` so that a reader sees the groups themselves:
a mesh is this same table with a name for each axis.

Point-to-point messages (the pipeline, our ring collectives) address *global* ranks; a group
rank is turned into one with :func:`global_rank`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from labutils.validate import positive_int

AXES = ("dp", "pp", "cp", "tp")  # slowest to fastest varying


@dataclass(frozen=True)
class GridShape:
    """Degrees of the four parallelisms; ``world_size`` is their product."""

    dp: int = 1
    pp: int = 1
    cp: int = 1
    tp: int = 1

    def __post_init__(self) -> None:
        for axis in AXES:
            positive_int(axis, getattr(self, axis))

    @property
    def world_size(self) -> int:
        return self.dp * self.pp * self.cp * self.tp

    def sizes(self) -> tuple[int, int, int, int]:
        """(dp, pp, cp, tp)."""
        return self.dp, self.pp, self.cp, self.tp

    def check_world(self, world_size: int) -> None:
        """Raise ValueError unless dp × pp × cp × tp equals ``world_size``."""
        if self.world_size != world_size:
            raise ValueError(
                f"the grid needs dp × pp × cp × tp = {self.dp} × {self.pp} × {self.cp} × "
                f"{self.tp} = {self.world_size} ranks, but the world size is {world_size}: "
                "choose degrees whose product is the number of ranks"
            )

    def coords(self, rank: int) -> dict[str, int]:
        """Coordinates of global ``rank``: ``{"dp": d, "pp": p, "cp": c, "tp": t}``."""
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.world_size:
            raise ValueError(f"rank must be an int in [0, {self.world_size - 1}], got {rank!r}")
        out, rest = {}, rank
        for axis, size in zip(reversed(AXES), reversed(self.sizes())):
            rest, out[axis] = divmod(rest, size)
        return {axis: out[axis] for axis in AXES}

    def rank_of(self, dp: int = 0, pp: int = 0, cp: int = 0, tp: int = 0) -> int:
        """Global rank at the given coordinates (the inverse of :meth:`coords`)."""
        rank = 0
        for axis, value, size in zip(AXES, (dp, pp, cp, tp), self.sizes()):
            if not 0 <= value < size:
                raise ValueError(f"{axis} coordinate must be in [0, {size - 1}], got {value}")
            rank = rank * size + value
        return rank

    def groups(self, axis: str) -> list[list[int]]:
        """Every group along ``axis``: the global ranks that differ only in that coordinate,
        in coordinate order. The groups partition the ranks."""
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        size = getattr(self, axis)
        heads = [r for r in range(self.world_size) if self.coords(r)[axis] == 0]
        out = []
        for head in heads:
            c = self.coords(head)
            out.append([self.rank_of(**{**c, axis: i}) for i in range(size)])
        return out

    def group_of(self, axis: str, rank: int) -> list[int]:
        """The global ranks of ``rank``'s group along ``axis``."""
        return next(g for g in self.groups(axis) if rank in g)


def global_rank(group: dist.ProcessGroup | None, group_rank: int) -> int:
    """The global rank of rank ``group_rank`` of ``group`` (None: the whole world)."""
    if group is None or group is dist.group.WORLD:
        return group_rank
    return dist.get_global_rank(group, group_rank)


def rank_device() -> torch.device:
    """The device this rank's tensors live on: its GPU under NCCL, the CPU under gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class RankGrid:
    """The process groups of a :class:`GridShape` on the running ranks (inside a worker).

    ``grid.group("tp")`` is this rank's tensor-parallel group, ``grid.rank("tp")`` its place in
    it, ``grid.ranks("pp")`` the global ranks of its pipeline, and so on. An axis of size 1 is a
    group of one rank (its collectives return at once); an axis spanning the whole world uses
    the default group.
    """

    def __init__(self, shape: GridShape) -> None:
        if not isinstance(shape, GridShape):
            raise TypeError(f"shape must be a GridShape, got {type(shape).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("no default process group: build the grid inside a worker run by "
                               "labutils.parallel.launch (or under torchrun)")
        shape.check_world(dist.get_world_size())
        self.shape = shape
        self.global_rank = dist.get_rank()
        self.coords = shape.coords(self.global_rank)
        self._groups: dict[str, dist.ProcessGroup | None] = {}
        self._ranks: dict[str, list[int]] = {}
        for axis in AXES:
            for ranks in shape.groups(axis):
                # new_group is collective over the world: every rank creates every group.
                if len(ranks) == shape.world_size:
                    group = None  # the default group
                else:
                    group = dist.new_group(ranks)
                if self.global_rank in ranks:
                    self._groups[axis], self._ranks[axis] = group, ranks

    def group(self, axis: str) -> dist.ProcessGroup | None:
        """This rank's process group along ``axis`` (None means the default group)."""
        return self._groups[self._axis(axis)]

    def ranks(self, axis: str) -> list[int]:
        """Global ranks of this rank's group along ``axis``, in coordinate order."""
        return list(self._ranks[self._axis(axis)])

    def rank(self, axis: str) -> int:
        """This rank's coordinate (its rank inside the group) along ``axis``."""
        return self.coords[self._axis(axis)]

    def size(self, axis: str) -> int:
        return getattr(self.shape, self._axis(axis))

    @staticmethod
    def _axis(axis: str) -> str:
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        return axis

    def __repr__(self) -> str:
        where = ", ".join(f"{a}={self.coords[a]}/{self.size(a)}" for a in AXES)
        return f"RankGrid(rank {self.global_rank}: {where})"
