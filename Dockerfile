# vidgate's container image: `vidgate serve` by default (SQLite and local files under /data);
# the same image runs `vidgate api`, `vidgate worker` and `vidgate migrate` at scale.
#
#   docker build -t vidgate .                  (podman: add --format docker to keep the HEALTHCHECK)
#   docker run -p 8080:8080 -v vidgate-data:/data vidgate
#
# Dependencies come from requirements.lock (pinned, hash-checked), so a rebuild installs exactly the
# same packages. PyAV's wheels bundle FFmpeg (libx264 included) and need only libstdc++ and zlib,
# which the slim image already has: the runtime stage installs no system packages at all.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python3 -m venv /opt/vidgate
# The lock first: its layer is reused until the lock itself changes.
COPY requirements.lock ./
RUN /opt/vidgate/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/vidgate/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/vidgate/bin/pip install --no-deps /wheels/vidgate-*.whl \
 && /opt/vidgate/bin/pip check \
 && /opt/vidgate/bin/python -c "import av, numpy, vidgate.gateway.app, vidgate.gateway.render" \
 && /opt/vidgate/bin/pip uninstall -q -y pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 vidgate \
 && useradd --system --uid 10001 --gid vidgate --home-dir /data --no-create-home --shell /usr/sbin/nologin vidgate \
 && mkdir -m 0700 /data \
 && chown vidgate:vidgate /data
COPY --from=builder /opt/vidgate /opt/vidgate
ENV PATH=/opt/vidgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VIDGATE_DATA_DIR=/data
USER vidgate
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["vidgate", "serve", "--host", "0.0.0.0", "--port", "8080"]
