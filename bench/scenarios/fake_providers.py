"""ETA providers for the benchmark server, chosen with `ETA_PROVIDER=<dotted path>`.

The bench server runs from the repository root, so `bench.scenarios.fake_providers.Provider100ms`
is importable there. The delay is a class attribute that the scenario reads as well, so
the ratio it reports (p50 ÷ delay) always divides by the delay the server waited.
"""

import asyncio

from delivery.eta import EtaProvider, Leg


class Provider100ms(EtaProvider):
    """Answers every leg after `delay` seconds, like a remote routing engine 100 ms away."""

    name = "bench-100ms"
    delay = 0.1
    eta_s = 1234

    async def estimate(self, leg: Leg) -> int:
        await asyncio.sleep(self.delay)
        return self.eta_s
