"""What a job request carries, read as it streams in: the page's multipart form (python-multipart) or a JSON
body with base64 files. Files are written under cleaned names into the job's folder and nothing more is
written past the upload limit; short fields are kept, a prompt (`text`) checked as one line of text."""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from wala.errors import one_line
from wala.serve.jobs import Refused

MAX_FILES = 16
FORM_MARGIN = 2 * 2**20  # body bytes past the uploads' own a request may send: multipart framing, fields
FIELD_BYTES = 1024  # model, steps, scale (guidance), seed: short texts
# A prompt: CLIP reads 77 tokens of it and MiniLM 32 (the rest is cut), about 60 and 25 words; 500
# characters is room for any prompt either model reads, far from what a body could hold.
TEXT_FIELD = "text"  # the prompt's form and JSON field
TEXT_CHARS = 500
TEXT_BYTES = 4 * TEXT_CHARS  # the form field's UTF-8 bytes: 4 per character at most
NAME_CHARS = 100  # an upload's stored name, suffix included
NOT_ONE_LINE = {"Cc", "Cs", "Zl", "Zp"}  # control characters (newlines, tabs, NUL), lone surrogates, line breaks


def check_text(raw: str) -> str:
    """A prompt as a job takes it: stripped; refused (400, one line) when it holds control characters or line
    breaks, is empty or only spaces, or is longer than TEXT_CHARS characters."""
    if any(unicodedata.category(ch) in NOT_ONE_LINE for ch in raw):
        raise Refused(400, "the text holds control characters: a prompt is one line of plain text")
    text = raw.strip()
    if not text:
        raise Refused(400, "the text is empty")
    if len(text) > TEXT_CHARS:
        raise Refused(400, f"the text is longer than {TEXT_CHARS} characters")
    return text


