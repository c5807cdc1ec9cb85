"""Data-parallel training over torch.distributed ranks, launched by torchrun.

    torchrun --nproc-per-node 2 train.py --config configs/minigrid_memory.yaml

One job: what differs between ranks and what they must agree on. Each rank steps its own
share of the config's n_workers environments (the same workers, with the same seeds, that a
1-rank run would give that share), keeps its own buffer and memory state, and joins the
others once per minibatch.

Why one all-reduce of the flat gradient rather than DistributedDataParallel: a minibatch is
a random set of whole segments drawn from every rank's workers (the 1-rank run's shuffle,
Trainer.optimise), so a rank holds an uneven share of it, sometimes none; and the trainer
accumulates each minibatch in micro-batches. DDP averages equal shares and reduces during
every backward (micro-batches would need no_sync), while a sum of gradients that each rank
weighted by its share of the global minibatch is the 1-rank gradient exactly, with one
collective per minibatch (the loss terms ride along in the same buffer).

World size 1 takes none of these paths: a plain `python train.py` runs no collective.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

from losses import normalize_advantages
from utils import explained_variance

# The variables torchrun (and any launcher following its convention) sets for every rank.
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
# A rank that waits longer than this in a collective gives up (a peer hung or died without
# its connection closing): the run stops with the last completed update saved.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks of one run."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0             # among the ranks of this machine
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the model file, checkpoints, the run lock and summaries."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def ranks_from_environment(environ: Optional[dict] = None) -> Ranks:
    """The ranks torchrun describes in the environment; one rank when it set none.
    ValueError for values that do not describe a rank."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return Ranks()
    try:
        values = {key: int(environ.get(key, default)) for key, default in
                  zip(LAUNCH_VARIABLES, ("0", "1", "0", environ.get("WORLD_SIZE", "1")))}
    except ValueError:
        raise ValueError(f"the launcher's variables {LAUNCH_VARIABLES} must be integers, got "
                         f"{ {k: environ.get(k) for k in LAUNCH_VARIABLES} }. Fix: start "
                         f"the run with torchrun, or unset them.") from None
    ranks = Ranks(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"],
                  values["LOCAL_WORLD_SIZE"])
    if not (0 <= ranks.rank < ranks.world_size and 0 <= ranks.local_rank < ranks.local_world_size):
        raise ValueError(f"RANK={ranks.rank}, WORLD_SIZE={ranks.world_size}, LOCAL_RANK="
                         f"{ranks.local_rank}, LOCAL_WORLD_SIZE={ranks.local_world_size} do not "
                         f"describe a rank. Fix: start the run with torchrun.")
    return ranks


def start(ranks: Ranks) -> None:
    """Join the run's process group: gloo for tensors on CPUs, and nccl for tensors on CUDA
    GPUs where torch sees any (each rank on the GPU of its LOCAL_RANK); torchrun's
    MASTER_ADDR and MASTER_PORT say where rank 0 waits. A no-op for one rank. The group
    starts before the config is read (rank 0 reads it and passes it on), so it serves
    whichever device the config names."""
    if not ranks.distributed or dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank)
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size,
                            timeout=COLLECTIVE_TIMEOUT)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Each rank of a machine trains on its own GPU (LOCAL_RANK); CPUs are shared."""
    if device.type == "cuda" and ranks.distributed:
        return torch.device("cuda", ranks.local_rank)
    return device


def rank_seed(run_seed: int, rank: int) -> int:
    """The seed of rank `rank`'s own random draws (action sampling): rank 0 keeps the run
    seed (a 1-rank run is unchanged), every other rank gets a distinct seed derived from
    (run seed, rank). Environment seeds do not come from here: each worker keeps the seed
    utils.worker_seeds gives it in the whole run, so no rank repeats another's episodes."""
    if rank == 0:
        return run_seed
    state = np.random.SeedSequence([run_seed, 1, rank]).generate_state(1)[0]
    return int(state % (2**31 - 1))


