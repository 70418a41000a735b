# syntax=docker/dockerfile:1
# entra-credential-exporter: build with `docker build -t entra-credential-exporter .`, run with
# `docker run --rm -p 9918:9918 entra-credential-exporter --demo` (see the README's "Deploying" section).

# One pinned base for both stages: the virtual environment's interpreter links to the base's Python.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# The same install CI runs (`pip install .`), into the venv, which is all the final stage takes; the
# dependencies at the versions constraints.txt pins, so that a rebuild gives the same image.
COPY pyproject.toml README.md constraints.txt ./
COPY exporter ./exporter
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . \
    && /opt/venv/bin/python -m compileall -q /opt/venv \
    && /opt/venv/bin/entra-credential-exporter --version

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
# Set by the release workflow: VERSION is exporter.__version__ (the tag), REVISION the git commit, which
# credential_exporter_build_info reports as its revision label.
ARG VERSION
ARG REVISION=unknown
LABEL org.opencontainers.image.title="entra-credential-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Microsoft Entra ID MFA and SSPR registration coverage, polled from Microsoft Graph" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/${PYTHON_IMAGE}"
COPY --from=build /opt/venv /opt/venv
# No bytecode writes (the root filesystem is read-only in the Kubernetes manifests), logs unbuffered.
ENV PATH=/opt/venv/bin:$PATH \
    ENTRA_CREDENTIAL_EXPORTER_REVISION=${REVISION} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user, so that Kubernetes can check runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 9918
# The exporter stops within a few seconds on SIGTERM (docker stop, a pod's termination).
STOPSIGNAL SIGTERM
ENTRYPOINT ["entra-credential-exporter"]
