"""Percentiles of locust's response-time histograms ({rounded ms: count}), computed as locust does,
without importing locust: importing it monkey-patches the whole process with gevent."""

from __future__ import annotations

from collections.abc import Mapping


def percentile(histogram: Mapping[int, int], share: float) -> float:
    """The response time that `share` of the requests did not exceed: locust's own
    calculate_response_time_percentile, so the verdict agrees with locust's tables."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    within = int(total * share)
    counted = 0
    for milliseconds in sorted(histogram, reverse=True):
        counted += histogram[milliseconds]
        if total - counted <= within:
            return float(milliseconds)
    return 0.0
