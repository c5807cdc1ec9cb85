"""Playing a trained agent loads no training code: agent.py, enjoy.py and evaluate.py import
neither the training loop, the sampler, the buffer, the worker pool nor TensorBoard, in a
fresh interpreter."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING = {"trainer", "sampler", "buffer", "losses", "worker_pool", "tensorboard",
            "torch.utils.tensorboard"}


def modules_after_import(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_agent_imports_no_training_code():
    loaded = modules_after_import("import agent")
    assert "model" in loaded and "memories" in loaded     # the probe sees project modules
    assert not loaded & TRAINING


def test_enjoy_and_evaluate_import_no_training_loop():
    for module in ("enjoy", "evaluate"):
        loaded = modules_after_import(f"import {module}, agent")
        assert not loaded & TRAINING, module
