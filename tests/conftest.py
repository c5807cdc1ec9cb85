import os
import sys

# Headless rendering for pygame-based environments (Memory Gym, MiniGrid).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import preflight.process_setup  # noqa: E402,F401  (before torch)