def clean_filename(raw: str) -> str:
    """An uploaded file's name as stored: its last path part, with only ASCII letters, digits, '.', '-' and
    '_' (anything else becomes '_'), no leading dots, at most NAME_CHARS long with its suffix kept;
    "" when nothing is left (refused by the caller)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", re.split(r"[/\\]", raw)[-1]).lstrip(".")
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, dot, suffix = name, "", ""
    return stem[: NAME_CHARS - len(dot + suffix)] + dot + suffix if stem else ""


class UploadForm:
    """python-multipart callbacks that keep a form's short fields and stream its files ("files" parts) into
    `folder`, refusing (Refused) as soon as one is bad: no name, too many, too big together."""

    def __init__(self, folder: Path, upload_limit: int, max_upload_mb: float):
        self.folder, self.upload_limit, self.max_upload_mb = folder, upload_limit, max_upload_mb
        self.fields: dict[str, str] = {}
        self.paths: list[Path] = []
        self.uploaded = 0  # file bytes written so far
        self.ended = False
        self.header, self.headers = [b"", b""], {}
        self.part: dict = {}
        self.file = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self):
        self.headers, self.part = {}, {}

    def header_field(self, data: bytes, start: int, end: int):
        self.header[0] += data[start:end]

    def header_value(self, data: bytes, start: int, end: int):
        self.header[1] += data[start:end]

    def header_end(self):
        self.headers[self.header[0].lower()] = self.header[1]
        self.header = [b"", b""]

    def headers_finished(self):
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.fields) >= 16:
                raise Refused(400, "too many form fields")
            self.part = {"field": name, "value": b""}
        elif name != "files":
            raise Refused(400, "files go in the form's 'files' field")
        elif not options[b"filename"]:  # the browser's empty file input: no name, no bytes
            self.part = {"unnamed": True}
        else:
            filename = clean_filename(options[b"filename"].decode("utf-8", "replace"))
            if not filename:
                raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")
            if len(self.paths) >= MAX_FILES:
                raise Refused(400, f"at most {MAX_FILES} files")
            path = self.folder / filename
            if path.exists():
                raise Refused(400, f"two files named {filename}")
            self.file = open(path, "xb")
            self.paths.append(path)

    def part_data(self, data: bytes, start: int, end: int):
        chunk = data[start:end]
        if self.file is not None:
            self.uploaded += len(chunk)
            if self.uploaded > self.upload_limit:
                raise Refused(400, f"uploads larger than {self.max_upload_mb:g} MB")
            self.file.write(chunk)
        elif "field" in self.part:
            self.part["value"] += chunk
            if self.part["field"] == TEXT_FIELD and len(self.part["value"]) > TEXT_BYTES:
                raise Refused(400, f"the text is longer than {TEXT_CHARS} characters")
            if self.part["field"] != TEXT_FIELD and len(self.part["value"]) > FIELD_BYTES:
                raise Refused(400, "a form field is too long")
        elif chunk:
            raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")

    def part_end(self):
        self.close()
        if "field" in self.part:
            self.fields[self.part["field"]] = self.part["value"].decode("utf-8", "replace")

    def end(self):
        self.ended = True

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


async def read_form(request: Request, folder: Path, upload_limit: int, body_limit: int, max_upload_mb: float):
    """The multipart form of `request` as (fields, file paths), its files streamed into `folder`.

    Once the files pass `upload_limit` bytes (or a part is bad) nothing more is written or parsed, and the rest
    of the body is read and dropped so that the client hears the answer; a body past `body_limit` bytes is
    refused (413) at once, unread."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise Refused(400, "bad upload: send a multipart/form-data form or a JSON body")
    form = UploadForm(folder, upload_limit, max_upload_mb)
    try:
        parser = MultipartParser(options[b"boundary"], form.callbacks(), max_size=body_limit)
    except ValueError as exc:  # a boundary past python-multipart's limit
        raise Refused(400, f"bad upload: {one_line(exc)}") from None
    received, refusal = 0, None
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise Refused(413, f"uploads larger than {max_upload_mb:g} MB")
            if refusal is None:
                try:
                    parser.write(chunk)
                except Refused as exc:
                    refusal = exc
                except ValueError as exc:  # python-multipart's parse errors
                    refusal = Refused(400, f"bad upload: {one_line(exc)}")
                if refusal is not None:
                    form.close()
    finally:
        form.close()
    if refusal is not None:
        raise refusal
    if not form.ended:
        raise Refused(400, "bad upload: the form ends before its closing boundary")
    return form.fields, form.paths


async def read_json(request: Request, folder: Path, upload_limit: int, body_limit: int, max_upload_mb: float):
    """A JSON job `{"model", "steps", "guidance" (or "scale"), "seed", "text", "text_steps", "text_guidance",
    "files": [{"name", "data": base64}]}` → (fields, file paths), the files decoded into `folder` under the
    multipart form's rules."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > body_limit:
            raise Refused(413, f"uploads larger than {max_upload_mb:g} MB")
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused(400, "bad request: the body is not JSON") from None
    files = data.get("files", []) if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise Refused(400, 'bad request: send {"model": …, "files": [{"name": …, "data": base64}]}')
    if len(files) > MAX_FILES:
        raise Refused(400, f"at most {MAX_FILES} files")
    fields = {}
    for key in ("model", "steps", "guidance", "scale", "seed", "text_steps", "text_guidance"):
        value = data.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            fields[key] = str(value)[:FIELD_BYTES]
    text = data.get(TEXT_FIELD)
    if text is not None and not isinstance(text, str):
        raise Refused(400, "bad request: text must be a string")
    if text is not None:
        fields["text"] = text[: TEXT_CHARS + 1]  # enough for check_text to say it is too long
    paths, uploaded = [], 0
    for entry in files:
        name = clean_filename(str(entry.get("name", "")))
        if not name:
            raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")
        try:
            content = base64.b64decode(str(entry.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, f"{name}: its data is not base64") from None
        uploaded += len(content)
        if uploaded > upload_limit:
            raise Refused(400, f"uploads larger than {max_upload_mb:g} MB")
        path = folder / name
        if path.exists():
            raise Refused(400, f"two files named {name}")
        path.write_bytes(content)
        paths.append(path)
    return fields, paths
