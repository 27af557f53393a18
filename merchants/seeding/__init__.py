"""Deterministic demo and benchmark data for an empty database (`manage.py seed_demo`).

- `content`: the vocabulary (categories, products, merchant kinds, names, streets);
- `geodesy`: points and zone rings placed by geodesic offsets on WGS84;
- `context`: options and presets, the shared step context, id reservation, COPY, progress;
- `steps`: one function per table group, run in the order of `SEED_STEPS`;
- `run`: `demo_seed()`, the transaction around the steps.
"""

from merchants.seeding.context import (
    DEFAULT_SEED,
    DEMO_PASSWORD,
    PRESETS,
    Progress,
    SeedOptions,
    SeedOptionsError,
    seed_options_build,
)
from merchants.seeding.run import SeedResult, demo_seed
from merchants.seeding.steps import SeedRefused

__all__ = [
    "DEFAULT_SEED",
    "DEMO_PASSWORD",
    "PRESETS",
    "Progress",
    "SeedOptions",
    "SeedOptionsError",
    "SeedRefused",
    "SeedResult",
    "demo_seed",
    "seed_options_build",
]
