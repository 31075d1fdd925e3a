"""The HTTP baseline: a FastAPI endpoint that reads the body and answers a constant."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

app = FastAPI()
ANSWER = b'{"children":[],"status":{}}'


@app.post("/sync")
async def sync(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")
