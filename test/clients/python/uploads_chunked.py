"""A file sent through the Uploads API by the official openai Python SDK's helper.

Spawned by test/clients/python-sdk-uploads.test.ts with the interpreter of the virtualenv
that scripts/test-services.sh installs (OPENAI_PYTHON). `client.uploads.upload_file_chunked`
creates the upload, sends the file in parts of FILES_API_PART_SIZE bytes and completes it
with the md5; the File's content is then read back. Prints one JSON document.
"""

import hashlib
import json
import os
from pathlib import Path

import openai
from openai import OpenAI


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


client = OpenAI(api_key=env("FILES_API_KEY"), base_url=env("FILES_API_BASE_URL"), max_retries=0)
source = Path(env("FILES_API_SOURCE"))
data = source.read_bytes()
upload = client.uploads.upload_file_chunked(
    file=source,
    mime_type="application/octet-stream",
    purpose="assistants",
    part_size=int(env("FILES_API_PART_SIZE")),
    md5=hashlib.md5(data).hexdigest(),
)
content = client.files.content(upload.file.id).read()
print(json.dumps({
    "sdk": f"openai-python {openai.__version__}",
    "upload": upload.to_dict(),
    "bytes": len(content),
    "sha256": hashlib.sha256(content).hexdigest(),
}))
