"""ETA providers standing in for a routing engine in tests and the benchmark."""

import asyncio

from delivery.eta import EtaProvider, Leg


class SlowProvider(EtaProvider):
    """Answers every leg after `delay` seconds, like a remote routing engine."""

    name = "slow"
    delay = 0.2
    in_flight = 0
    peak_in_flight = 0

    async def estimate(self, leg: Leg) -> int:
        cls = type(self)
        cls.in_flight += 1
        cls.peak_in_flight = max(cls.peak_in_flight, cls.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            cls.in_flight -= 1
        return 1234


class HangingProvider(EtaProvider):
    """Never answers for merchants whose id is odd; answers at once for the others."""

    name = "hanging"

    async def estimate(self, leg: Leg) -> int:
        if leg.merchant_id % 2:
            await asyncio.sleep(3600)
        return 777


class FailingProvider(EtaProvider):
    name = "failing"

    async def estimate(self, leg: Leg) -> int:
        raise ConnectionError("routing engine unreachable")
