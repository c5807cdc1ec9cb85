"""The PPO training loop: sample a rollout, compute advantages, optimise, log, save."""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import yaml
from torch.nn import functional as F
from torch.utils.tensorboard import SummaryWriter

from buffer import Minibatch, RolloutBuffer
from config import Config
from distributed import Collectives, Ranks, rank_device, rank_seed, worker_share
from env_backends import EpisodeInfo, ReplayMismatch, make_backend
from environments import SpaceSpec
from losses import LossTerms, ppo_loss
from model import ActorCritic, build_model
from preflight.refusal import RefusedInput
from runs import paths
from runs.checkpoint import Payload, save_model_file
from runs.resume import RANK_ENTRIES, check_resumable, check_world_size, rank_part
from sampler import Sampler
from utils import (format_duration, polynomial_decay, remaining_seconds,
                   resolve_device, seed_everything, set_torch_threads, worker_seeds)


def _summary_thread_hook(args: threading.ExceptHookArgs) -> None:
    """TensorBoard's writer thread stores an OSError (disk full, read-only, folder gone)
    and raises it again at the writer's next call in the trainer, which stops the run with
    one message; the thread's own traceback would only precede that message."""
    if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread":
        return
    _default_thread_hook(args)


_default_thread_hook = threading.excepthook
threading.excepthook = _summary_thread_hook


@dataclass
class Schedules:
    learning_rate: float
    entropy_coefficient: float
    clip_range: float

    @staticmethod
    def at(config: Config, update: int) -> "Schedules":
        return Schedules(polynomial_decay(config.learning_rate_schedule, update),
                         polynomial_decay(config.entropy_coefficient_schedule, update),
                         polynomial_decay(config.clip_range_schedule, update))


@dataclass
class TrainingStats:
    """Means over every minibatch of one update, by name."""
    losses: dict[str, float]
    grad_norm: float
    explained_variance: float
    value_mean: float
    advantage_mean: float


@dataclass
class UpdateTimes:
    sampling: float
    optimisation: float


def episode_summary(episodes: list[EpisodeInfo]) -> dict[str, float]:
    """Means of the finished episodes' return, length, success and env metrics."""
    if not episodes:
        return {}
    summary = {"return": float(np.mean([e.reward for e in episodes])),
               "length": float(np.mean([e.length for e in episodes]))}
    successes = [e.success for e in episodes if e.success is not None]
    if successes:
        summary["success"] = float(np.mean(successes))
    for key in sorted({k for e in episodes for k in e.metrics}):
        summary[key] = float(np.mean([e.metrics[key] for e in episodes if key in e.metrics]))
    return summary


def minibatch_loss(model: ActorCritic, batch: Minibatch, config: Config,
                   schedules: Schedules) -> LossTerms:
    """Forward a minibatch (advantages already normalised) and evaluate the PPO loss."""
    out = model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
    masks = batch.action_masks if batch.action_masks.shape[-1] else None
    log_probs, entropy = out.distribution.log_prob_entropy(batch.actions, masks)
    reconstruction = None
    if out.reconstruction is not None:
        reconstruction = F.mse_loss(out.reconstruction, batch.obs.to(torch.float32) / 255.0)
    return ppo_loss(log_probs, batch.log_probs, batch.advantages, out.value, batch.values,
                    batch.returns, entropy, schedules.clip_range, config.value_loss_coefficient,
                    schedules.entropy_coefficient, reconstruction,
                    config.reconstruction_loss_coefficient)


SINGLE = Collectives(Ranks())


