"""POPGym's partially observable tasks (Morad et al., ICLR 2023), by their short names.

environment.name is a POPGym class name such as RepeatPreviousEasy, CountRecallMedium or
PositionOnlyCartPoleHard (its registered id popgym-<name>-v0 works too). POPGym is an
optional requirement (requirements-popgym.txt). Its envs observe Discrete, MultiDiscrete or
Tuple spaces, which make_env adapts (one-hots, concatenated); they end their episodes
themselves (no max_episode_steps) and their constructors take no render_mode, so they are
built without one and most cannot render. The Pendulum variants act in a Box (a Gaussian
policy). environment.reset_params go to the env's constructor.

Every POPGym task scales its rewards so that an episode's return lies in [-1, 1] (0 to 1 for
some); evaluate.py reports the raw return, and the results normalise it by each task's
min/max as POPGym's MMER does (docs/results-popgym.md).
"""
from __future__ import annotations

import difflib

import gymnasium as gym

from environments import Family, register_family
from environments.gym_env import make_registered

PREFIX, SUFFIX = "popgym-", "-v0"


def registered_id(name: str) -> str:
    """popgym-<name>-v0 for a class name, or the name itself if it is already such an id."""
    try:
        import popgym  # noqa: F401  (importing registers POPGym's ids with gymnasium)
    except ImportError:
        raise ValueError("environment.type = 'popgym' needs the optional package popgym. "
                         "Fix: pip install -r requirements-popgym.txt") from None
    env_id = name if name.startswith(PREFIX) else f"{PREFIX}{name}{SUFFIX}"
    if env_id not in gym.registry:
        known = sorted(i[len(PREFIX):-len(SUFFIX)] for i in gym.registry if i.startswith(PREFIX))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known are {', '.join(known)}"
        raise ValueError(f"popgym: environment.name = {name!r} is not a POPGym environment; "
                         f"{hint}")
    return env_id


def make(env_config, render: bool = False) -> gym.Env:
    # gymnasium's passive checker warns on every POPGym env (shared info dicts): noise in
    # every worker process for a known, harmless quirk.
    return make_registered(registered_id(env_config.name),
                           {"disable_env_checker": True, **env_config.reset_params}, render)


register_family(Family(
    name="popgym", make=make, open=True, example="RepeatPreviousEasy",
    backends=("vector", "processes"),
    summary="POPGym's tasks by class name, e.g. RepeatPreviousEasy (optional "
            "requirements-popgym.txt)."))
