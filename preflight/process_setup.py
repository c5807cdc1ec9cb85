"""Process-wide settings that must be made before torch is imported.

Import this first in every entry point (train.py, enjoy.py, benchmarks, tests):
`import preflight.process_setup`.
"""
import os

# Torch's OpenMP threads spin while they wait, by default. With any other busy process on the
# same cores (our own environment workers included) that collapsed throughput: two runs at
# once on 2 cores gave 65 steps/s each with spinning and 1,600-2,300 with PASSIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
