"""The Files lifecycle driven by the official openai Python SDK.

Spawned by test/clients/python-sdk.test.ts with the interpreter of the virtualenv that
scripts/test-services.sh installs (OPENAI_PYTHON). Reads its inputs from the environment
and prints one JSON document; the contract is test/clients/helpers/lifecycle.ts.
"""

import hashlib
import json
import os
import sys

import openai
from openai import OpenAI
from openai.types import FileObject

BOUNDARY = "files-api-python-raw-boundary"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


BASE_URL = env("FILES_API_BASE_URL")
SAMPLE = env("FILES_API_SAMPLE")
BIG = env("FILES_API_BIG")
REPEATS = int(env("FILES_API_REPEATS"))
# Retries off: a lost answer must show as the connection error it is.
client = OpenAI(api_key=env("FILES_API_KEY"), base_url=BASE_URL, max_retries=0)
wrong_client = OpenAI(api_key=env("FILES_API_WRONG_KEY"), base_url=BASE_URL, max_retries=0)


def describe(error):
    if isinstance(error, openai.APIConnectionError):
        return {"class": "connection", "status": None, "code": None, "param": None, "message": None, "lines": []}
    if not isinstance(error, openai.APIStatusError):
        return {"class": repr(error), "status": None, "code": None, "param": None, "message": None, "lines": []}
    # The SDK hands the `error` object of the answer as `body`.
    body = error.body if isinstance(error.body, dict) else {}
    return {
        "class": type(error).__name__,
        "status": error.status_code,
        "code": body.get("code"),
        "param": body.get("param"),
        "message": body.get("message"),
        "lines": [entry["line"] for entry in body.get("errors", [])],
    }


def failure(call):
    try:
        call()
    except openai.OpenAIError as error:
        return describe(error)
    raise SystemExit("expected the call to fail")


def raw_file_first(filename, chunks):
    """httpx writes a form's plain fields before its files, and the SDK builds every
    multipart body itself (it refuses raw content under a multipart type): the other order
    goes raw, over the SDK's own HTTP client class, and its answer is read into the SDK's
    FileObject."""

    def body():
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        yield from chunks
        yield f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--{BOUNDARY}--\r\n'.encode()

    headers = {"Authorization": f"Bearer {env('FILES_API_KEY')}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with openai.DefaultHttpxClient() as http:
        response = http.post(f"{BASE_URL}/files", content=body(), headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"raw upload answered {response.status_code}: {response.text}")
    return FileObject.model_validate(response.json())


def file_chunks(path):
    with open(path, "rb") as source:
        while chunk := source.read(64 * 1024):
            yield chunk


def list_ids(order):
    ids = [file.id for file in client.files.list(limit=2, order=order)]
    pages = [len(page.data) for page in client.files.list(limit=2, order=order).iter_pages()]
    return ids, pages


def main():
    with open(SAMPLE, "rb") as source:
        sample = source.read()
    with open(SAMPLE, "rb") as stream_a, open(BIG, "rb") as big:
        uploads = [
            {"name": "stream, file first", "via": "raw multipart", "file": raw_file_first("test_model.jsonl", file_chunks(SAMPLE))},
            {"name": "stream, purpose first", "via": "sdk", "file": client.files.create(file=stream_a, purpose="batch")},
            {"name": "bytes, file first", "via": "raw multipart", "file": raw_file_first("bytes-file-first.jsonl", [sample])},
            {"name": "bytes, purpose first", "via": "sdk", "file": client.files.create(file=("bytes-purpose-first.jsonl", sample), purpose="batch")},
            {"name": "big stream", "via": "sdk", "file": client.files.create(file=big, purpose="batch")},
        ]
    ids = [upload["file"].id for upload in uploads]
    retrieved = [client.files.retrieve(file_id).to_dict() for file_id in ids]
    list_asc, pages_asc = list_ids("asc")
    list_desc, pages_desc = list_ids("desc")
    contents = []
    for file_id in ids:
        data = client.files.content(file_id).read()
        contents.append({"id": file_id, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    def upload_invalid():
        with open(env("FILES_API_INVALID"), "rb") as invalid:
            client.files.create(file=invalid, purpose="batch")

    errors = {
        "wrong_key": failure(lambda: wrong_client.files.retrieve(ids[0])),
        "not_found": failure(lambda: client.files.retrieve("file-01J00000000000000000000000")),
        "invalid_file": failure(upload_invalid),
    }
    deleted = [client.files.delete(file_id).to_dict() for file_id in ids]
    errors["deleted_again"] = failure(lambda: client.files.delete(ids[0]))
    after_delete = [file.id for file in client.files.list(limit=2)]

    refusals = {"attempts": REPEATS, "authentication": 0, "connection": 0, "other": []}
    for _ in range(REPEATS):

        def upload_big():
            with open(BIG, "rb") as big:
                wrong_client.files.create(file=big, purpose="batch")

        seen = failure(upload_big)
        if seen["class"] == "AuthenticationError" and seen["status"] == 401:
            refusals["authentication"] += 1
        elif seen["class"] == "connection":
            refusals["connection"] += 1
        else:
            refusals["other"].append(f"{seen['class']} {seen['status']}")

    return {
        "sdk": f"openai-python {openai.__version__}",
        # to_dict(): the fields the server sent, none the model merely declares.
        "uploads": [{**upload, "file": upload["file"].to_dict()} for upload in uploads],
        "retrieved": retrieved,
        "list_asc": list_asc,
        "list_desc": list_desc,
        "pages_asc": pages_asc,
        "pages_desc": pages_desc,
        "contents": contents,
        "deleted": deleted,
        "list_after_delete": after_delete,
        "errors": errors,
        "refusals": refusals,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    sys.stdout.write("\n")
