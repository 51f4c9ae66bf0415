# One image, two entrypoints: `registry serve` (the primary) and `edge serve` (an edge node).
# Build: buildah bud --format docker -t oci-registry:dev .   (HEALTHCHECK is kept only in the docker format)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY registry ./registry
COPY edge ./edge
COPY config ./config
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /src

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="oci-registry" \
      org.opencontainers.image.description="OCI registry primary and edge cache"
RUN groupadd --system --gid 10001 registry \
    && useradd --system --uid 10001 --gid registry --home-dir /data --no-create-home registry \
    && mkdir -p /data \
    && chown registry:registry /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REGISTRY__STORAGE__ROOT=/data \
    REGISTRY__SERVER__LISTEN=0.0.0.0:5000
VOLUME ["/data"]
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; port=os.environ.get('HEALTH_PORT','5000'); sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:'+port+'/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["registry"]
CMD ["serve"]
