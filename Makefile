# The README's commands. `make setup` is idempotent.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup test test-slow test-cluster train benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	# POPGym and MuJoCo are optional for users; the tests train on them.
	$(BIN)/pip install --quiet --no-deps -r requirements-popgym.txt
	$(BIN)/pip install --quiet -r requirements-mujoco.txt
	# JAX and its environment suites (gymnax, Craftax, POPGym Arcade), with their real
	# imports listed: their declared dependencies would replace gymnasium and pygame-ce.
	$(BIN)/pip install --quiet --no-deps -r requirements-jax.txt

test: setup
	$(BIN)/ruff check .
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest -q

test-slow: setup
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest -q -m slow

# Only the multi-node Ray cluster test (`make test` includes it).
test-cluster: setup
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest -q -m cluster

train: setup
	$(BIN)/python train.py --config configs/proof_of_memory.yaml --run-id pom --overwrite

benchmark: setup
	$(BIN)/python benchmarks/throughput.py --config configs/proof_of_memory.yaml --updates 5

clean:
	rm -rf $(VENV) summaries .pytest_cache
