# Parley: a small image that runs `python -m bot` as an unprivileged user.
#   docker build -t parley .
#   docker run --env-file .env -p 8080:8080 -v parley-data:/data parley
# The build stage installs the package (with the PostgreSQL driver) into a virtual environment;
# the runtime stage copies only that environment: no compiler, no pip cache, no sources.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN python -m venv /opt/parley && /opt/parley/bin/pip install ".[postgres]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin parley \
    && mkdir /data && chown parley:parley /data
COPY --from=build /opt/parley /opt/parley
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite+aiosqlite:////data/parley.db
USER parley
WORKDIR /home/parley
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["python", "-m", "bot"]
