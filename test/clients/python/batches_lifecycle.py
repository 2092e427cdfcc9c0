"""The Batches lifecycle with the official openai Python SDK, unchanged: upload the seed's
file, create a batch, poll it to completion, download its output, list, cancel, and the
typed errors. Prints one JSON document (test/clients/helpers/batches.ts reads it)."""
import json
import os
import sys
import time

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["FILES_API_BASE_URL"], api_key=os.environ["FILES_API_KEY"], max_retries=0)


def error_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        return {"class": type(e).__name__, "status": e.status_code, "code": body.get("code"), "param": body.get("param"), "message": body.get("message")}
    return {"class": "none", "status": None, "code": None, "param": None, "message": None}


with open(os.environ["FILES_API_SAMPLE"], "rb") as f:
    uploaded = client.files.create(file=("test_model.jsonl", f), purpose="batch")
created = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                metadata={"run": "python-sdk"})
polls = 0
batch = created
while batch.status not in ("completed", "failed", "expired", "cancelled"):
    time.sleep(0.2)
    polls += 1
    if polls > 300:
        sys.exit("the batch did not finish in 60 s: " + batch.status)
    batch = client.batches.retrieve(created.id)
output = client.files.content(batch.output_file_id).text
listed = [b.id for b in client.batches.list(limit=1)]
cancelled = client.batches.cancel(batch.id)
user_data = client.files.create(file=("notes.jsonl", b"{}\n"), purpose="user_data")
print(json.dumps({
    "sdk": "openai-python " + openai.__version__,
    "file": uploaded.model_dump(),
    "created": created.model_dump(),
    "final": batch.model_dump(),
    "polls": polls,
    "output": output,
    "listed": listed,
    "cancel_completed": cancelled.model_dump(),
    "errors": {
        "not_found": error_of(lambda: client.batches.retrieve("batch_00000000000000000000000000")),
        "wrong_purpose": error_of(lambda: client.batches.create(input_file_id=user_data.id, endpoint="/v1/chat/completions", completion_window="24h")),
        "wrong_endpoint": error_of(lambda: client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")),
    },
}))
