# The trainer: a Celery worker that owns one GPU (compose reserves it; run one per GPU).
#   docker build -f infra/docker/trainer.Dockerfile .
# The torch 2.14.1 wheel from PyPI bundles the CUDA runtime (nvidia-* wheels), so a plain
# Python base image is enough; the host needs only the NVIDIA driver and container toolkit.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# uid 1000 so files on the bind-mounted datasets directory match a typical host user; the
# mount points are owned by it so a fresh named volume (artifacts) starts writable.
RUN useradd --create-home --uid 1000 paddy \
    && mkdir -p /data /artifacts /home/paddy/.cache/torch \
    && chown -R paddy:paddy /data /artifacts /home/paddy/.cache

WORKDIR /app

# torch and friends (several GB) in their own layer, read from pyproject.toml alone, so a code
# change rebuilds in seconds.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*project['dependencies'], *project['optional-dependencies']['trainer'], sep='\n')" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY shared/ shared/
COPY services/ services/
COPY infra/ infra/
RUN pip install --no-cache-dir ".[trainer]" \
    && rm -rf build paddy.egg-info

USER paddy
