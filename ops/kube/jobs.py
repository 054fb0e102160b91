"""The run-once work the CLI starts (a migration): create a Job, follow it and its pods, read their logs,
and delete it with its pods when it is done."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiException

from ops.kube import convert
from ops.kube.connection import FIELD_MANAGER, Connection
from ops.kube.errors import api_error
from ops.model import JobInfo, PodInfo

JOB_NAME = "batch.kubernetes.io/job-name"


class Jobs:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.namespace = connection.namespace

    def create(self, manifest: dict[str, Any]) -> str:
        try:
            job = self.connection.call("POST", "jobs", query=[("fieldManager", FIELD_MANAGER)], body=manifest)
        except ApiException as exc:
            raise api_error(exc, "creating the Job") from exc
        return convert.name_of(job)

    def read(self, name: str) -> JobInfo:
        try:
            return convert.job(self.connection.get("jobs", name))
        except ApiException as exc:
            raise api_error(exc, f"reading Job {name}") from exc

    def pods(self, name: str) -> list[PodInfo]:
        try:
            items = self.connection.list("pods", label_selector=f"{JOB_NAME}={name}")
        except ApiException as exc:
            raise api_error(exc, f"listing the pods of Job {name}") from exc
        return sorted((convert.pod(p) for p in items), key=lambda p: p.created or datetime.now(UTC))

    def log(self, pod: str, container: str) -> str:
        try:
            return self.connection.log(pod, container=container)
        except ApiException as exc:
            raise api_error(exc, f"reading the log of {pod}") from exc

    def delete(self, name: str, *, timeout: float = 60) -> bool:
        """Deletes the Job and, first, its pods (foreground); True once both are gone."""
        try:
            self.connection.call("DELETE", "jobs", name, query=[("propagationPolicy", "Foreground")])
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise api_error(exc, f"deleting Job {name}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.connection.get("jobs", name)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise api_error(exc, f"reading Job {name}") from exc
            time.sleep(0.5)
        return False