def accumulate_gradients(model: ActorCritic, batch: Minibatch, config: Config,
                         schedules: Schedules, collectives: Collectives = SINGLE,
                         run_steps: Optional[int] = None) -> dict[str, float]:
    """Add the minibatch loss's gradients to the parameters' .grad, computed in parts of at
    most micro_batch_size steps (whole segments); each part's mean loss is weighted by its
    share, so the sum is the minibatch mean. Returns the minibatch's loss terms. On several
    ranks `batch` is this rank's share of a minibatch of `run_steps` steps: advantages are
    normalised over the whole minibatch and each part is weighted by its share of it, so the
    ranks' gradients sum to the whole minibatch's (distributed.Collectives.sum_gradients)."""
    run_steps = run_steps or batch.steps
    batch = dataclasses.replace(
        batch, advantages=collectives.normalize_advantages(batch.advantages))
    size = config.micro_batch_size or batch.steps
    # Every name, even for a rank with no segments: the ranks sum the terms by name.
    terms = {f.name: 0.0 for f in dataclasses.fields(LossTerms)}
    for part in batch.split(max(1, size // config.segment_len)):
        share = part.steps / run_steps
        part_terms = minibatch_loss(model, part, config, schedules)
        (part_terms.total * share).backward()
        for key, value in part_terms.detached().items():
            terms[key] += value * share
    return terms


def count_parameters(config: Config, spec: SpaceSpec) -> int:
    """Parameters of the network `config` describes, without allocating or initialising it."""
    with torch.device("meta"):
        return sum(p.numel() for p in ActorCritic(config, spec).parameters())


class NonFiniteError(RuntimeError):
    """A loss term or the gradient norm became NaN or infinite."""


def _cloned(tree):
    """A deep copy of a state (dicts, lists, tensors, numbers) whose tensors are on the CPU."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cloned(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cloned(v) for v in tree)
    return tree


class Trainer:
    """Runs PPO updates. With `resume` (a payload written by save()) it continues that run
    exactly: weights, optimiser, counters, RNG states, the running episodes and memory.
    `origin` says where the config came from (a file and the command line's --set values);
    the run's TensorBoard config records it above the config itself.

    With `ranks` of a torchrun launch (distributed.py) this is one rank of a data-parallel
    run: it steps its share of the config's n_workers and joins the other ranks once per
    minibatch; rank 0 alone writes summaries and holds the checkpoint of every rank."""

    def __init__(self, config: Config, run_id: str, models_dir: str = "models",
                 summaries_dir: str = "summaries", resume: Optional[Payload] = None,
                 origin: str = "", ranks: Ranks = Ranks()):
        self.config, self.run_id, self.ranks = config, run_id, ranks
        self.collectives = Collectives(ranks)
        self.workers = worker_share(config.n_workers, ranks)
        # This rank's share of the environments: the buffer and sampler see only those.
        local = dataclasses.replace(config, n_workers=self.workers.stop - self.workers.start)
        # The same seed on every rank: the same initial weights and minibatch shuffles.
        self.generator = seed_everything(config.seed)
        self.device = rank_device(resolve_device(config.device), ranks)
        self.models_dir = models_dir
        self.model_path = paths.model_file(models_dir, run_id)
        cores = max(1, len(os.sched_getaffinity(0)) // ranks.local_world_size)
        # The env backend (env_backends), for this rank's environments: unsupported spaces
        # fail here, before any env process starts.
        self.pool = make_backend(local, worker_seeds(config.seed, config.n_workers)[self.workers],
                                 cores)
        try:
            self.spec = self.pool.spec
            # Threads first: the initialisation (orthogonal_ uses a QR decomposition) must run
            # with the same thread count every time for seeded runs to be bit-identical.
            self.threads = set_torch_threads(config.torch_threads,
                                             count_parameters(config, self.spec), cores)
            self.model = build_model(config, self.spec, self.device)
            self.collectives.broadcast_parameters(self.model)
            if ranks.rank:       # each rank its own actions; rank 0 draws as one rank would
                torch.manual_seed(rank_seed(config.seed, ranks.rank))
            # Fused: one kernel over all parameters instead of a Python loop over them, a
            # fifth of the default step's time; it runs every minibatch however small the
            # rollout (benchmarks/optimiser_step.py).
            self.optimizer = torch.optim.AdamW(self.model.parameters(),
                                               lr=config.learning_rate_schedule.initial, fused=True)
            self.buffer = RolloutBuffer(local, self.spec, self.device)
            self.sampler = Sampler(self.pool, self.buffer, local, self.device, self.model)
            self.update, self.steps, self.skipped_steps, self.restarts = 0, 0, 0, 0
            self.log_dir = paths.new_log_folder(summaries_dir, run_id)
            if resume is not None:
                self._restore(resume)
        except BaseException:
            self.pool.close()
            raise
        # On resume the same folder continues; events after the checkpoint are purged. The
        # purge takes steps >= purge_step, and the checkpoint's own update logged at
        # self.steps, so it starts one step later.
        self.writer = SummaryWriter(self.log_dir, purge_step=self.steps + 1 if resume else None) \
            if ranks.is_main else None
        if resume is None and ranks.is_main:
            comment = f"# {origin}\n" if origin else ""
            self.writer.add_text("config", "```yaml\n" + comment +
                                 yaml.safe_dump(config.to_dict()) + "```")
        self.last_stats: Optional[TrainingStats] = None
        self.snapshot = self._gathered_checkpoint()

    def _restore(self, payload: Payload) -> None:
        """Continue `payload`'s run; RefusedInput (a ValueError) when it does not fit."""
        check_world_size(payload, "the checkpoint", self.ranks.world_size)
        fresh = self.checkpoint()
        mine = rank_part(payload, self.ranks.rank)
        check_resumable({**payload, **mine}, "the checkpoint", self.config.environment,
                        fresh["spec"], fresh["model"], list(self.model.parameters()),
                        fresh["rng"], fresh["sampler"])
        payload = {**payload, **mine}
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.update, self.steps = payload["update"], payload["steps"]
        self.skipped_steps = payload["skipped_steps"]
        self.log_dir = paths.continued_log_folder(self.log_dir, payload.get("log_dir", ""))
        torch.set_rng_state(payload["rng"]["torch"])
        self.generator.set_state(payload["rng"]["shuffle"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(payload["rng"]["cuda"])
        try:
            self.sampler.restore(payload["sampler"])
        except ReplayMismatch as e:
            raise RefusedInput(
                f"corrupted, altered or foreign checkpoint: its record of the running episodes "
                f"does not replay ({e}). Fix: resume from another checkpoint of the run "
                f"(models/RUN/update_*.nn), or with the environment version it was trained "
                f"on.") from None

    # ----- the loop -----
    def run(self, updates: Optional[int] = None) -> None:
        """Train until `updates` updates (default: the config's) are done."""
        target = self.config.updates if updates is None else updates
        start, first = time.time(), self.update
        while self.update < target:
            episodes, times = self.train_one_update()
            self._report(episodes, times, remaining_seconds(time.time() - start,
                                                            self.update - first,
                                                            target - self.update), target)

    def train_one_update(self) -> tuple[list[EpisodeInfo], UpdateTimes]:
        schedules = Schedules.at(self.config, self.update)
        t0 = time.time()
        self.model.eval()
        episodes, last_value = self.sampler.collect()
        episodes = self._all_episodes(episodes)
        self.buffer.compute_advantages(last_value, self.config.gamma, self.config.gae_lambda)
        t1 = time.time()
        self.model.train()
        self.last_stats = self.optimise(schedules)
        t2 = time.time()
        self.steps += self.config.batch_size
        self._log(episodes, self.last_stats, schedules, UpdateTimes(t1 - t0, t2 - t1))
        self.update += 1
        self._after_update()
        return episodes, UpdateTimes(t1 - t0, t2 - t1)

    def optimise(self, schedules: Schedules) -> TrainingStats:
        for group in self.optimizer.param_groups:
            group["lr"] = schedules.learning_rate
        sums: dict[str, float] = {}
        grad_norms = []
        parameters = list(self.model.parameters())
        for _ in range(self.config.epochs):
            for share in self.buffer.shared_minibatches(self.config.n_mini_batch, self.generator,
                                                        self.workers.start,
                                                        self.config.n_workers):
                self.optimizer.zero_grad(set_to_none=True)
                terms = accumulate_gradients(self.model, share.batch, self.config, schedules,
                                             self.collectives, share.run_steps)
                terms = self.collectives.sum_gradients(parameters, terms)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                                 self.config.max_grad_norm))
                if not self._finite(terms, grad_norm):
                    continue
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + value
                grad_norms.append(grad_norm)
                self.optimizer.step()
        n = max(1, len(grad_norms))
        b, reduce = self.buffer, self.collectives
        return TrainingStats({k: v / n for k, v in sums.items()},
                             float(np.mean(grad_norms)) if grad_norms else float("nan"),
                             reduce.explained_variance(b.values, b.returns),
                             reduce.mean(b.values), reduce.mean(b.advantages))

    def _all_episodes(self, episodes: list[EpisodeInfo]) -> list[EpisodeInfo]:
        """Every rank's finished episodes on rank 0 (what it logs; and every rank's worker
        restarts in all, in self.restarts); a rank's own elsewhere."""
        gathered = self.collectives.gather((episodes, self.pool.restarts))
        if gathered is None:
            return episodes
        self.restarts = sum(restarts for _, restarts in gathered)
        return [e for part, _ in gathered for e in part]

    def _finite(self, terms: dict[str, float], grad_norm: float) -> bool:
        """False (and counted) when a step must be skipped; NonFiniteError when the run stops."""
        bad = [key for key, value in terms.items() if not np.isfinite(value)]
        if not bad and np.isfinite(grad_norm):
            return True
        what = f"loss term(s) {', '.join(bad)}" if bad else "gradient norm"
        if self.config.on_nonfinite == "stop":
            raise NonFiniteError(
                f"update {self.update + 1}: the {what} became NaN or infinite. The last good "
                f"checkpoint (update {self.update}) is kept. Fix: lower the learning rate or "
                f"max_grad_norm, or set on_nonfinite: skip.")
        self.skipped_steps += 1
        return False

    # ----- output -----
    def _log(self, episodes: list[EpisodeInfo], stats: TrainingStats, schedules: Schedules,
             times: UpdateTimes) -> None:
        if self.writer is None:          # not rank 0
            return
        w, step = self.writer, self.steps
        for key, value in episode_summary(episodes).items():
            w.add_scalar(f"episode/{key}", value, step)
        for key, value in stats.losses.items():
            group = "loss" if key in ("total", "policy", "value", "entropy", "reconstruction") \
                else "policy"
            w.add_scalar(f"{group}/{key}", value, step)
        w.add_scalar("optim/grad_norm", stats.grad_norm, step)
        w.add_scalar("optim/skipped_steps", self.skipped_steps, step)
        w.add_scalar("env/worker_restarts", self.restarts, step)
        w.add_scalar("value/explained_variance", stats.explained_variance, step)
        w.add_scalar("value/mean", stats.value_mean, step)
        w.add_scalar("advantage/mean", stats.advantage_mean, step)
        for key, value in dataclasses.asdict(schedules).items():
            w.add_scalar(f"schedule/{key}", value, step)
        w.add_scalar("speed/steps_per_second",
                     self.config.batch_size / (times.sampling + times.optimisation), step)
        w.add_scalar("speed/sampling_seconds", times.sampling, step)
        w.add_scalar("speed/optimisation_seconds", times.optimisation, step)

    def _report(self, episodes: list[EpisodeInfo], times: UpdateTimes, eta: float,
                target: int) -> None:
        if not self.ranks.is_main:
            return
        done = self.update
        sps = self.config.batch_size / (times.sampling + times.optimisation)
        summary = episode_summary(episodes)
        parts = [f"update {done:>5}/{target}", f"steps {self.steps:>10,}", f"{sps:7.0f} steps/s"]
        for key in ("return", "success", "length"):
            if key in summary:
                parts.append(f"{key} {summary[key]:7.3f}")
        parts.append(f"loss {self.last_stats.losses.get('total', float('nan')):8.4f}")
        parts.append(f"ETA {format_duration(eta)}")
        print("  ".join(parts), flush=True)

    def checkpoint(self) -> Payload:
        """Everything needed to play the model, and to resume the run exactly."""
        rng = {"torch": torch.get_rng_state(), "shuffle": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state()
        return {"config": self.config.to_dict(), "spec": self.spec.to_dict(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "update": self.update, "steps": self.steps, "skipped_steps": self.skipped_steps,
                "log_dir": self.log_dir, "rng": rng, "sampler": self.sampler.state()}

    def _gathered_checkpoint(self) -> Optional[Payload]:
        """On rank 0, a copy of checkpoint() with every other rank's generator and sampler
        states ("ranks", distributed.py); None on other ranks. Rank 0 holds it from one
        update to the next, so it saves without waiting for any other rank."""
        payload = _cloned(self.checkpoint())
        gathered = self.collectives.gather({key: payload[key] for key in RANK_ENTRIES})
        if gathered is None:
            return None
        if self.ranks.distributed:
            payload.update(world_size=self.ranks.world_size, ranks=gathered[1:])
        return payload

    def save(self) -> str:
        """Write the last completed update's checkpoint (never a half-done update's); rank 0
        only."""
        assert self.ranks.is_main, "only rank 0 writes the model file"
        save_model_file(self.model_path, self.snapshot)
        return self.model_path

    def _after_update(self) -> None:
        self.snapshot = self._gathered_checkpoint()
        interval = self.config.checkpoint_interval
        if interval and self.update % interval == 0 and self.ranks.is_main:
            save_model_file(paths.periodic_file(self.models_dir, self.run_id, self.update),
                            self.snapshot)
            self.save()

    def close(self) -> None:
        self.pool.close()
        if self.writer is not None:
            self.writer.close()

