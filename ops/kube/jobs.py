"""The run-once work the CLI starts (a migration): create a Job, follow it and its pods, read their logs,
and delete it with its pods when it is done."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from ops.kube import convert
from ops.kube.connection import FIELD_MANAGER, Connection
from ops.kube.errors import api_error
from ops.model import JobInfo, PodInfo

JOB_NAME = "batch.kubernetes.io/job-name"


class Jobs:
    def __init__(self, connection: Connection) -> None:
        self.namespace = connection.namespace
        self.batch, self.core = connection.batch, connection.core

    def create(self, manifest: dict[str, Any]) -> str:
        try:
            body = client.V1Job.from_dict(manifest)
            assert body is not None
            job = self.batch.create_namespaced_job(self.namespace, body, field_manager=FIELD_MANAGER)
        except ApiException as exc:
            raise api_error(exc, "creating the Job") from exc
        assert job.metadata is not None
        return str(job.metadata.name)

    def read(self, name: str) -> JobInfo:
        try:
            return convert.job(self.batch.read_namespaced_job(name, self.namespace))
        except ApiException as exc:
            raise api_error(exc, f"reading Job {name}") from exc

    def pods(self, name: str) -> list[PodInfo]:
        try:
            items = self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_NAME}={name}").items
        except ApiException as exc:
            raise api_error(exc, f"listing the pods of Job {name}") from exc
        return sorted((convert.pod(p) for p in items), key=lambda p: p.created or datetime.now(UTC))

    def log(self, pod: str, container: str) -> str:
        try:
            return str(self.core.read_namespaced_pod_log(pod, self.namespace, container=container))
        except ApiException as exc:
            raise api_error(exc, f"reading the log of {pod}") from exc

    def delete(self, name: str, *, timeout: float = 60) -> bool:
        """Deletes the Job and, first, its pods (foreground); True once both are gone."""
        try:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise api_error(exc, f"deleting Job {name}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.batch.read_namespaced_job(name, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise api_error(exc, f"reading Job {name}") from exc
            time.sleep(0.5)
        return False
