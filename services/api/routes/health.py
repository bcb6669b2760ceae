from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from redis import RedisError

from services.api.deps import RedisDep, get_store

router = APIRouter(tags=["health"])


@router.get("/health")
def health(redis_client: RedisDep) -> JSONResponse:
    """200 when Redis and MongoDB both answer, else 503 with what is wrong."""
    checks: dict[str, str] = {}
    try:
        redis_client.ping()
        checks["redis"] = "ok"
    except RedisError as error:
        checks["redis"] = f"unreachable: {type(error).__name__}"
    try:
        get_store().ping()
        checks["mongodb"] = "ok"
    except PyMongoError as error:
        checks["mongodb"] = f"unreachable: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)
