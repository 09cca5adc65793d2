# syntax=docker/dockerfile:1
# Build stage: compile the Cython modules of arinova/_fast into a wheel.
FROM python:3.11-slim-bookworm AS build
# The compiler comes from the base image's Debian release; its exact version follows that
# release's point updates, which a pin would turn into build failures.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY arinova ./arinova
RUN pip install --no-cache-dir build==1.3.0 \
    && python -m build --wheel --outdir /wheels \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/arinova-*.whl

# Runtime stage: the wheel and its dependencies only, run as an unprivileged user.
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=3501 UPLOAD_DIR=/data/uploads
RUN useradd --system --create-home --uid 10001 arinova \
    && mkdir -p /data/uploads && chown -R 10001 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/arinova-*.whl \
    && rm -rf /wheels \
    && python -c "import arinova._fast.frames as f; assert f.COMPILED"
USER 10001
WORKDIR /data
EXPOSE 3501
# /health answers 200 while PostgreSQL and Redis answer, else 503 (urlopen raises: unhealthy)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3501'), timeout=4)"]
# TLS is terminated by the proxy in front (Python-side TLS costs ~256 KiB per socket).
# Migrations run at start (arinova serve creates and migrates the database).
CMD ["arinova", "serve"]
