# Tidings as a container: `tidings serve` on 0.0.0.0:8000, configured by
# TIDINGS_* environment variables (docs/DEPLOYMENT.md, "The container image").
# Build: docker build -t tidings .  (not built in this repository's CI: its
# machines reach no registry for base images; tests/cli/test_compose_file.py
# checks this file and runs its health check against a real server.)
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

# -- build: the wheel, from the sources only ----------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# -- runtime: the wheel and its dependencies, nothing else ---------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIDINGS_HOST=0.0.0.0 \
    TIDINGS_PORT=8000 \
    TIDINGS_LOG_JSON=true \
    TIDINGS_DATABASE_URL=sqlite:////data/tidings.db
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home tidings
COPY --from=build /dist/ /tmp/dist/
RUN pip install /tmp/dist/*.whl && rm -rf /tmp/dist
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# No curl in slim images: Python's urllib asks /readyz (503 while the
# database is unreachable or a background task is down: exit 1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TIDINGS_PORT', '8000') + '/readyz', timeout=4)"]
ENTRYPOINT ["tidings"]
CMD ["serve"]
