"""Every command of README.md's ```bash blocks runs, in order, as written.

The runner reads the blocks, joins a command's continuation lines (a trailing backslash,
a `for ... done`: `bash -n` says when the text is complete) and runs each command with
`bash -e -o pipefail` in a temporary checkout: `recipes/` and `benchmarks/` are this
checkout's, and `../shared/data/multi30k` beside it holds the first lines (TINY_LINES) of
the real files. Commands that read Multi30k therefore run only where ../shared/data/multi30k
sits beside this checkout (as in CI; NMT_SHARED names another place); elsewhere they are
skipped with a warning. A command that fails, or runs past COMMAND_TIMEOUT, fails the test
with its README line and the end of its output.

What the runner changes, so that the whole README runs in a minute or two:
- every `nmt train RECIPE` gets the overrides of TRAIN_LIMITS right after RECIPE (the
  README's own --set come later and win): 2 steps of 500 tokens, a 16/32-unit model. A
  recipe on the toy corpus (TOY_RECIPES) also gets smaller splits (TOY_SIZES). The models
  learn nothing; the commands after them (translate, evaluate, serve, plot, ensembles)
  run all the same.
- `nmt serve` (or `nmt-runtime serve`) starts in the background on a free port (`--port
  P` added, and `localhost:8000` in the curl commands becomes `localhost:P`), is waited
  for on /health for at most SERVER_WAIT seconds, and is stopped (SIGTERM) before the
  next server starts and at the end. curl gets --fail-with-body, so an HTTP error fails the command.
- the commands, or steps of an `&&` chain, that SKIPPED matches are not run, each for the
  reason given there. A rule that matches nothing fails the test, so the list stays true.
- HF_HUB_OFFLINE and HF_DATASETS_OFFLINE are set: no command may reach the network.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.checkout import ROOT
from helpers.serving import TIMEOUT, free_port, wait_until_up

README = ROOT / "README.md"
SHARED = Path(os.environ.get("NMT_SHARED", ROOT.parent / "shared"))
MULTI30K = SHARED / "data" / "multi30k"
TINY_LINES = {"train": 300, "val": 20, "test_2016_flickr": 20}  # per file, by name prefix

TRAIN_LIMITS = [
    "train.max_steps=2",
    "train.batch_tokens=500",
    "model.embedding_size=16",
    "model.hidden_size=32",
]
TOY_RECIPES = {"quickstart"}  # recipe stems whose data is nmt's toy corpus
TOY_SIZES = [
    "data.train={toy: numbers, split: train, size: 500}",
    "data.valid={toy: numbers, split: valid, size: 20}",
    "data.test={toy: numbers, split: test, size: 20}",
]
COMMAND_TIMEOUT = 300  # seconds: a hang guard, far above what any command takes
SERVER_WAIT = TIMEOUT  # seconds, as tests/helpers/serving.py waits

# (regular expression for a command or one step of an && chain, why it is not run)
SKIPPED = [
    (r"python3 -m venv ", "creates a virtual environment: the test uses the one it runs in"),
    (r"\. \.venv/bin/activate$", "activates that virtual environment"),
    (r"pip install ", "installs: the test runs with what is installed"),
    (r"ruff check \.$", "lints the checkout: CI runs this very line (.ci/run)"),
    (r"lint-imports$", "checks the checkout's layers: CI runs this very line (.ci/run)"),
    (r"python -m pytest", "the test suite, this test included: CI runs it (.ci/run)"),
    (r"python benchmarks/story\.py", "51 minutes of training (test_story.py checks its report)"),
    (r"tensorboard ", "TensorBoard's own server, which runs until stopped"),
    (r"torchrun ", "4 GPUs, or two machines (test_distributed.py runs torchrun on CPUs)"),
]
NEEDS_SHARED = re.compile(r"\.\./shared/|data\.use=local")
SERVE = re.compile(r"(nmt|nmt-runtime) serve\b")  # a server: started in the background


@dataclass
class Command:
    line: int  # README line of its first line
    text: str


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def readme_commands(readme: str) -> list[Command]:
    """The commands of the ```bash blocks, in order; comment-only lines left out."""
    commands: list[Command] = []
    fence: str | None = None  # the language of the block we are in
    pending: list[str] = []
    start = 0
    for number, line in enumerate(readme.splitlines(), 1):
        if line.startswith("```"):
            assert not pending, f"README.md line {start}: the block ends inside a command"
            fence = line[3:].strip() if fence is None else None
            continue
        if fence != "bash" or (not pending and (not line.strip() or line.startswith("#"))):
            continue
        if not pending:
            start = number
        pending.append(line)
        if _complete("\n".join(pending)):
            commands.append(Command(start, "\n".join(pending)))
            pending = []
    return commands


def skip_rule(step: str) -> tuple[str, str] | None:
    """The SKIPPED rule (pattern, reason) that matches a command or step, if any."""
    return next((rule for rule in SKIPPED if re.match(rule[0], step.strip())), None)


