"""Deterministic demo and benchmark data for an empty database (`manage.py seed_demo`).

- `content`: the vocabulary (categories, products, merchant kinds, names, streets);
- `shapes`: points scattered like a city and zone rings, placed with `geomarket.geo`;
- `context`: options and presets, the shared step context, id reservation, COPY, progress;
- `steps`: one function per table group, run in the order of `SEED_STEPS`;
- `orders`: customers and 90 days of orders with their history;
- `couriers`: the last step, couriers over the city, some carrying orders in flight;
- `run`: `demo_seed()`, the transaction around the steps.
"""

from demo.seeding.context import (
    DEFAULT_SEED,
    DEMO_PASSWORD,
    ORDER_WINDOW,
    PRESETS,
    Progress,
    SeedOptions,
    SeedOptionsError,
    SeedRefused,
    seed_options_build,
)
from demo.seeding.run import SeedResult, demo_seed

__all__ = [
    "DEFAULT_SEED",
    "DEMO_PASSWORD",
    "ORDER_WINDOW",
    "PRESETS",
    "Progress",
    "SeedOptions",
    "SeedOptionsError",
    "SeedRefused",
    "SeedResult",
    "demo_seed",
    "seed_options_build",
]
