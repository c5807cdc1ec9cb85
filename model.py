"""The actor-critic network: encoder -> memory (memories/, any kind) -> heads.

Only the forward pass lives here (and build_model, which checks that a config's network fits
an environment); storage is in buffer.py, the loop in trainer.py. Shape legend in
memories/window.py.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from action_heads import ActionDistribution, ActionHead, orthogonal
from config import Config
from environments import SpaceSpec
from memories import make_memory, memory_widths
from normalization import ObservationNormalizer


class ImageEncoder(nn.Module):
    """The Nature-DQN CNN (Mnih et al. 2015): uint8 (..., H, W, C) -> (..., D)."""

    def __init__(self, obs_shape: tuple[int, ...], embed_dim: int):
        super().__init__()
        h, w, c = obs_shape
        # In-place ReLUs: a convolution's backward needs its input, not its output, so the
        # activations can be overwritten; this saves one copy of each (~175 MB at 2,048 images).
        self.conv = nn.Sequential(
            orthogonal(nn.Conv2d(c, 32, 8, 4)), nn.ReLU(inplace=True),
            orthogonal(nn.Conv2d(32, 64, 4, 2)), nn.ReLU(inplace=True),
            orthogonal(nn.Conv2d(64, 64, 3, 1)), nn.ReLU(inplace=True), nn.Flatten())
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, c, h, w)).shape[1]
        self.project = nn.Sequential(orthogonal(nn.Linear(flat, embed_dim)), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).permute(0, 3, 1, 2)          # (B*, C, H, W)
        # Observations stay uint8 until here: 4x less storage and transfer than float32.
        x = x.to(torch.float32).div_(255.0)
        return self.project(self.conv(x)).reshape(*lead, -1)              # (..., D)


class VectorEncoder(nn.Module):
    def __init__(self, obs_shape: tuple[int, ...], embed_dim: int):
        super().__init__()
        self.project = nn.Sequential(orthogonal(nn.Linear(int(np.prod(obs_shape)), embed_dim)),
                                     nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.project(obs.to(torch.float32))


class MixedEncoder(nn.Module):
    """An image and a vector packed into one uint8 (..., H*W*C + 4N) observation
    (environments.adapters): the image through the CNN, the N float32 values concatenated to
    its embedding, both projected to D."""

    def __init__(self, image_shape: tuple[int, ...], vector_size: int, embed_dim: int):
        super().__init__()
        self.image_shape, self.image_bytes = tuple(image_shape), int(np.prod(image_shape))
        self.image = ImageEncoder(image_shape, embed_dim)
        self.project = nn.Sequential(orthogonal(nn.Linear(embed_dim + vector_size, embed_dim)),
                                     nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-1]
        image = obs[..., :self.image_bytes].reshape(*lead, *self.image_shape)  # (..., H, W, C)
        # The vector's bytes reinterpreted as the float32 values they were packed from.
        vector = obs[..., self.image_bytes:].contiguous().view(torch.float32)  # (..., N)
        return self.project(torch.cat([self.image(image), vector], dim=-1))    # (..., D)


def make_encoder(spec: SpaceSpec, embed_dim: int) -> nn.Module:
    """The encoder for the spec's observation layout: image, packed image + vector, vector."""
    if spec.image_shape:
        return MixedEncoder(spec.image_shape, spec.vector_size, embed_dim)
    if spec.is_image:
        return ImageEncoder(spec.obs_shape, embed_dim)
    return VectorEncoder(spec.obs_shape, embed_dim)


class ImageDecoder(nn.Module):
    """The ImageEncoder run backwards, for the observation-reconstruction loss: (..., D) ->
    (..., H, W, C) in [0, 1] for the encoder's (H, W, C) images. Memory Gym (Pleines et al.
    2025) reports TrXL needs it on the finite tasks. Each transposed convolution's
    output_padding restores the rows and columns its convolution's stride dropped, so any
    size the encoder takes comes back whole (84 -> 20 -> 9 -> 7 and back; 36 -> 8 -> 3 -> 1)."""

    def __init__(self, embed_dim: int, obs_shape: tuple[int, ...]):
        super().__init__()
        h, w, c = obs_shape
        sizes = [(h, w)]
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            sizes.append(tuple((n - kernel) // stride + 1 for n in sizes[-1]))
        (h1, w1), (h2, w2), (h3, w3) = sizes[1:]
        self.grid = (h3, w3)
        self.project = nn.Sequential(nn.Linear(embed_dim, 64 * h3 * w3), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 3, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, output_padding=((h1 - 4) % 2, (w1 - 4) % 2)),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 8, 4, output_padding=((h - 8) % 4, (w - 8) % 4)),
            nn.Sigmoid())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        lead = h.shape[:-1]
        x = self.project(h).view(-1, 64, *self.grid)                       # (B*, 64, h3, w3)
        x = self.deconv(x)                                                 # (B*, C, H, W)
        return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[2:], -1)     # (..., H, W, C)