def make_checkout(tmp: Path) -> Path:
    """A directory laid out like this checkout, with tiny Multi30k files beside it."""
    checkout = tmp / "checkout"
    checkout.mkdir()
    for name in ("recipes", "benchmarks"):
        (checkout / name).symlink_to(ROOT / name, target_is_directory=True)
    if MULTI30K.is_dir():
        tiny = tmp / "shared" / "data" / "multi30k"
        tiny.mkdir(parents=True)
        for path in MULTI30K.glob("*.gz"):
            lines = next((n for p, n in TINY_LINES.items() if path.name.startswith(p)), 30)
            with gzip.open(path, "rt", encoding="utf-8") as f:
                head = list(itertools.islice(f, lines))
            with gzip.open(tiny / path.name, "wt", encoding="utf-8") as f:
                f.writelines(head)
    return checkout


def limit_training(text: str) -> str:
    """`nmt train RECIPE` → `nmt train RECIPE --set train.max_steps=2 ...` (see above)."""

    def limited(match: re.Match) -> str:
        recipe = match.group(2)
        extra = TRAIN_LIMITS + (TOY_SIZES if Path(recipe).stem in TOY_RECIPES else [])
        return match.group(0) + "".join(f" --set {shlex.quote(s)}" for s in extra)

    return re.sub(r"(?m)^(\s*nmt train) (\S+)", limited, text)


class Runner:
    """Runs the commands in one checkout; keeps at most one server running."""

    def __init__(self, checkout: Path):
        self.checkout = checkout
        bin_dir = str(Path(sys.executable).parent)  # nmt, python: this environment's
        path = bin_dir + os.pathsep + os.environ.get("PATH", "")
        self.env = {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        self.server: subprocess.Popen | None = None
        self.port = 0
        self.log = checkout.parent / "serve.log"

    def run(self, command: Command, text: str) -> None:
        if verb := SERVE.match(text):
            return self.serve(command, text, verb.group(0))
        if re.match(r"curl ", text):
            if self.server is None:
                pytest.fail(f"README.md line {command.line}: {text!r} needs `nmt serve` first")
            text = "curl --fail-with-body " + text[len("curl ") :]
            text = text.replace("localhost:8000", f"localhost:{self.port}")
        text = limit_training(text)
        try:
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", text],
                cwd=self.checkout,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"README.md line {command.line}: {command.text!r} ran past "
                        f"{COMMAND_TIMEOUT} s (ran as {text!r})")  # fmt: skip
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-3000:]
            pytest.fail(f"README.md line {command.line}: {command.text!r} exited "
                        f"{done.returncode} (ran as {text!r}):\n{output}")  # fmt: skip

    def serve(self, command: Command, text: str, verb: str) -> None:
        self.stop()
        self.port = free_port()
        text = text.replace(verb, f"exec {verb} --port {self.port}", 1)
        with self.log.open("w") as log:
            self.server = subprocess.Popen(
                ["bash", "-c", text], cwd=self.checkout, env=self.env, stdout=log, stderr=log
            )
        try:
            wait_until_up(f"127.0.0.1:{self.port}", self.server)
        except RuntimeError as e:
            self.stop()
            output = self.log.read_text(errors="replace")[-3000:]
            pytest.fail(f"README.md line {command.line}: {command.text!r}: {e}:\n{output}")

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(SERVER_WAIT)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server = None


def children_cpu() -> float:
    """CPU seconds used by the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 30, "the README's ```bash blocks were not found"
    runner = Runner(make_checkout(tmp_path))
    used, not_run = set(), []
    try:
        for command in commands:
            steps = command.text.split(" && ")
            rules = [skip_rule(step) for step in steps]
            for step, rule in zip(steps, rules, strict=True):
                if rule is not None:
                    used.add(rule[0])
                    print(f"line {command.line}: not run, {rule[1]}: {step}")
            kept = [step for step, rule in zip(steps, rules, strict=True) if rule is None]
            if kept and NEEDS_SHARED.search(command.text) and not MULTI30K.is_dir():
                not_run.append(command)
            elif kept:
                start, cpu = time.monotonic(), children_cpu()
                runner.run(command, " && ".join(kept))
                print(f"line {command.line}: {time.monotonic() - start:.1f} s, "
                      f"{children_cpu() - cpu:.1f} s of CPU")  # fmt: skip
    finally:
        runner.stop()
    stale = [pattern for pattern, _ in SKIPPED if pattern not in used]
    assert not stale, f"SKIPPED rules that match no README command: {stale}"
    if not_run:
        lines = ", ".join(str(c.line) for c in not_run)
        warnings.warn(f"{MULTI30K} is missing: README lines {lines} were not run", stacklevel=1)


def test_commands_are_read_whole():
    text = "a\n```bash\n# c\nx \\\n  y\nfor i in 1; do\n  z\ndone\n```\n```\nnot bash\n```\n"
    found = [(c.line, c.text) for c in readme_commands(text)]
    assert found == [(4, "x \\\n  y"), (6, "for i in 1; do\n  z\ndone")]
    assert limit_training("  nmt train quickstart # then nmt train x") == (
        "  nmt train quickstart --set train.max_steps=2 --set train.batch_tokens=500 "
        "--set model.embedding_size=16 "
        "--set model.hidden_size=32 --set "
        "'data.train={toy: numbers, split: train, size: 500}' --set "
        "'data.valid={toy: numbers, split: valid, size: 20}' --set "
        "'data.test={toy: numbers, split: test, size: 20}' # then nmt train x"
    )
