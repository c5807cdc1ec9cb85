"""sweep.py on a real Ray cluster: separate `ray start` nodes on this machine, with token
authentication, as docs/sweeps.md starts them. Two trials run one per node; the second node's
raylet is killed mid-trial, and its trial is retried on a node that joined meanwhile and
resumes from its checkpoint. A refused token is one message, not a traceback.

Marked `cluster`: `make test` runs it, `make test-cluster` runs only it, and
`pytest -m "not slow and not cluster"` leaves it out. Every process the test starts is found
by PID (the descendants and the session of its `ray start` and sweep.py processes) and killed
at the end, also when a test fails. Ports are free ones the system picks, on 127.0.0.1."""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Optional

import psutil
import pytest

from test_cli import write_config
from test_sweep import sweep_args

pytestmark = pytest.mark.cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
# 12 updates with a checkpoint every 2: the second node's trial is paused at its first
# checkpoint and its node killed there, and the retry has most of the run left to resume.
UPDATES, CHECKPOINT_INTERVAL = 12, 2
# Bounds, generous for a slow, shared machine.
NODE_START_SECONDS = 90
SWEEP_SECONDS = 300
TINY = {"updates": UPDATES, "checkpoint_interval": CHECKPOINT_INTERVAL,
        "evaluation": {"n_seeds": 2, "repetitions": 1}}
