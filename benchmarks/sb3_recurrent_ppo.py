"""sb3-contrib's RecurrentPPO (an LSTM policy) on a masked_control task, matched to one of this
repository's configs, for the side-by-side page docs/side-by-side-sb3.md.

Runs in a virtual environment of its own, outside the repository, because sb3-contrib is no
dependency of this one (torch pinned in the same command, or pip fetches a CUDA build):

    python3.11 -m venv /work/sb3-venv
    /work/sb3-venv/bin/pip install torch==2.13.0 sb3-contrib==2.9.2 gymnasium==1.4.0 \
        mujoco==4.0.1 glfw==2.11.0 pyyaml
    /work/sb3-venv/bin/python benchmarks/sb3_recurrent_ppo.py \
        configs/pendulum_velocity_masked.yaml --seed 0 --run sb3_pendulum_seed0

The environment is this repository's own masked_control family (imported, not copied), so
both sides hide the same observation entries. What the config sets, RecurrentPPO gets:
workers -> n_envs, worker_steps -> n_steps, the minibatch count -> batch_size, epochs,
gamma, gae_lambda, the clip range, the value and entropy coefficients, max_grad_norm, the
learning rate's linear decay (as a function of the progress) and the initial log-std;
normalize_observations / scale_rewards / normalization_clip -> VecNormalize(norm_obs,
norm_reward, clip_obs, clip_reward, gamma). The network: an LSTM of recurrent.hidden_size
(sb3's default: a second LSTM for the critic), then two hidden_layer_size layers per head,
beside the TrXL agent's encoder, memory, one shared layer and one layer per head.

After training, the policy plays the config's evaluation.n_seeds held-out seeds (2**30 + i,
as evaluate.py) greedily, observations normalised with the frozen training statistics, and
the episodes go to models/RUN/scores.csv in evaluate.py's format, so aggregate.py scores both
sides alike. The last line printed is a JSON record: parameters, steps, training seconds
and whole-loop steps/s.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from environments.episodes import held_out_seeds  # noqa: E402
from environments.masked_control import make  # noqa: E402

# evaluate.py's score-file columns (evaluation.scores.EPISODE_COLUMNS; that module needs
# pandas, which this environment does without).
EPISODE_COLUMNS = ("run", "config_name", "seed_of_run", "checkpoint", "update", "steps",
                   "env_seed", "repetition", "deterministic", "return", "length", "success")


def env_factory(name: str):
    def build():
        return make(SimpleNamespace(name=name, reset_params={}))
    return build


def learning_rate(schedule: dict, updates: int):
    """The config's polynomial decay (utils.polynomial_decay) as sb3's function of the
    progress remaining. sb3 asks after the k-th rollout (progress remaining 1 - k/updates),
    the trainer before it (update k - 1): both optimise update k at the same rate."""
    def rate(progress_remaining: float) -> float:
        update = max(round((1.0 - progress_remaining) * updates) - 1, 0)
        remaining = 1.0 - min(update, schedule["max_decay_steps"]) / schedule["max_decay_steps"]
        return ((schedule["initial"] - schedule["final"]) * remaining ** schedule["power"]
                + schedule["final"])
    return rate


def build(config: dict, seed: int, updates: int):
    """A RecurrentPPO on config's task, with config's settings."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    workers, steps = config["n_workers"], config["worker_steps"]
    venv = DummyVecEnv([env_factory(config["environment"]["name"])] * workers)
    venv = VecNormalize(venv, norm_obs=config["normalize_observations"],
                        norm_reward=config["scale_rewards"],
                        clip_obs=config["normalization_clip"],
                        clip_reward=config["normalization_clip"], gamma=config["gamma"])
    hidden = config["hidden_layer_size"]
    policy_kwargs = dict(lstm_hidden_size=config["recurrent"]["hidden_size"],
                         n_lstm_layers=config["recurrent"]["num_layers"],
                         net_arch=dict(pi=[hidden, hidden], vf=[hidden, hidden]),
                         log_std_init=config["initial_log_std"])
    return RecurrentPPO(
        "MlpLstmPolicy", venv, n_steps=steps, batch_size=workers * steps // config["n_mini_batch"],
        n_epochs=config["epochs"], gamma=config["gamma"], gae_lambda=config["gae_lambda"],
        clip_range=config["clip_range_schedule"]["initial"],
        ent_coef=config["entropy_coefficient_schedule"]["initial"],
        vf_coef=config["value_loss_coefficient"], max_grad_norm=config["max_grad_norm"],
        learning_rate=learning_rate(config["learning_rate_schedule"], updates),
        policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0)


def play(model, name: str, env_seed: int) -> tuple[float, int]:
    """Return and length of one greedy episode on `env_seed`."""
    env = make(SimpleNamespace(name=name, reset_params={}))
    obs, _ = env.reset(seed=env_seed)
    state, start, total, length, done = None, np.ones(1, dtype=bool), 0.0, 0, False
    while not done:
        normalised = model.get_env().normalize_obs(obs[None])           # (1, obs)
        action, state = model.predict(normalised, state=state, episode_start=start,
                                      deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action[0])
        total, length, done = total + float(reward), length + 1, terminated or truncated
        start = np.zeros(1, dtype=bool)
    env.close()
    return total, length


def write_scores(path: str, run: str, task: str, seed: int, updates: int, steps: int,
                 episodes: list[tuple[int, float, int]]) -> None:
    """evaluate.py's score file of one greedy episode per (env seed, return, length)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EPISODE_COLUMNS)
        for env_seed, total, length in episodes:
            writer.writerow([run, task, seed, "final.zip", updates, steps, env_seed, 0, True,
                             total, length, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a masked_control config of this repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", required=True, help="scores go to models/RUN/scores.csv")
    parser.add_argument("--updates", type=int, help="overrides the config's updates")
    parser.add_argument("--no-eval", action="store_true", help="train only (speed runs)")
    args = parser.parse_args()
    import torch
    with open(args.config) as f:
        config = yaml.safe_load(f)
    if config["environment"]["type"] != "masked_control":
        raise ValueError(f"{args.config}: environment.type must be masked_control.")
    # As train.py picks for models under a million parameters: one torch thread.
    torch.set_num_threads(1)
    updates = args.updates or config["updates"]
    name = config["environment"]["name"]
    model = build(config, args.seed, updates)
    steps = updates * config["n_workers"] * config["worker_steps"]
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    model.get_env().training = False
    if not args.no_eval:
        folder = os.path.join(ROOT, "models", args.run)
        os.makedirs(folder, exist_ok=True)
        model.save(os.path.join(folder, "final.zip"))
        episodes = [(env_seed, *play(model, name, env_seed))
                    for env_seed in held_out_seeds(config["evaluation"]["n_seeds"])]
        write_scores(os.path.join(folder, "scores.csv"), args.run, name, args.seed, updates,
                     model.num_timesteps, episodes)
    parameters = sum(p.numel() for p in model.policy.parameters())
    print(json.dumps({"side": "sb3-contrib RecurrentPPO", "run": args.run, "task": name,
                      "parameters": parameters, "steps": model.num_timesteps,
                      "train_seconds": round(seconds, 2),
                      "steps_per_second": round(model.num_timesteps / seconds, 1)}))


if __name__ == "__main__":
    main()
