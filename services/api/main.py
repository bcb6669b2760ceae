"""The Paddy API: `uvicorn services.api.main:app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from services.api import errors
from services.api.body_limit import BodySizeLimit, body_limit
from services.api.deps import check_api_key, get_sweep_services
from services.api.routes import (
    batches,
    cards,
    compare,
    datasets,
    ensembles,
    exports,
    health,
    jobs,
    models,
    predict,
    registry,
    sweeps,
)
from services.api.settings import get_settings
from services.api.sweep_driver import SweepDriver


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()  # refuses to start without a key, or with the example key outside development
    # Random and tpe sweeps advance from here (services/api/sweep_driver.py); it connects lazily,
    # so the API serves (and answers 503s) while MongoDB or Redis is away.
    with SweepDriver(get_sweep_services, settings.sweep_poll_s):
        yield


class ErrorPublic(BaseModel):
    detail: str


# Answers any operation may give, documented once for all of them.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "a body that cannot be parsed"},
    401: {"model": ErrorPublic, "description": "missing or wrong X-API-Key (writes; reads when closed)"},
    413: {
        "model": ErrorPublic,
        "description": "a request body larger than PADDY_MAX_BODY_BYTES (POST /predict: PADDY_MAX_UPLOAD_BYTES; "
        "POST /batches: PADDY_MAX_BATCH_UPLOAD_BYTES)",
    },
    500: {"model": ErrorPublic, "description": "unexpected error; the server log has it under the id given"},
    503: {"description": "Redis or MongoDB unreachable"},
}

app = FastAPI(
    title="Paddy",
    description="Queue training jobs for rice-leaf disease classifiers and read their results. "
    "POST and DELETE need the `X-API-Key` header; reads need it only when PADDY_API_READ_OPEN=false.",
    version="0.2.0",
    lifespan=lifespan,
    responses=COMMON_RESPONSES,
)
errors.install(app)
app.add_middleware(
    BodySizeLimit,
    limit_for=lambda path: body_limit(path, get_settings()),
)
for router in (
    jobs.router,
    cards.router,
    exports.router,
    registry.router,
    sweeps.router,
    ensembles.router,
    predict.router,
    batches.router,
    compare.router,
    models.router,
    datasets.router,
):
    app.include_router(router, dependencies=[Depends(check_api_key)])
# /health stays open: health checks carry no secret. /metrics follows the read rule.
app.include_router(health.router)
