"""A run's files: where they go, what a model file holds, and how each is written and read.

One job per module: `paths` (the names of a run's files and folders), `checkpoint` (the
model file: its payload, saving, loading, the int8 copy), `integrity` (damaged or hostile
model files refused), `resume` (whether a checkpoint fits the run that continues it) and
`atomic` (writes that a kill cannot leave half done).
"""
