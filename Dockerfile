# syntax=docker/dockerfile:1
# Build stage: compile the Cython modules of arinova/_fast into a wheel.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY arinova ./arinova
RUN pip install --no-cache-dir build \
    && python -m build --wheel --outdir /wheels \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/arinova-*.whl

# Runtime stage: the wheel and its dependencies only, run as an unprivileged user.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=3501 UPLOAD_DIR=/data/uploads
RUN useradd --system --create-home --uid 10001 arinova \
    && mkdir -p /data/uploads && chown -R arinova /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels arinova \
    && rm -rf /wheels \
    && python -c "import arinova._fast.frames as f; assert f.COMPILED"
USER arinova
WORKDIR /data
EXPOSE 3501
# TLS is terminated by the proxy in front (Python-side TLS costs ~256 KiB per socket).
CMD ["arinova", "serve"]
