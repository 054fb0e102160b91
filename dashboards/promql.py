"""PromQL pieces that know which labels their result carries, so that a matcher, a grouping, a join or
a legend naming a label the series lack fails when the files are generated, not later in Grafana."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# A matcher's value is skipped whole, so that one that looks like a matcher is not read as a label.
_MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,|$)')


class UnknownLabel(ValueError):
    """A query names a label that the series it reads do not have."""


@dataclass(frozen=True)
class Query:
    """A PromQL expression and the labels of the series it returns."""

    promql: str
    labels: frozenset[str]

    def __str__(self) -> str:
        return self.promql

    def having(self, *labels: str) -> tuple[str, ...]:
        """`labels`, once checked to be among the result's."""
        missing = sorted(set(labels) - self.labels)
        if missing:
            raise UnknownLabel(
                f"{self.promql} has no label {', '.join(missing)} (it has {', '.join(sorted(self.labels))})"
            )
        return labels


@dataclass(frozen=True)
class Series:
    """A series name and every label its samples carry."""

    name: str
    labels: frozenset[str]

    def __call__(self, *matchers: str) -> Query:
        """The series selected by `matchers` (each `label="value"`, `label=~"regex"`, ... or several
        of them joined by commas)."""
        joined = ", ".join(matchers)
        if _MATCHER.sub("", joined).strip():
            raise ValueError(f"not label matchers: {joined}")
        selected = Query(f"{self.name}{{{joined}}}" if matchers else self.name, self.labels)
        selected.having(*_MATCHER.findall(joined))
        return selected


def _range(function: str, query: Query, window: str) -> Query:
    return Query(f"{function}({query}[{window}])", query.labels)


def rate(query: Query, window: str) -> Query:
    return _range("rate", query, window)


def increase(query: Query, window: str) -> Query:
    return _range("increase", query, window)


def last_over_time(query: Query, window: str) -> Query:
    return _range("last_over_time", query, window)


def max_over_time(query: Query, window: str) -> Query:
    return _range("max_over_time", query, window)


def _aggregate(operator: str, query: Query, by: Sequence[str]) -> Query:
    if not by:
        return Query(f"{operator}({query})", frozenset())
    return Query(f"{operator} by ({', '.join(query.having(*by))}) ({query})", frozenset(by))


def sum_by(query: Query, *by: str) -> Query:
    return _aggregate("sum", query, by)


def group_by(query: Query, *by: str) -> Query:
    return _aggregate("group", query, by)


def max_by(query: Query, *by: str) -> Query:
    return _aggregate("max", query, by)


def min_by(query: Query, *by: str) -> Query:
    return _aggregate("min", query, by)


def count_by(query: Query, *by: str) -> Query:
    return _aggregate("count", query, by)


def topk(k: int, query: Query) -> Query:
    return Query(f"topk({k}, {query})", query.labels)


def histogram_quantile(phi: float, buckets: Query) -> Query:
    buckets.having("le")
    return Query(f"histogram_quantile({phi}, {buckets})", buckets.labels - {"le"})


def copy_label(query: Query, *, source: str, target: str) -> Query:
    """`query` with `target` holding the value of its label `source`."""
    query.having(source)
    return Query(f'label_replace({query}, "{target}", "$1", "{source}", "(.*)")', query.labels | {target})


def on(labels: Sequence[str], *sides: Query) -> str:
    """The `on (...)` of a binary operation between `sides`, each of which must carry `labels`."""
    for side in sides:
        side.having(*labels)
    return f"on ({', '.join(labels)})"


def ratio(numerator: Query, denominator: Query) -> Query:
    """One series over another, matched on all their labels, which must therefore be the same."""
    if numerator.labels != denominator.labels:
        raise UnknownLabel(f"{numerator} and {denominator} do not have the same labels to match on")
    return Query(f"{numerator}\n/\n{denominator}", numerator.labels)
