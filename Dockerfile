# syntax=docker/dockerfile:1.7
# Inkwell's image: the locked dependencies and the service, nothing else, run as a non-root user
# on a read-only root filesystem (it writes only to /tmp, which the chart mounts as an emptyDir).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first, in their own layer: it is rebuilt only when uv.lock changes. No extra: the ops
# CLI's Kubernetes client stays out of the image.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY service ./service
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
ARG GIT_REVISION=unknown
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    INKWELL_ENVIRONMENT=production \
    INKWELL_GIT_REVISION=${GIT_REVISION}
RUN groupadd --system --gid 10001 inkwell \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin inkwell
# Owned by root and read-only to the service: only /tmp is written at run time.
COPY --from=build /app/.venv /app/.venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["inkwell", "serve", "--host", "0.0.0.0", "--port", "8000"]