def worker_share(n_workers: int, ranks: Ranks) -> slice:
    """The run's workers (environments) this rank steps: a contiguous, equal share.
    ValueError when n_workers does not divide among the ranks."""
    if n_workers % ranks.world_size:
        raise ValueError(f"n_workers = {n_workers} does not divide among {ranks.world_size} "
                         f"ranks. Fix: set n_workers to a multiple of {ranks.world_size}, or "
                         f"start another number of ranks (torchrun --nproc-per-node).")
    share = n_workers // ranks.world_size
    return slice(ranks.rank * share, (ranks.rank + 1) * share)


class Collectives:
    """What the ranks of one run compute together. For one rank every method is the plain
    single-process computation, bit for bit."""

    def __init__(self, ranks: Ranks):
        self.ranks = ranks

    def _sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over the ranks (in place, and returned)."""
        if self.ranks.distributed:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def normalize_advantages(self, advantages: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance over the global minibatch, of which this rank holds
        `advantages` (possibly none). Two passes (mean, then the squared deviations from
        it), as a single process's std computes it, rather than E[x^2] - E[x]^2, which
        cancels badly."""
        if not self.ranks.distributed:
            return normalize_advantages(advantages)
        x = advantages.double()
        total = self._sum(torch.stack([x.sum(), torch.tensor(float(x.numel()), dtype=x.dtype,
                                                              device=x.device)]))
        mean = total[0] / total[1]
        variance = self._sum((x - mean).pow(2).sum()) / total[1]
        return ((x - mean) / (variance.sqrt() + 1e-8)).to(advantages.dtype)

    def sum_gradients(self, parameters: list[torch.nn.Parameter],
                      terms: dict[str, float]) -> dict[str, float]:
        """Sum every parameter's .grad and the loss terms over the ranks, in one all-reduce.
        Each rank weighted its part by its share of the global minibatch, so the sums are the
        global minibatch's mean gradient and loss terms. A parameter keeps .grad None only
        when no rank gave it a gradient (AdamW skips it, as in a single process)."""
        if not self.ranks.distributed:
            return terms
        device = parameters[0].device
        keys = sorted(terms)
        flat = torch.cat([torch.tensor([terms[k] for k in keys], dtype=torch.float32,
                                       device=device),
                          torch.tensor([float(p.grad is not None) for p in parameters],
                                       device=device),
                          *[(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                            for p in parameters]])                # (terms + P + weights,)
        self._sum(flat)
        summed_terms = dict(zip(keys, flat[:len(keys)].tolist()))
        has_grad = flat[len(keys):len(keys) + len(parameters)]
        offset = len(keys) + len(parameters)
        for p, present in zip(parameters, has_grad.tolist()):
            grad = flat[offset:offset + p.numel()].view_as(p)
            p.grad = grad.clone() if present else None
            offset += p.numel()
        return summed_terms

    def mean(self, values: torch.Tensor) -> float:
        """The mean over every rank's `values` (a rank's buffer tensor)."""
        if not self.ranks.distributed:
            return float(values.mean())
        x = values.double()
        total = self._sum(torch.stack([x.sum(), torch.tensor(float(x.numel()), dtype=x.dtype,
                                                              device=x.device)]))
        return float(total[0] / total[1])

    def explained_variance(self, predicted: torch.Tensor, target: torch.Tensor) -> float:
        """1 - Var(target - predicted) / Var(target) over every rank's values."""
        if not self.ranks.distributed:
            return explained_variance(predicted, target)
        residual = target - predicted
        variances = [self._centred_square_sum(x) for x in (target, residual)]
        if variances[0] == 0:
            return float("nan")
        return 1.0 - variances[1] / variances[0]

    def _centred_square_sum(self, values: torch.Tensor) -> float:
        """sum((x - mean)^2) over every rank's values; the mean is the global one."""
        mean = self.mean(values)
        return float(self._sum((values.double() - mean).pow(2).sum()))

    def gather(self, value: Any) -> Optional[list]:
        """Every rank's `value` (picklable) on rank 0, in rank order; None on other ranks."""
        if not self.ranks.distributed:
            return [value]
        found = [None] * self.ranks.world_size if self.ranks.is_main else None
        dist.gather_object(value, found, dst=0)
        return found

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (picklable) on every rank."""
        if not self.ranks.distributed:
            return value
        box = [value if self.ranks.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Rank 0's weights on every rank (each built the same ones from the run seed; this
        makes it so whatever the initialisation's thread count)."""
        if self.ranks.distributed:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)
