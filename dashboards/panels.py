"""The few panel shapes every Inkwell dashboard is made of, so units, legends, thresholds and the
data source are set the same way everywhere."""

from __future__ import annotations

import re
from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from dashboards import queries as q
from dashboards import series
from dashboards.config import Config
from dashboards.promql import Query

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")

Target = tuple[Query, str]  # (PromQL, legend)
Step = tuple[float | None, str]  # (from value, colour)
Panel = cogbuilder.Builder[models.Panel]
Row = tuple[str, Sequence[Panel]]  # (title, panels left to right, top to bottom)


def query(expr: Query, legend: str = "", *, ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    # A legend naming a label the series do not have would read "{{label}}" verbatim in Grafana.
    expr.having(*re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    target = prometheus.Dataquery().expr(expr.promql).legend_format(legend or "__auto").ref_id(ref)
    target = target.datasource(DATASOURCE)
    return target.instant() if instant else target.range()


def thresholds(steps: Sequence[Step]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for value, colour in steps])
    )


OK_ONLY: Sequence[Step] = ((None, "green"),)


def graph(
    title: str,
    description: str,
    targets: Sequence[Target],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    steps: Sequence[Step] = OK_ONLY,
    stacked: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    exemplars: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(thresholds(steps))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .fill_opacity(10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
    )
    if len(steps) > 1:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    for index, (expr, legend) in enumerate(targets):
        panel = panel.with_target(query(expr, legend, ref=chr(ord("A") + index)).exemplar(exemplars))
    return panel


def single(
    title: str,
    description: str,
    expr: Query,
    *,
    unit: str,
    steps: Sequence[Step],
    width: int = 6,
    height: int = 5,
    decimals: int | None = None,
    legend: str = "",
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(thresholds(steps))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(query(expr, legend))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(
    name: str,
    title: str,
    of: Query,
    *,
    label: str | None = None,
    include_all: bool = False,
    hide: bool = False,
) -> dashboard.QueryVariable:
    """A variable holding the values of `label` (default: its own name) on the series `of`."""
    (label,) = of.having(label or name)
    variable = (
        dashboard.QueryVariable(name)
        .label(title)
        .datasource(DATASOURCE)
        .query({"query": f"label_values({of}, {label})", "refId": "variable"})
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )
    if include_all:
        variable = variable.include_all(True).multi(True).all_value(".*")
    if hide:
        variable = variable.hide(models.VariableHide.HIDE_VARIABLE)
    return variable


def scope_variables(config: Config) -> list[cogbuilder.Builder[models.VariableModel]]:
    """Data source, namespace and release: every Inkwell dashboard starts with these three."""
    return [
        datasource_variable(),
        label_variable("namespace", "Namespace", series.BUILD_INFO(*q.service(config))),
        label_variable("release", "Release", series.BUILD_INFO(*q.service(config), 'namespace="$namespace"')),
    ]


def links(config: Config) -> list[cogbuilder.Builder[models.DashboardLink]]:
    """A drop-down of the other Inkwell dashboards, keeping the time range and the variables."""
    return [
        dashboard.DashboardLink("Inkwell dashboards")
        .type(models.DashboardLinkType.DASHBOARDS)
        .tags(list(config.dashboard_tags))
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    ]


def board(
    config: Config,
    uid: str,
    title: str,
    description: str,
    *,
    variables: Sequence[cogbuilder.Builder[models.VariableModel]],
    rows: Sequence[Row],
) -> models.Dashboard:
    builder = (
        dashboard.Dashboard(title)
        .uid(f"{config.dashboard_uid_prefix}-{uid}")
        .description(description)
        .tags(list(config.dashboard_tags))
        .editable()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .links(links(config))
        .variables(list(variables))
    )
    for row, panels in rows:
        builder = builder.with_row(dashboard.Row(row))
        for panel in panels:
            builder = builder.with_panel(panel)
    return builder.build()
