"""The shapes of `wala serve`'s API answers, for FastAPI's OpenAPI schema (/docs) and its answer checks."""

from __future__ import annotations

from pydantic import BaseModel


class Failure(BaseModel):
    error: str  # one line, no local paths


class Model(BaseModel):
    name: str
    condition: str  # the flag of its condition, or "unconditional"
    kind: str  # the condition kind (pointcloud, voxel, image, sketch, depth, views, text, none)
    source: str  # official, wala, builtin
    licence: str  # the terms of its weights
    parameters: int
    files: int  # how many condition files a job gives
    formats: list[str]  # the file suffixes it reads
    steps: int  # the default sampling steps
    scale: float  # the default guidance
    # how a job gives it a prompt (`text`): "caption" (it reads the text), "chain" (the server's --text-model
    # draws its views from the prompt first), or None (files only)
    prompt: str | None


class Progress(BaseModel):
    stage: str  # queued, loading, drawing views, sampling, decoding, meshing, writing
    step: int  # step i of `steps` while drawing views or sampling
    steps: int


class Result(BaseModel):
    seconds: float
    faces: int
    preview: str | None  # turntable PNG (None when it could not be drawn)
    obj: str
    glb: str
    viewer: str  # JSON {positions, indices}: the mesh (≤ 60k faces) as base64 little-endian float32 / uint32
    views: str | None = None  # PNG: the views a text model drew from the prompt, side by side (None otherwise)


class JobState(BaseModel):
    id: str
    state: str  # queued, running, done, failed, cancelled
    position: int | None  # 0 running, 1… waiting, None finished
    progress: Progress
    error: str | None
    result: Result | None  # links, once done


class Mesh(BaseModel):
    positions: str
    indices: str


class Generated(Result):
    id: str
    mesh: Mesh


class Health(BaseModel):
    ok: bool
    queued: int
    running: str | None
    capacity: int
    model: str | None  # the model in memory


_FORM_FIELDS = {
    "model": {"type": "string", "description": "a model name from GET /api/models"},
    "steps": {"type": "integer", "description": "sampling steps (default: the model's)"},
    "scale": {"type": "number", "description": "classifier-free guidance (default: the model's); also `guidance`"},
    "seed": {"type": "integer", "default": 0},
    "text": {
        "type": "string",
        "maxLength": 500,
        "description": "a prompt, for a model whose `prompt` is not null (one line; instead of files)",
    },
    "text_steps": {"type": "integer", "default": 50, "description": "the text-to-views model's DDIM steps"},
    "text_guidance": {"type": "number", "default": 10.0, "description": "the text-to-views model's guidance"},
}
UPLOAD = {  # the request body both job routes take, for the OpenAPI schema (they stream it themselves)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        **_FORM_FIELDS,
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        **_FORM_FIELDS,
                        "files": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        },
                    },
                }
            },
        },
    }
}
