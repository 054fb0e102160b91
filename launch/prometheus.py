"""Prometheus on this machine (Debian's package) as the staging stack, the dashboards' local stack
and the tests run it: its command line, where it answers ready, and the chart's rules made to
evaluate at a pace a local stack can watch."""

from __future__ import annotations

from pathlib import Path

import yaml

from launch import binary

# The rule files `python -m dashboards` generates into the chart (dashboards/generate.py's FILES).
RULES = Path(__file__).resolve().parents[1] / "charts" / "inkwell" / "files" / "rules"
READY = "/-/ready"


def command(config: Path, *, data: Path, port: int) -> list[str]:
    """Prometheus with `config`, its database in `data`, listening on 127.0.0.1:`port`, keeping the
    exemplars the service's histograms carry."""
    return [
        binary("prometheus", "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
    ]


def local_rule_files(directory: Path, sources: Path = RULES) -> list[Path]:
    """Copies of the rule files in `sources`, written to `directory`, with every group evaluated at
    the global interval: the SLO-period group runs every 5 minutes in production, too slow to see."""
    paths = []
    for source in sorted(sources.glob("*.yaml")):
        content = yaml.safe_load(source.read_text())
        for group in content["groups"]:
            group.pop("interval", None)
        path = directory / source.name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        paths.append(path)
    return paths
