# The image the scheduled jobs run on AWS (ECS Fargate; infra/scheduler.py): slim Python, the
# PostgreSQL tools of the stack's major version (pg_dump/pg_restore/psql for backups and restores,
# initdb/pg_ctl for the scratch server of a restore drill), pgops with its pinned dependencies, non-root.
# Build: docker build --build-arg PG_MAJOR=16 -t <ecr repository url>:<pgops:schedulerImageTag> .
# PG_MAJOR must equal the major of pgops:engineVersion (tests/infra/test_dockerfile.py checks the default).
ARG PG_MAJOR=16
FROM python:3.11-slim-bookworm
ARG PG_MAJOR

# PostgreSQL's own apt repository (apt.postgresql.org): Debian ships one major per release.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-${PG_MAJOR} postgresql-client-${PG_MAJOR} \
 && apt-get purge -y curl gnupg && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 pgops
WORKDIR /app
COPY pyproject.toml requirements.lock ./
COPY ops/ ops/
COPY infra/ infra/
RUN python -m venv /app/.venv \
 && /app/.venv/bin/pip install --no-cache-dir -c requirements.lock . \
 && rm -rf build
COPY tasks.py ./
COPY sql/ sql/
COPY runbooks/ runbooks/

ENV PATH=/app/.venv/bin:$PATH \
    PGOPS_PG_BINDIR=/usr/lib/postgresql/${PG_MAJOR}/bin \
    PGOPS_STATE_DIR=/tmp/pgops \
    PYTHONDONTWRITEBYTECODE=1
USER pgops
# The Scheduler's schedules override the command with `invoke schedule.run <job>`.
CMD ["invoke", "schedule.show"]
