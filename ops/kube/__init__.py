"""The one package that talks to the Kubernetes API, so every call the CLI makes (and every verb its Role
must grant) is listed here, split by concern as kopf splits its clients: reads, mutations and jobs, over
one connection; everything past it deals in ops.model's plain dataclasses and in KubeError."""

from __future__ import annotations

from ops.kube.connection import Connection
from ops.kube.errors import KubeError, NotFound, Unreachable, UnusableKubeconfig
from ops.kube.jobs import Jobs
from ops.kube.mutations import Mutations
from ops.kube.reads import INSTANCE, Reads

__all__ = [
    "INSTANCE",
    "Cluster",
    "Connection",
    "Jobs",
    "KubeError",
    "Mutations",
    "NotFound",
    "Reads",
    "Unreachable",
    "UnusableKubeconfig",
]


class Cluster:
    """What every action is given: one connection, and its clients by concern."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self.reads = Reads(connection)
        self.mutations = Mutations(connection, self.reads)
        self.jobs = Jobs(connection)

    def close(self) -> None:
        self.connection.close()
