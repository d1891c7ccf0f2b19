"""Finds an artifact MLflow stored in MinIO, as MinIO's root user with the MinIO SDK (an independent view).

Run by the Molecule scenarios with the checkout's .venv interpreter (it has the minio package). Lists the objects
under the artifact's prefix, checks the artifact is one of them with the expected content, and with --remove deletes
the objects under that prefix afterwards (the journey's run is gone from MLflow by then).
"""

from __future__ import annotations

import argparse
import posixpath
import sys
from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="MinIO URL, e.g. http://127.0.0.1:9000")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key-file", required=True, type=Path)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True, help="object key, e.g. artifacts/1/<run>/artifacts/file.txt")
    parser.add_argument("--content", required=True, help="what the object must hold (UTF-8)")
    parser.add_argument("--remove", action="store_true", help="delete the objects under the key's folder afterwards")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    endpoint = urlsplit(args.endpoint)
    client = Minio(
        endpoint.netloc,
        access_key=args.access_key,
        secret_key=args.secret_key_file.read_text(encoding="utf-8").strip(),
        secure=endpoint.scheme == "https",
    )
    # The run's folder: artifacts/<experiment>/<run>/ holds artifacts/<file> and the model copy.
    run_prefix = posixpath.dirname(posixpath.dirname(args.key)) + "/"
    keys = [item.object_name for item in client.list_objects(args.bucket, prefix=run_prefix, recursive=True)]
    if args.key not in keys:
        print(f"{args.key} is not in bucket {args.bucket}; under {run_prefix}: {keys}", file=sys.stderr)
        return 1
    answer = client.get_object(args.bucket, args.key)
    try:
        content = answer.read().decode("utf-8")
    finally:
        answer.close()
        answer.release_conn()
    if content != args.content:
        print(f"{args.key} holds {content!r}, expected {args.content!r}", file=sys.stderr)
        return 1
    print(f"ok: {args.key} is in bucket {args.bucket} with the expected content")
    if args.remove:
        for key in keys:
            client.remove_object(args.bucket, key)
        print(f"ok: removed the {len(keys)} objects under {run_prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
