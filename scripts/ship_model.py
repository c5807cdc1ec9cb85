"""Write a small, playing-only copy of a trained model for models/: its config, spaces and
weights, without the optimiser, RNG and sampler state that only resuming needs.

    python scripts/ship_model.py models/minigrid_gtrxl_seed0.nn models/minigrid_memory.nn --int8

--bfloat16 stores the weights in bfloat16 (half the size); --int8 stores weight matrices as
int8 with a scale per output row (a quarter). They are loaded back into the float32 network,
so check the copy still plays well: tests/test_shipped_models.py does so for every shipped
model. The copy cannot be resumed with train.py --resume.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)

PLAYING_KEYS = ("config", "spec", "model", "update", "steps")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a model file written by train.py")
    parser.add_argument("target", help="where the playing-only copy goes")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bfloat16", action="store_true", help="store the weights in bfloat16")
    precision.add_argument("--int8", action="store_true",
                           help="store weight matrices as int8 with a float32 scale per row")
    args = parser.parse_args(argv)
    import torch
    from runs.checkpoint import INT8_KEY, load_model_file, quantize_int8, save_model_file
    try:
        payload, _ = load_model_file(args.source)
    except ValueError as e:
        parser.error(str(e))
    missing = [key for key in PLAYING_KEYS if key not in payload]
    if missing:
        parser.error(f"{args.source} lacks {', '.join(missing)}: not a file train.py wrote")
    kept = {key: payload[key] for key in PLAYING_KEYS}
    if args.bfloat16:
        # float32 weights only: the float64 observation statistics (normalize_observations)
        # are a few values that set every input's scale, and stay exact.
        kept["model"] = {name: t.to(torch.bfloat16) if t.dtype == torch.float32 else t
                         for name, t in payload["model"].items()}
    if args.int8:
        kept["model"], kept[INT8_KEY] = quantize_int8(payload["model"])
    save_model_file(args.target, kept)
    print(f"wrote {args.target}: {os.path.getsize(args.target) / 2**20:.1f} MiB "
          f"(from {os.path.getsize(args.source) / 2**20:.1f} MiB), update {kept['update']}, "
          f"{kept['steps']:,} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
