"""The Rekognition backend with a stand-in client that throttles: for bench/drills/throttling.py.

Selected in the cluster with FACE_BACKEND=bench.drills.throttled_backend.ThrottledRekognitionBackend.
The real `RekognitionBackend` (limiter, metrics, retries, error translation)
runs unchanged; only the AWS client is replaced. Every call takes
BENCH_CALL_LATENCY seconds, fails with ThrottlingException with probability
BENCH_THROTTLE_RATE, and appends "start end operation outcome" to a per-process
file in BENCH_CALL_LOG_DIR, from which the drill computes the concurrency.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from processing.backends.rekognition import RekognitionBackend


class ThrottlingClient:
    """Answers the Rekognition operations the pipeline uses, with injected throttling."""

    def __init__(self) -> None:
        self.rate = float(os.environ.get("BENCH_THROTTLE_RATE", "0.5"))
        self.latency = float(os.environ.get("BENCH_CALL_LATENCY", "0.1"))
        folder = Path(os.environ.get("BENCH_CALL_LOG_DIR", "/tmp"))
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"calls-{os.getpid()}.log"
        self.lock = threading.Lock()

    def _call(self, operation: str, answer: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        started = time.time()
        time.sleep(self.latency)
        throttled = random.random() < self.rate
        with self.lock, self.log_path.open("a") as log:
            log.write(f"{started:.6f} {time.time():.6f} {operation} {'throttled' if throttled else 'ok'}\n")
        if throttled:
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)  # type: ignore[arg-type]
        return {**answer, "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}

    def create_collection(self, **params: Any) -> dict[str, Any]:
        return self._call("CreateCollection", {"StatusCode": 200, "CollectionArn": "arn", "FaceModelVersion": "7.0"})

    def index_faces(self, **params: Any) -> dict[str, Any]:
        face = {
            "FaceId": str(uuid.uuid4()),
            "BoundingBox": {"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.2},
            "Confidence": 99.0,
            "ExternalImageId": params.get("ExternalImageId", ""),
        }
        return self._call("IndexFaces", {"FaceRecords": [{"Face": face}], "UnindexedFaces": []})

    def search_faces(self, **params: Any) -> dict[str, Any]:
        return self._call("SearchFaces", {"FaceMatches": []})

    def search_faces_by_image(self, **params: Any) -> dict[str, Any]:
        return self._call("SearchFacesByImage", {"FaceMatches": []})

    def search_users(self, **params: Any) -> dict[str, Any]:
        return self._call("SearchUsers", {"UserMatches": []})

    def search_users_by_image(self, **params: Any) -> dict[str, Any]:
        return self._call("SearchUsersByImage", {"UserMatches": []})

    def create_user(self, **params: Any) -> dict[str, Any]:
        return self._call("CreateUser", {})

    def delete_user(self, **params: Any) -> dict[str, Any]:
        return self._call("DeleteUser", {})

    def associate_faces(self, **params: Any) -> dict[str, Any]:
        associated = [{"FaceId": face} for face in params.get("FaceIds", [])]
        return self._call("AssociateFaces", {"AssociatedFaces": associated, "UnsuccessfulFaceAssociations": []})

    def disassociate_faces(self, **params: Any) -> dict[str, Any]:
        return self._call(
            "DisassociateFaces", {"DisassociatedFaces": [{"FaceId": f} for f in params.get("FaceIds", [])]}
        )

    def detect_faces(self, **params: Any) -> dict[str, Any]:
        box = {"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.2}
        return self._call("DetectFaces", {"FaceDetails": [{"BoundingBox": box, "Confidence": 99.0}]})

    def delete_faces(self, **params: Any) -> dict[str, Any]:
        return self._call("DeleteFaces", {"DeletedFaces": list(params.get("FaceIds", []))})

    def delete_collection(self, **params: Any) -> dict[str, Any]:
        return self._call("DeleteCollection", {"StatusCode": 200})


class ThrottledRekognitionBackend(RekognitionBackend):
    """RekognitionBackend talking to `ThrottlingClient`."""

    def __init__(self) -> None:
        super().__init__(client=ThrottlingClient())
