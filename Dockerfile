# One image for every civility process: `civility serve` (the API) and `civility worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The pinned dependencies change less often than the code, so they get their own layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -r requirements.txt \
    && rm requirements.txt

COPY service ./service
COPY classifier ./classifier
RUN pip install --no-deps .

# The trained model artifacts and their cards; the API refuses to start without an active one.
COPY models ./models

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin civility
USER civility

ENV CIVILITY_ENV=production \
    CIVILITY_HOST=0.0.0.0 \
    CIVILITY_PORT=8080 \
    CIVILITY_MODELS_DIR=/app/models

EXPOSE 8080
CMD ["civility", "serve"]
