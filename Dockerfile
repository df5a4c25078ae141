# newswatch: one image for every role (producer, article worker, delivery worker); the command picks the role.
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY newswatch/__init__.py newswatch/__init__.py
COPY producer/__init__.py producer/__init__.py
COPY worker/__init__.py worker/__init__.py
RUN pip install . && pip uninstall -y newswatch

COPY newswatch newswatch
COPY producer producer
COPY worker worker
RUN pip install --no-deps . \
    && useradd --system --create-home --uid 10001 newswatch

# The default watchlist and the sample articles; compose mounts the operator's own over them.
COPY watchlist.toml /config/watchlist.toml
COPY seeds /data/seeds

ENV NEWSWATCH_WATCHLIST=/config/watchlist.toml \
    NEWSWATCH_SEEDS_DIR=/data/seeds \
    NEWSWATCH_DATA_DIR=/data/newswatch

USER newswatch
ENTRYPOINT ["newswatch"]
CMD ["--help"]
