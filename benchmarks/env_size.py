"""What each way of installing nmt weighs on disk: fresh virtual environments, as JSON.

    python benchmarks/env_size.py --env runtime ./runtime \\
        --env full torch==2.13.0 . --env full-export torch==2.13.0 '.[export]'

Each --env NAME REQUIREMENT... makes a fresh virtual environment in a temporary
directory, installs the requirements one pip call each, in order (so a CPU build of torch
can come first), and reports the size of its site-packages (du, MiB) and whether torch is
importable there. Needs the package index (PyPI) or a local cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--env", nargs="+", action="append", required=True, metavar="NAME REQUIREMENT"
    )
    args = parser.parse_args()
    results = {}
    for name, *requirements in args.env:
        with tempfile.TemporaryDirectory(prefix=f"env-size-{name}-") as root:
            results[name] = measure(Path(root) / "venv", requirements)
    print(json.dumps({"python": sys.version.split()[0], "environments": results}, indent=1))


def measure(directory: Path, requirements: list[str]) -> dict:
    """Install `requirements` into a fresh venv at `directory`; its site-packages' size."""
    venv.create(directory, with_pip=True)
    python = directory / "bin" / "python"
    for requirement in requirements:
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
            check=True,
        )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    size = subprocess.run(["du", "-sk", site], check=True, capture_output=True, text=True)
    torch = subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0
    return {
        "requirements": requirements,
        "site_packages_mib": round(int(size.stdout.split()[0]) / 1024, 1),
        "torch_importable": torch,
    }


if __name__ == "__main__":
    main()