RUNS = ("tiny_seed0", "tiny_seed1")
# Ray declares a lost node dead after 3 failed health checks 1 s apart instead of 5 failed
# checks 3 s apart (its system config, read from RAY_<name> by every Ray process), so the
# killed trial is retried sooner.
FAST_NODE_DEATH = {"RAY_health_check_initial_delay_ms": "1000",
                   "RAY_health_check_period_ms": "1000",
                   "RAY_health_check_timeout_ms": "1000",
                   "RAY_health_check_failure_threshold": "3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One `ray start --block`: the node's Ray processes are its descendants."""
    name: str
    process: subprocess.Popen
    output: IO[str]

    def text(self) -> str:
        self.output.seek(0)
        return self.output.read()

    def ip(self) -> str:
        return re.search(r"Local node IP: (\S+)", self.text())[1]

    def raylet(self) -> psutil.Process:
        (raylet,) = [p for p in psutil.Process(self.process.pid).children()
                     if p.name() == "raylet"]
        return raylet


@dataclass
class Cluster:
    env: dict[str, str]
    address: str
    folder: str
    nodes: dict[str, Node] = field(default_factory=dict)
    others: list[subprocess.Popen] = field(default_factory=list)   # sweep.py, in the test

    def start_node(self, name: str, *args: str) -> Node:
        """`ray start` as the docs give it, on its own ports and temporary folder, with one
        CPU, so that a node runs one trial of --cpus-per-run 1 at a time."""
        temp_dir = os.path.join(self.folder, name)
        os.makedirs(temp_dir)
        output = open(os.path.join(self.folder, f"{name}.out"), "w+", encoding="utf-8")
        command = [RAY, "start", *args, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                   "--temp-dir", temp_dir, "--dashboard-agent-listen-port", str(free_port()),
                   "--object-store-memory", str(80 * 2**20), "--disable-usage-stats",
                   "--block"]
        process = subprocess.Popen(command, env=self.env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        node = self.nodes[name] = Node(name, process, output)
        deadline = time.time() + NODE_START_SECONDS
        while "Ray runtime started" not in node.text():
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray start of the {name} node failed:\n{node.text()[-3000:]}")
            time.sleep(0.2)
        return node

    def node_of(self, process: psutil.Process) -> Optional[str]:
        """The node whose `ray start` the process descends from."""
        ancestors = {p.pid for p in process.parents()}
        return next((n for n, node in self.nodes.items() if node.process.pid in ancestors),
                    None)

    def stop(self) -> None:
        """SIGKILL every process started here, by PID: the descendants of each `ray start`
        and sweep.py, and what left their sessions orphaned (a killed raylet's workers)."""
        leaders = [node.process for node in self.nodes.values()] + self.others
        doomed: set[int] = set()
        for leader in leaders:
            try:
                doomed |= {p.pid for p in psutil.Process(leader.pid).children(recursive=True)}
            except psutil.NoSuchProcess:
                pass
            doomed.add(leader.pid)
        sessions = {leader.pid for leader in leaders}
        for pid in psutil.pids():
            try:
                if os.getsid(pid) in sessions:
                    doomed.add(pid)
            except OSError:
                pass
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for leader in leaders:
            leader.wait(30)
        psutil.wait_procs([p for p in map(process_or_none, doomed) if p], timeout=30)
        for node in self.nodes.values():
            node.output.close()


def process_or_none(pid: int) -> Optional[psutil.Process]:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, both with one CPU; the token reaches every process
    by RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, so no token file of this machine is used."""
    # Short: Ray's socket paths in the session folder must stay under 108 characters.
    folder = tempfile.mkdtemp(prefix="raycl-")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("RAY_") or key in FAST_NODE_DEATH}
    env.update(FAST_NODE_DEATH, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=uuid.uuid4().hex,
               RAY_USAGE_STATS_ENABLED="0", SDL_VIDEODRIVER="dummy")
    port = free_port()
    cluster = Cluster(env, f"127.0.0.1:{port}", folder)
    try:
        cluster.start_node("head", "--head", "--port", str(port), "--include-dashboard",
                           "false", "--dashboard-port", str(free_port()),
                           "--ray-client-server-port", str(free_port()))
        cluster.start_node("second", "--address", cluster.address)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


# ----- the sweep: where each trial runs, and a node lost mid-trial -----

@dataclass(frozen=True)
class Trainer:
    run: str
    resumed: bool
    process: psutil.Process


def trainers(models: str) -> list[Trainer]:
    """This test's train.py processes (other sweeps may run on the machine)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmd = process.info["cmdline"] or []
        if len(cmd) > 1 and cmd[1].endswith("train.py") and models in cmd:
            found.append(Trainer(cmd[cmd.index("--run-id") + 1], "--resume" in cmd, process))
    return found


@dataclass
class Sweep:
    process: subprocess.Popen
    log: IO[str]

    def text(self) -> str:
        self.log.seek(0)
        return self.log.read()


def wait_for(condition, what: str, sweep: Sweep, deadline: float):
    """Poll until `condition()` is truthy; fail naming `what` if the sweep ends or time is up."""
    while True:
        value = condition()
        if value:
            return value
        if sweep.process.poll() is not None or time.time() > deadline:
            pytest.fail(f"the sweep ended or ran out of time before {what}; it printed:\n"
                        f"{sweep.text()[-3000:]}")
        time.sleep(0.1)


def lose_the_second_node(cluster: Cluster, models: str, sweep: Sweep) -> dict:
    """Wait until both trials train, one per node, and the second node's trial saved a
    checkpoint; let a third node join; kill the second node's raylet; see the retry start on
    the third node. Returns the node of each attempt: {run: [node, ...]}.

    Trainers are paused (SIGSTOP) so that this order holds however slow the machine: the head
    node's from its start until the retry has started, so that the head stays busy and the
    retry cannot wait for it (the third node is the only free one); the lost trial's from
    its first checkpoint until its node is killed, so that it is still mid-run then."""
    deadline = time.time() + SWEEP_SECONDS
    first: dict[str, tuple[psutil.Process, Optional[str]]] = {}

    def both_placed() -> bool:
        for trainer in trainers(models):
            if trainer.run not in first:
                node = cluster.node_of(trainer.process)
                if node == "head":
                    trainer.process.suspend()
                first[trainer.run] = trainer.process, node
        return len(first) == 2

    try:
        wait_for(both_placed, "both trials trained", sweep, deadline)
        attempts = {run: [node] for run, (_, node) in first.items()}
        assert sorted(nodes[0] for nodes in attempts.values()) == ["head", "second"], attempts
        lost = next(run for run, nodes in attempts.items() if nodes == ["second"])
        checkpoints = os.path.join(models, lost)
        first_checkpoint = os.path.join(checkpoints, f"update_{CHECKPOINT_INTERVAL:06d}.nn")
        wait_for(lambda: os.path.isfile(first_checkpoint), f"{lost} saved its first checkpoint",
                 sweep, deadline)
        first[lost][0].suspend()
        assert not os.path.isfile(os.path.join(checkpoints, f"update_{UPDATES:06d}.nn")), \
            "the trial finished before its node could be lost: make UPDATES larger"
        cluster.start_node("third", "--address", cluster.address)
        cluster.nodes["second"].raylet().kill()
        retry = wait_for(lambda: next((t.process for t in trainers(models)
                                       if t.run == lost and t.resumed), None),
                         f"{lost} was retried", sweep, deadline)
        attempts[lost].append(cluster.node_of(retry))
    finally:
        for process, _ in first.values():
            try:
                process.resume()
            except psutil.NoSuchProcess:     # the lost trial's trainer died with its node
                pass
    return attempts


@pytest.fixture(scope="module")
def swept(cluster):
    folder = os.path.join(cluster.folder, "sweep")
    os.makedirs(folder)
    write_config(folder, **TINY)
    log = open(os.path.join(folder, "sweep.out"), "w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "sweep.py", *sweep_args(folder), "--address", cluster.address,
         "--cpus-per-run", "1", "--progress-seconds", "2"], cwd=ROOT, env=cluster.env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cluster.others.append(process)
    sweep = Sweep(process, log)
    attempts = lose_the_second_node(cluster, os.path.join(folder, "models", "tiny"), sweep)
    try:
        process.wait(SWEEP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep did not end; it printed:\n{sweep.text()[-3000:]}")
    return process.returncode, sweep.text(), folder, attempts


def attempt_nodes(log_text: str) -> list[str]:
    """The node ids of a trial's attempts, as its log names them."""
    return re.findall(r"^=== \S+ \S+ \S+ \(node (\w+)\): ", log_text, re.M)


def test_two_trials_finish_on_different_nodes(swept):
    status, out, folder, attempts = swept
    assert status == 0, out
    assert {run: nodes[-1] for run, nodes in attempts.items()} in (
        {RUNS[0]: "head", RUNS[1]: "third"}, {RUNS[0]: "third", RUNS[1]: "head"}), attempts
    finals = set()
    for run in RUNS:
        line = re.search(rf"^finished {run} \(.*\) on \S+ \(node (\w+)\)$", out, re.M)
        assert line, out
        log = open(os.path.join(folder, "models", "tiny", "logs", f"{run}.log")).read()
        assert attempt_nodes(log)[-1] == line[1], log
        finals.add(line[1])
    assert len(finals) == 2, out
    assert os.path.isfile(os.path.join(folder, "results", "tiny", "table.md"))


def test_a_trial_whose_node_is_lost_resumes_from_its_checkpoint(swept):
    status, out, folder, attempts = swept
    (lost,) = [run for run, nodes in attempts.items() if len(nodes) == 2]
    assert attempts[lost] == ["second", "third"]
    assert re.search(rf"^finished {lost} \(resumed, \S+, 1 retry\) on ", out, re.M), out
    log = open(os.path.join(folder, "models", "tiny", "logs", f"{lost}.log")).read()
    first, retry = attempt_nodes(log)
    assert first != retry, log
    assert re.search(rf"resuming from .*/{lost}(\.nn|/update_\d+\.nn): {lost}", log), log
    starts = [int(n) for n in re.findall(rf"^run {lost}: .* update (\d+)/{UPDATES}", log, re.M)]
    assert starts[0] == 0 and starts[-1] >= CHECKPOINT_INTERVAL, log
    checkpoints = sorted(os.path.basename(p) for p in
                         glob.glob(os.path.join(folder, "models", "tiny", lost, "*.nn")))
    assert checkpoints == [f"update_{u:06d}.nn"
                           for u in range(CHECKPOINT_INTERVAL, UPDATES + 1, CHECKPOINT_INTERVAL)]


def test_the_nodes_stay_on_this_machine(cluster, swept):
    """Ray 2.60 replaces --node-ip-address 127.0.0.1 by the address of this machine's
    default route (no packet is sent to find it); either way no other machine is contacted."""
    own = {address.address for addresses in psutil.net_if_addrs().values()
           for address in addresses}
    ips = {name: node.ip() for name, node in cluster.nodes.items()}
    assert set(ips.values()) <= own, ips
    assert len(set(ips.values())) == 1, ips


# ----- a refused token: one message, exit status 2 -----

@pytest.mark.parametrize("auth,message", [
    ({}, "the cluster asks for a token, and RAY_AUTH_MODE is unset here"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"},
     "the cluster refused this machine's token"),
])
def test_a_refused_token_is_one_message(cluster, tmp_path, auth, message):
    write_config(str(tmp_path), **TINY)
    env = {k: v for k, v in cluster.env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    # A home without ~/.ray/auth_token: this machine's own token must not be the one tried.
    env.update(auth, HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "sweep.py", *sweep_args(str(tmp_path)),
                             "--address", cluster.address], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --address {cluster.address}: {message}")
    assert "export RAY_AUTH_MODE=token" in line
