# One image for every part of the compose stack: the receiver (web), the worker, beat, the
# one-shot webhook install, and the MLflow server itself (mlflow is a regpilot dependency;
# the `compose` extra adds its PostgreSQL driver and Flower).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY regpilot/ regpilot/
COPY handlers/ handlers/
COPY tasks/ tasks/
COPY config/ config/

RUN pip install ".[compose]"

# Never root at run time. /var/lib/regpilot holds beat's schedule; /mlflow/artifacts is the
# MLflow server's artifact store (both are volumes in docker-compose.yml).
RUN useradd --system --create-home --uid 10001 regpilot \
    && mkdir -p /var/lib/regpilot /mlflow/artifacts \
    && chown -R regpilot /var/lib/regpilot /mlflow
USER regpilot
ENV REGPILOT_STATE_DIR=/var/lib/regpilot

EXPOSE 8080 9808
CMD ["gunicorn", "-c", "python:handlers.gunicorn_conf", "--bind", "0.0.0.0:8080", "--workers", "2", "handlers:create_app()"]
