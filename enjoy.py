"""Watch a trained agent play: a live window, or a video file.

    python enjoy.py --model models/RUN.nn
    python enjoy.py --model models/RUN.nn --episodes 5 --video run.mp4

Without a display (no DISPLAY or WAYLAND_DISPLAY) the episodes go to videos/RUN.mp4.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Optional

import preflight.process_setup  # noqa: F401  (before torch)

import numpy as np

from environments.episodes import HELD_OUT_SEED_START
from preflight.refusal import EXIT_REFUSED, error_line

# Held-out by default: training episodes never use seeds from here on
# (environments.episodes.episode_seed).
DEFAULT_SEED = HELD_OUT_SEED_START
# Frames of every episode are kept for the video: far more episodes than anyone watches.
MAX_EPISODES = 10_000


def parse_args(argv=None) -> argparse.Namespace:
    from config import SEED_LIMIT
    from preflight.arguments import nonempty, seed_value
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=nonempty,
                        help="a model file written by train.py")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=seed_value, default=DEFAULT_SEED,
                        help="environment seed of the first episode (then +1 per episode)")
    parser.add_argument("--video", type=nonempty,
                        help="write the episodes to this .mp4 or .gif file")
    parser.add_argument("--deterministic", action="store_true",
                        help="take the most probable action instead of sampling")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--allow-env-id", action="append", default=[], type=nonempty,
                        metavar="ID", help="trust this module:Env-v0 id although the model "
                                           "file names it (gym.make imports module)")
    args = parser.parse_args(argv)
    if not 1 <= args.episodes <= MAX_EPISODES:
        parser.error(f"--episodes {args.episodes}: must lie in [1, {MAX_EPISODES:,}]")
    if args.seed + args.episodes > SEED_LIMIT:
        parser.error(f"--seed {args.seed} --episodes {args.episodes}: the last episode's seed "
                     f"would reach 2^32; seeds must lie in [0, 2^32)")
    if args.video and not args.video.lower().endswith((".mp4", ".gif")):
        parser.error(f"--video {args.video}: the file name must end in .mp4 or .gif")
    if not 1 <= args.fps <= 1000:
        parser.error(f"--fps {args.fps}: must lie in [1, 1000]")
    return args


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Window:
    """A pygame window showing frames scaled up to at least 512 px."""

    def __init__(self, title: str):
        import pygame
        self.pygame = pygame
        pygame.init()
        pygame.display.set_caption(title)
        self.screen = None
        self.clock = pygame.time.Clock()

    def show(self, frame: np.ndarray, fps: int) -> bool:
        pg = self.pygame
        scale = max(1, 512 // max(frame.shape[:2]))
        size = (frame.shape[1] * scale, frame.shape[0] * scale)
        if self.screen is None:
            self.screen = pg.display.set_mode(size)
        surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self.screen.blit(pg.transform.scale(surface, size), (0, 0))
        pg.display.flip()
        self.clock.tick(fps)
        return not any(e.type == pg.QUIT for e in pg.event.get())

    def close(self) -> None:
        self.pygame.quit()


def upscale(frame: np.ndarray, minimum: int = 256) -> np.ndarray:
    """Nearest-neighbour upscaling so tiny frames stay visible in a video."""
    scale = max(1, minimum // max(frame.shape[:2]))
    return frame.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else frame


def video_destination(args: argparse.Namespace) -> Optional[str]:
    """--video, or videos/RUN.mp4 without a display; None to show a window."""
    if args.video is not None or has_display():
        return args.video
    stem = os.path.splitext(os.path.basename(args.model))[0]
    return os.path.join("videos", f"{stem}.mp4")


def play(args: argparse.Namespace) -> list[dict]:
    import torch
    from agent import load_agent, play_episode
    from env_backends import player_backend
    from preflight.outputs import check_writable_file
    from runs.checkpoint import check_environment

    video_path = video_destination(args)
    if video_path:     # before any episode: an unwritable place must not cost the episodes
        check_writable_file(video_path, "--video")
    agent, config, spec = load_agent(args.model, 1, torch.device("cpu"))
    try:
        env = player_backend(config.environment, info_masks=spec.action_mask, render=True)
    except ValueError as e:
        raise ValueError(f"{args.model}: cannot build its environment: {e}") from None
    check_environment(args.model, spec.to_dict(), config.environment, env.spec.to_dict())
    env.reset([args.seed])
    # Envs built without a render_mode (POPGym's constructors take none) give no frames.
    rendering = env.render() is not None
    if not rendering:
        print(f"note: {config.environment.type}/{config.environment.name} cannot render frames; "
              f"playing without a window or video, printing each episode's result.",
              file=sys.stderr, flush=True)
        video_path = None
    window = Window(f"{config.environment.name} - {args.model}") \
        if rendering and not video_path else None
    frames, results = [], []

    def show() -> bool:
        """Before each action: record or show the frame; False once the window is closed."""
        frame = env.render()
        if window is None:
            frames.append(upscale(frame))
            return True
        return window.show(frame, args.fps)

    try:
        for episode in range(args.episodes):
            played = play_episode(agent, env, args.seed + episode, args.deterministic,
                                  show if rendering else None)
            if played is None:                          # the window was closed
                return results
            total, length = played.total_return, played.length
            if video_path:
                frames.append(upscale(env.render()))   # the final state, too
            result = {"episode": episode, "seed": args.seed + episode, "return": total,
                      "length": length, "success": played.success}
            results.append(result)
            print(f"episode {episode}  seed {result['seed']}  return {total:.3f}  "
                  f"length {length}  success {result['success']}", flush=True)
    finally:
        env.close()
        if window is not None:
            window.close()
    if video_path:
        write_video(video_path, frames, args.fps)
        print(f"wrote {video_path} ({len(frames)} frames)")
    return results


def write_video(path: str, frames: list[np.ndarray], fps: int) -> None:
    """Write atomically (runs.atomic) and check the file is not empty: a failed write never
    leaves a partial file or reports a file that is not there."""
    import imageio

    from runs.atomic import atomic_path
    with atomic_path(path) as tmp:
        if path.lower().endswith(".gif"):
            imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
        else:
            with imageio.get_writer(tmp, fps=fps, macro_block_size=1) as writer:
                for frame in frames:
                    writer.append_data(frame)
        if os.path.getsize(tmp) == 0:
            raise OSError(errno.EIO, "the video writer produced an empty file", path)


def _quiet_video_writer_cleanup(unraisable) -> None:
    """imageio's writers close again when garbage-collected; after a failed write (a full
    disk) that second close fails too, and Python would print it as "Exception ignored in
    ...__del__" after the command's own message about the write."""
    # The object is the __del__ function; its module says whose it is.
    module = getattr(unraisable.object, "__module__", None) or ""
    if isinstance(unraisable.exc_value, OSError) and module.startswith("imageio"):
        return
    _default_unraisable_hook(unraisable)


_default_unraisable_hook = sys.unraisablehook


def main(argv=None) -> int:
    from runs.integrity import allow_env_ids
    sys.unraisablehook = _quiet_video_writer_cleanup
    args = parse_args(argv)
    allow_env_ids(args.allow_env_id)
    try:
        play(args)
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_REFUSED
    except OSError as e:       # the video could not be written after all
        print(error_line(f"writing the video failed: {e.strerror or e} "
                         f"({e.filename or args.video})"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
