"""The baseline the endpoint benchmark divides by: FastAPI returning a small JSON object, nothing else."""

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/")
async def root() -> dict[str, object]:
    return {"ok": True, "service": "bare", "items": [1, 2, 3]}
