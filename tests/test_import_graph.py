"""The import graph runs one way: the contracts of pyproject.toml's [tool.importlinter]
(README, "Layers"), each a test, so that `make test` fails as `make lint` does."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "contracts"
]


@pytest.mark.parametrize("contract", [c["id"] for c in CONTRACTS])
def test_import_contract_kept(contract):
    # The command reads the source files and imports none of them; a cache would answer
    # for files as they were.
    result = subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache", "--contract", contract],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
