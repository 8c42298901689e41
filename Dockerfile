# stagebot: the Slack bot in HTTP mode (`stagebot serve` on $PORT). Build with `docker build -t stagebot .`;
# running it on Cloud Run or anywhere else: docs/production.md.

# Stage 1: the wheel, built from the same files `pip install .` would use.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY probes ./probes
COPY suites ./suites
COPY sandbox ./sandbox
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime image.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/stagebot/bin:$PATH \
    STAGEBOT_HOME=/var/lib/stagebot \
    STAGEBOT_CONFIG=/etc/stagebot/stagebot.toml \
    PORT=8080

# tini as PID 1 reaps the pytest processes a tier run leaves behind and passes SIGTERM on to the bot's drain.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 stagebot \
    && useradd --system --uid 10001 --gid stagebot --home-dir /var/lib/stagebot --shell /usr/sbin/nologin stagebot \
    && mkdir -p /var/lib/stagebot /etc/stagebot \
    && chown stagebot:stagebot /var/lib/stagebot \
    && python -m venv /opt/stagebot

# Dependencies in their own layer: read from pyproject.toml alone, so a source change does not reinstall them.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/pyproject.toml /tmp/requirements.txt

# Then stagebot itself, without touching the dependencies installed above.
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

# The default SQLite store lives in $STAGEBOT_HOME; mount a volume there, or set DATABASE_URL (PostgreSQL).
VOLUME ["/var/lib/stagebot"]
WORKDIR /var/lib/stagebot
# A numeric user, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080

# No curl in a slim image: the check is Python's own urllib. A 503 (database unreachable) raises, so it fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["tini", "--"]
# `stagebot serve` listens on 0.0.0.0:$PORT; Cloud Run sets PORT itself.
CMD ["stagebot", "serve"]
