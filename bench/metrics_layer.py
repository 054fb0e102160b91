"""Which HTTP metrics layer to ship: Inkwell's own against prometheus-fastapi-instrumentator's
(bench/instrumentator.py: the same app with that library as its metrics layer), each with the rest
of observability on as the chart ships it, and both against observability off, interleaved in one
run. The on/off ratio must stay at or above 0.85 with the layer chosen.

    uv run python -m bench.metrics_layer [--same] [--baseline DIR]

Prints the table of bench/compare.py and `BENCH metrics-layer-<endpoint> <variant>/<reference> ...`:
ours/off, instrumentator/off and instrumentator/ours per endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench import compare, observability
from bench.compare import Endpoint, Ratio, Variant
from bench.stack import stack

INSTRUMENTATOR = "bench.instrumentator:create_app"


def ratios(chosen: Sequence[Endpoint]) -> list[Ratio]:
    pairs = [("ours", "off"), ("instrumentator", "off"), ("instrumentator", "ours")]
    return [Ratio(f"metrics-layer-{e.name}", (e.name, a), (e.name, b)) for e in chosen for a, b in pairs]


def main() -> None:
    opts = compare.command_line(__doc__ or "", connections=16, workers=1)
    with stack() as bench:
        variants = [
            Variant("off", observability.off(bench)),
            Variant("ours", observability.on(bench)),
            Variant("instrumentator", observability.on(bench), app=INSTRUMENTATOR),
        ]
        compare.compare(
            "bench.metrics_layer",
            variants,
            observability.endpoints,
            ratios,
            opts=opts,
            stack=bench,
            prefix="metrics-layer-",
        )


if __name__ == "__main__":
    main()