@dataclass
class PolicyOutput:
    distribution: ActionDistribution   # over the flat actions, batch (...)
    value: torch.Tensor                # (...)
    reconstruction: Optional[torch.Tensor] = None  # (..., H, W, C) when the decoder is on


class StepOutput(NamedTuple):
    policy: PolicyOutput               # (B, ...) for B environments
    state: NamedTuple                  # the memory's state after the step
    to_store: torch.Tensor             # (B, *layout().shape): the buffer's entry for the step


class ActorCritic(nn.Module):
    def __init__(self, config: Config, spec: SpaceSpec):
        super().__init__()
        D_in, D_out = memory_widths(config)
        hidden = config.hidden_layer_size
        self.encoder = make_encoder(spec, D_in)
        self.memory = make_memory(config)
        self.hidden = nn.Sequential(orthogonal(nn.Linear(D_out, hidden)), nn.ReLU())
        self.policy_branch = nn.Sequential(orthogonal(nn.Linear(hidden, hidden)), nn.ReLU())
        self.value_branch = nn.Sequential(orthogonal(nn.Linear(hidden, hidden)), nn.ReLU())
        self.policy_heads = ActionHead(spec, hidden, config)
        self.value_head = orthogonal(nn.Linear(hidden, 1), gain=1.0)
        self.decoder = ImageDecoder(D_out, spec.obs_shape) \
            if config.reconstruction_loss_coefficient > 0 else None
        # Running observation statistics: buffers, so the model file carries them to
        # evaluate.py and enjoy.py. Applied before the network by the agent (agent.py), so
        # that the buffer stores the observations exactly as the network saw them.
        self.compile_update = config.compile_update
        self.autocast = config.update_precision == "bfloat16"
        self.obs_normalizer = ObservationNormalizer(spec.obs_shape, config.normalization_clip) \
            if config.normalize_observations else None

    def _heads(self, h: torch.Tensor, reconstruct: bool = True) -> PolicyOutput:
        z = self.hidden(h)
        distribution = self.policy_heads(z, self.policy_branch)
        value = self.value_head(self.value_branch(z)).squeeze(-1)
        # Acting never needs the reconstruction: only the training loss uses it.
        reconstruction = self.decoder(h) if self.decoder is not None and reconstruct else None
        return PolicyOutput(distribution, value, reconstruction)

    def forward(self, obs: torch.Tensor, memory: torch.Tensor, key_episode: torch.Tensor,
                query_step: torch.Tensor) -> PolicyOutput:
        """Training: obs (B, G, *obs_shape) of B segments; memory (B, K, *shape) the entries
        the buffer kept for them (memories.StoreLayout); key_episode (B, M+G); query_step
        (B, G). Outputs are (B, G, ...). The encoder and memory run as compile_update and
        update_precision say; the heads in float32, eagerly."""
        features = compiled_features() if self.compile_update else ActorCritic.features
        with torch.autocast(obs.device.type, torch.bfloat16, enabled=self.autocast):
            h = features(self, obs, memory, key_episode, query_step)     # (B, G, D_out)
        return self._heads(h.float())

    def features(self, obs: torch.Tensor, memory: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """The encoder and the memory over B segments (forward's arguments): (B, G, D_out)."""
        x = self.encoder(obs)                                              # (B, G, D)
        memory = memory.to(torch.float32)          # stored entries may be held in bfloat16
        return self.memory.segments(x, memory, key_episode, query_step)

    @torch.no_grad()
    def step(self, obs: torch.Tensor, state: NamedTuple, episode_step: torch.Tensor) -> StepOutput:
        """Acting: obs (B, *obs_shape), one per environment; state the memory's; episode_step
        (B,) each step's index in its episode (0 starts one). Tensors in and out, no
        callbacks into the caller: torch.compile takes the whole step as one graph."""
        h, state, to_store = self.memory.step(self.encoder(obs), state, episode_step)
        return StepOutput(self._heads(h, reconstruct=False), state, to_store)


@functools.cache
def compiled_features() -> Callable:
    """ActorCritic.features compiled (called with the model first), built once per process.
    Shapes change between minibatches (a last micro-batch, a rank's share), so after the
    first shape torch.compile recompiles with dynamic sizes rather than once per shape."""
    return torch.compile(ActorCritic.features)


def build_model(config: Config, spec: SpaceSpec, device: torch.device) -> ActorCritic:
    """The network config describes, for spec's observations and actions, on device."""
    if config.reconstruction_loss_coefficient > 0 and not spec.is_image:
        raise ValueError(f"reconstruction_loss_coefficient = {config.reconstruction_loss_coefficient}"
                         f": the decoder reconstructs image observations, but this environment "
                         f"observes {spec.obs_dtype} {tuple(spec.obs_shape)}. Fix: set it to 0.0.")
    if config.normalize_observations and spec.obs_dtype != "float32":
        raise ValueError(f"normalize_observations = True: it normalises vector observations, "
                         f"but this environment observes {spec.obs_dtype} "
                         f"{tuple(spec.obs_shape)} (an image, or an image and a vector). Fix: "
                         f"set it to false.")
    return ActorCritic(config, spec).to(device)
