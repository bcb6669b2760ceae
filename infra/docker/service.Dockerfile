# The light services (api, recorder, dashboard, flower): one recipe, one extra per image.
#   docker build -f infra/docker/service.Dockerfile --build-arg EXTRA=api .
# Only the named extra is installed, so none of these images carries torch.
FROM python:3.11-slim

ARG EXTRA

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# uid 1000 so files on the bind-mounted datasets directory match a typical host user; the
# mount points are owned by it so a fresh named volume (artifacts) starts writable.
RUN useradd --create-home --uid 1000 paddy \
    && mkdir -p /data /artifacts \
    && chown paddy:paddy /data /artifacts

WORKDIR /app

# Dependencies first, read from pyproject.toml alone: a code change does not reinstall them.
# An EXTRA that pyproject.toml does not define fails here with a KeyError.
COPY pyproject.toml README.md ./
RUN test -n "${EXTRA}" || { echo "build with --build-arg EXTRA=<extra from pyproject.toml>" >&2; exit 1; } \
    && python -c "import sys, tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*project['dependencies'], *project['optional-dependencies'][sys.argv[1]], sep='\n')" "${EXTRA}" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY shared/ shared/
COPY services/ services/
COPY infra/ infra/
# Dependencies are already satisfied; this adds the paddy package and its `paddy` command.
RUN pip install --no-cache-dir ".[${EXTRA}]" \
    && rm -rf build paddy.egg-info

USER paddy
