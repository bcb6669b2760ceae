"""The Paddy API: `uvicorn services.api.main:app`."""

from fastapi import FastAPI

from services.api.routes import health, jobs, models

app = FastAPI(
    title="Paddy",
    description="Queue training jobs for rice-leaf disease classifiers and read their results.",
    version="0.1.0",
)
app.include_router(jobs.router)
app.include_router(health.router)
app.include_router(models.router)
