"""Process-wide settings that must be made before torch is imported.

Import this first in every entry point (train.py, enjoy.py, benchmarks, tests):
`import preflight.process_setup`.
"""
import os

# Torch's OpenMP threads spin while they wait, by default. With any other busy process on the
# same cores (our own environment workers included) that collapsed throughput: two runs at
# once on 2 cores gave 65 steps/s each with spinning and 1,600-2,300 with PASSIVE.
SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE"}

# The settings this import added to the environment (a value the user set is kept and not
# listed): benchmarks/side_by_side.py removes them again for programs that are not this
# project's, which must run as they would from the user's shell.
APPLIED = {key: value for key, value in SETTINGS.items() if key not in os.environ}
os.environ.update(APPLIED)
