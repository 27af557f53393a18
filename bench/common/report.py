"""What the bench and the soak print: log lines, percentiles, ratios and error samples."""

import threading


def log(message: str = "") -> None:
    print(message, flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values already sorted; NaN when there are none."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def ratio(over, under, field: str) -> float:
    """`field` of one measurement over the same field of another, NaN when that one is 0."""
    below = getattr(under, field)
    return round(getattr(over, field) / below, 3) if below else float("nan")


def log_ratios(ratios: dict, *, width: int = 34) -> None:
    for name, entry in ratios.items():
        log(f"{name:<{width}} {entry['value']:>8}  {entry['target'] or '(reference)'}")


class ErrorSamples:
    """The first few errors a scenario's clients report, from any thread: `on_error`."""

    def __init__(self, limit: int = 5):
        self.limit = limit
        self.samples: list[str] = []
        self._lock = threading.Lock()

    def on_error(self, message: str) -> None:
        with self._lock:
            if len(self.samples) < self.limit:
                self.samples.append(message)
