# metaray: the Metacontroller sync hook for RayCluster (FastAPI on uvicorn, port 8080).
#
#   docker build -t ghcr.io/metaray/metaray:0.1.0 .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp ghcr.io/metaray/metaray:0.1.0
#
# The Kubernetes manifests are in metacontroller/; docker-compose.yml runs it with Prometheus.

# ---- builder: build metaray's wheel and install it with its dependencies into /opt/venv ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md requirements.lock ./
COPY app ./app

# The venv gets no pip of its own (nothing installs at run time); the builder's pip installs
# into it: first the pinned runtime dependencies (requirements.lock, the same versions the tests
# run against), then metaray itself without resolving anything more.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.lock \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /wheels/metaray-*.whl \
 && /opt/venv/bin/metaray --help > /dev/null

# ---- runtime: the venv only, as an unprivileged user ----
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="metaray" \
      org.opencontainers.image.description="Ray-on-Kubernetes: RayCluster as a Metacontroller CompositeController sync hook" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 metaray \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin metaray

COPY --from=builder /opt/venv /opt/venv

USER 10001
EXPOSE 8080

# slim has no curl: ask /healthz with the standard library (any error or non-2xx exits 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]

ENTRYPOINT ["metaray"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
