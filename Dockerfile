# kis-chatops: the bot, as `chatbot run`, on a slim Python base, as a non-root user.
#   docker build -t kis-chatops .
#   docker run -d --name kisbot -v kisbot-data:/data -e KISBOT_TELEGRAM_TOKEN=... kis-chatops
# The wheel is built on the full image, which has a C compiler: setup.py compiles the real-time frame parser
# with mypyc there (the slim image has none, and would install it as pure Python).
FROM python:3.11 AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md config.example.toml ./
COPY chatbot ./chatbot
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY config.example.toml ./
COPY --from=wheel /wheels /wheels
RUN pip install --find-links /wheels "kis-chatops[postgres]" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin kisbot \
    && mkdir -p /data \
    && chown kisbot:kisbot /data

USER kisbot
# Everything the bot keeps (SQLite database, master key file) lives in the /data volume.
# Set KISBOT_DATABASE_URL to a postgresql:// URL to keep the data in PostgreSQL instead.
ENV KISBOT_DATABASE_URL=sqlite:////data/kisbot.sqlite3 \
    KISBOT_SECURITY_MASTER_KEY_FILE=/data/master.key \
    KISBOT_HTTP_HOST=0.0.0.0 \
    KISBOT_HTTP_PORT=8080 \
    KISBOT_LOGGING_JSON=true
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import json,sys,urllib.request; r=urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4); sys.exit(0 if json.load(r).get('ok') else 1)"

STOPSIGNAL SIGTERM
ENTRYPOINT ["chatbot"]
CMD ["run"]
