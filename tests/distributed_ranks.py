"""Run a function on several gloo ranks in spawned processes, as torchrun would, for tests.

    results = run_ranks(function, 2, *args)      # function(ranks, *args) on each rank

Each rank's return value (picklable; tensors on the CPU) comes back in rank order; a rank
that raises fails the call with its traceback. The rank functions the tests use are below.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import socket
import traceback

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(function, rank: int, world_size: int, port: int, results, args) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world_size))
    import distributed
    try:
        ranks = distributed.ranks_from_environment()
        distributed.start(ranks)
        # Pickled here: a tensor put on the queue as it is would travel as a handle to this
        # process's shared memory, gone once the rank exits.
        results.put((rank, pickle.dumps(function(ranks, *args)), None))
    except BaseException:   # noqa: BLE001 - the parent reports any failure of a rank
        results.put((rank, None, traceback.format_exc()))
    finally:
        distributed.stop()


def run_ranks(function, world_size: int, *args, timeout: float = 180) -> list:
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=_rank_main,
                                 args=(function, rank, world_size, port, results, args))
                 for rank in range(world_size)]
    for process in processes:
        process.start()
    found: dict[int, object] = {}
    try:
        for _ in range(world_size):
            rank, value, error = results.get(timeout=timeout)
            if error:
                raise AssertionError(f"rank {rank} failed:\n{error}")
            found[rank] = pickle.loads(value)
    except queue.Empty:
        raise AssertionError(f"ranks {sorted(set(range(world_size)) - set(found))} did not "
                             f"answer within {timeout} s") from None
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    return [found[rank] for rank in range(world_size)]


# ----- rank functions -----
def reductions(ranks, values: list[list[float]], predicted: list[list[float]]) -> dict:
    """Each rank's advantages normalised across ranks, and the reduced statistics."""
    from distributed import Collectives
    collectives = Collectives(ranks)
    mine = torch.tensor(values[ranks.rank])
    return {"normalized": collectives.normalize_advantages(mine),
            "mean": collectives.mean(mine),
            "explained_variance": collectives.explained_variance(
                torch.tensor(predicted[ranks.rank]), mine),
            "gathered": collectives.gather(ranks.rank * 10),
            "broadcast": collectives.broadcast(f"from {ranks.rank}")}


def _trainer(ranks, config, folder: str, run_id: str, resume=None):
    from trainer import Trainer
    return Trainer(config, run_id, os.path.join(folder, "m"), os.path.join(folder, "s"),
                   resume, ranks=ranks)


def update_on_data(ranks, config, data_file: str) -> dict:
    """One optimisation of this rank's share of the recorded rollout (data_file), from the
    recorded weights and shuffle state."""
    from trainer import Schedules
    data = torch.load(data_file, weights_only=True)
    trainer = _trainer(ranks, config, os.path.dirname(data_file), f"rank{ranks.rank}")
    try:
        initial_equal = all(torch.equal(t, data["model"][k])
                            for k, t in trainer.model.state_dict().items())
        for name, tensor in data["buffer"].items():
            setattr(trainer.buffer, name, tensor[trainer.workers].clone())
        trainer.generator.set_state(data["shuffle"])
        stats = trainer.optimise(Schedules.at(config, 0))
        return {"initial_equal": initial_equal, "losses": stats.losses,
                "value_mean": stats.value_mean,
                "explained_variance": stats.explained_variance,
                "weights": trainer.model.state_dict(),
                "grads": {k: p.grad.clone() for k, p in trainer.model.named_parameters()
                          if p.grad is not None}}
    finally:
        trainer.close()


def weights_every_update(ranks, config, folder: str, updates: int) -> list[list[bool]]:
    """After each update, whether every rank holds rank 0's weights (compared on rank 0)."""
    from distributed import Collectives
    trainer = _trainer(ranks, config, folder, "same")
    collectives, agreement = Collectives(ranks), []
    try:
        for _ in range(updates):
            trainer.train_one_update()
            weights = {k: t.clone() for k, t in trainer.model.state_dict().items()}
            gathered = collectives.gather(weights)
            if gathered is not None:
                agreement.append([all(torch.equal(t, other[k]) for k, t in weights.items())
                                  for other in gathered])
    finally:
        trainer.close()
    return agreement


def resumed_equals_whole(ranks, config, folder: str) -> dict:
    """A run of 3 updates, and one of 2 updates saved by rank 0, loaded, passed to every
    rank and continued to 3: their weights and last losses, per rank."""
    from distributed import Collectives
    from runs.checkpoint import load_model_file
    whole = _trainer(ranks, config, folder, "whole")
    try:
        whole.run(3)
    finally:
        whole.close()
    first = _trainer(ranks, config, folder, "part")
    try:
        first.run(2)
    finally:
        first.close()
    path = first.save() if ranks.is_main else None
    payload = Collectives(ranks).broadcast(load_model_file(path)[0] if path else None)
    second = _trainer(ranks, config, folder, "part", payload)
    try:
        second.run(3)
    finally:
        second.close()
    return {"equal": all(torch.equal(t, second.model.state_dict()[k])
                         for k, t in whole.model.state_dict().items()),
            "losses": (whole.last_stats.losses, second.last_stats.losses),
            "saved_world_size": payload.get("world_size"), "saved_ranks": len(payload["ranks"]),
            "steps": (whole.steps, second.steps),
            "wrote": sorted(os.listdir(folder)) if ranks.is_main else None}


def all_checks(ranks, config, folder: str, values, predicted) -> dict:
    """The rank functions above in one launch (each launch costs seconds of start-up)."""
    return {"reductions": reductions(ranks, values, predicted),
            "same_data": update_on_data(ranks, config, os.path.join(folder, "data.pt")),
            "every_update": weights_every_update(ranks, config, os.path.join(folder, "u"), 3),
            "resume": resumed_equals_whole(ranks, config, os.path.join(folder, "r"))}
