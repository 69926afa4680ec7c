# syntax=docker/dockerfile:1
# Unitgate's container image (deploy/README.md, docs/operations.md "Kubernetes").
#
#   docker build -t unitgate .
#   docker run unitgate migrate            # the migration job: idp migrate
#   docker run -p 8000:8000 unitgate       # a node: idp serve
#
# Two stages: the first builds a virtual environment with the compilers that some
# wheels may need; the second copies only that environment onto a slim Debian with
# the runtime libraries, and runs as an unprivileged user. The root file system may
# be read-only: the only writes go to /tmp (gunicorn's heartbeat files and the
# Prometheus multiprocess folder), which the platform mounts as a tmpfs or emptyDir.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config libxml2-dev libxmlsec1-dev libxmlsec1-openssl \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/unitgate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY connectors ./connectors
COPY scim ./scim
COPY templates ./templates
RUN /opt/unitgate/bin/pip install --no-cache-dir . \
    && /opt/unitgate/bin/python -m compileall -q /opt/unitgate/lib

FROM ${PYTHON_IMAGE} AS runtime
# Runtime libraries of the SAML signature code (xmlsec); no compiler.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libxmlsec1-openssl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 unitgate \
    && useradd --system --uid 10001 --gid unitgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin unitgate
COPY --from=build /opt/unitgate /opt/unitgate
ENV PATH=/opt/unitgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/unitgate-metrics \
    IDP_MASTER_KEY_FILE=/run/secrets/unitgate/master-key \
    IDP_LOG_FORMAT=json
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["idp"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--proxy-hops", "1"]
