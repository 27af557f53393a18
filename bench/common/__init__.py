"""What the bench's scenarios and the soak share: the databases, the processes, the
accounts, load generation and reporting."""

from pathlib import Path

# The repository: the working directory of every process the bench and the soak start.
ROOT = Path(__file__).resolve().parents[2]
