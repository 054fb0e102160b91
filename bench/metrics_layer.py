"""Which HTTP metrics layer to ship: Inkwell's own against prometheus-fastapi-instrumentator's
(bench/instrumentator.py: the same app with that library as its metrics layer, configured to our
names, labels and buckets), each with the rest of observability on as the chart ships it, and both
against observability off, interleaved in one run, on cached reads (Redis, as staging runs).

    uv run python -m bench.metrics_layer [--same] [--baseline DIR]

Prints the table of bench/compare.py, `BENCH metrics-layer-<endpoint> <variant>/<reference> ...`
(ours/off, instrumentator/off and instrumentator/ours per endpoint), and the decision: the
instrumentator is adopted if its layer costs under 5% of a cached article read more than ours.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench import compare, observability
from bench.compare import Endpoint, Ratio, Samples, Variant
from bench.stack import Stack, stack

INSTRUMENTATOR = "bench.instrumentator:create_app"
# The rule: the library's layer is used if it costs under this share of a cached article read.
ADOPT_BELOW = 0.05


def ratios(chosen: Sequence[Endpoint]) -> list[Ratio]:
    pairs = [("ours", "off"), ("instrumentator", "off"), ("instrumentator", "ours")]
    return [Ratio(f"metrics-layer-{e.name}", (e.name, a), (e.name, b)) for e in chosen for a, b in pairs]


def cached(bench: Stack, env: dict[str, str]) -> dict[str, str]:
    assert bench.redis is not None
    return env | {"INKWELL_REDIS_URL": bench.redis.url}


def decision(samples: Samples) -> str:
    """What the instrumentator's layer costs a cached article read beyond ours: CPU per request,
    median of the rounds' pairs."""
    by_cpu, _ = compare.paired(samples, Ratio("", ("article", "ours"), ("article", "instrumentator")))
    extra = statistics.median(by_cpu) - 1  # ours' requests per CPU-second over the instrumentator's
    verdict = "adopt it" if extra < ADOPT_BELOW else "keep ours"
    return (
        f"# decision: prometheus-fastapi-instrumentator costs a cached article read {extra:.1%} more CPU "
        f"than Inkwell's own layer (adopted below {ADOPT_BELOW:.0%}): {verdict}"
    )


def main() -> None:
    opts = compare.command_line(__doc__ or "", connections=16, workers=1)
    with stack(redis=True) as bench:
        variants = [
            Variant("off", cached(bench, observability.off(bench))),
            Variant("ours", cached(bench, observability.on(bench))),
            Variant("instrumentator", cached(bench, observability.on(bench)), app=INSTRUMENTATOR),
        ]
        samples = compare.compare(
            "bench.metrics_layer",
            variants,
            observability.endpoints,
            ratios,
            opts=opts,
            stack=bench,
            prefix="metrics-layer-",
        )
        print(decision(samples))


if __name__ == "__main__":
    main()
