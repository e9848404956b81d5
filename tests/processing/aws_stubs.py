"""botocore Stubber helpers: a real Rekognition client whose answers the test scripts.

Stubbed calls skip botocore's retry handler and the network, but go through
parameter validation and response-shape validation of the real client, so a
wrong parameter name or an impossible response fails the test.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from processing.backends.rekognition import RekognitionBackend, build_client


def face_id() -> str:
    return str(uuid.uuid4())


def box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"Left": left, "Top": top, "Width": width, "Height": height}


class RekognitionStub:
    """Queue expected calls (with their parameters) and the answers to give."""

    def __init__(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        settings.AWS_REGION = "eu-west-1"
        self.prefix = settings.AWS_REKOGNITION_COLLECTION_PREFIX
        self.settings = settings
        self.client = build_client()
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.backend = RekognitionBackend(client=self.client)

    def collection(self, event_id: int) -> str:
        return f"{self.prefix}{event_id}"

    # -- expectations --------------------------------------------------------

    def create_collection(self, event_id: int, exists: bool = False) -> None:
        params = {"CollectionId": self.collection(event_id)}
        if exists:
            self.stubber.add_client_error("create_collection", "ResourceAlreadyExistsException", expected_params=params)
            return
        self.stubber.add_response(
            "create_collection",
            {"StatusCode": 200, "CollectionArn": f"aws:rekognition:{event_id}", "FaceModelVersion": "7.0"},
            params,
        )

    def index_faces(
        self,
        event_id: int,
        external_id: str,
        faces: list[tuple[str, dict[str, float]]],
        *,
        unindexed: list[list[str]] | None = None,
        max_faces: int | None = None,
    ) -> None:
        self.stubber.add_response(
            "index_faces",
            {
                "FaceRecords": [
                    {
                        "Face": {
                            "FaceId": fid,
                            "BoundingBox": bounding,
                            "ImageId": str(uuid.uuid4()),
                            "ExternalImageId": external_id,
                            "Confidence": 99.5,
                        },
                        "FaceDetail": {"BoundingBox": bounding, "Confidence": 99.5},
                    }
                    for fid, bounding in faces
                ],
                "FaceModelVersion": "7.0",
                "UnindexedFaces": [
                    {"Reasons": reasons, "FaceDetail": {"Confidence": 50.0}} for reasons in (unindexed or [])
                ],
            },
            {
                "CollectionId": self.collection(event_id),
                "Image": {"Bytes": ANY},
                "ExternalImageId": external_id,
                "MaxFaces": max_faces or self.settings.AWS_REKOGNITION_MAX_FACES,
                "QualityFilter": self.settings.AWS_REKOGNITION_QUALITY_FILTER,
                "DetectionAttributes": ["DEFAULT"],
            },
        )

    def detect_faces(self, boxes: list[dict[str, float]]) -> None:
        self.stubber.add_response(
            "detect_faces",
            {"FaceDetails": [{"BoundingBox": b, "Confidence": 99.0} for b in boxes]},
            {"Image": {"Bytes": ANY}, "Attributes": ["DEFAULT"]},
        )

    def _hits(self, hits: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
        return [
            {
                "Similarity": similarity,
                "Face": {
                    "FaceId": fid,
                    "ExternalImageId": external,
                    "Confidence": 99.0,
                    "BoundingBox": box(0, 0, 1, 1),
                },
            }
            for fid, external, similarity in hits
        ]

    def search_faces_by_image(self, event_id: int, hits: list[tuple[str, str, float]]) -> None:
        self.stubber.add_response(
            "search_faces_by_image",
            {
                "SearchedFaceBoundingBox": box(0.2, 0.2, 0.5, 0.5),
                "SearchedFaceConfidence": 99.0,
                "FaceMatches": self._hits(hits),
                "FaceModelVersion": "7.0",
            },
            {
                "CollectionId": self.collection(event_id),
                "Image": {"Bytes": ANY},
                "MaxFaces": self.settings.AWS_REKOGNITION_SELFIE_SEARCH_MAXFACES,
                "FaceMatchThreshold": self.settings.AWS_REKOGNITION_MATCH_THRESHOLD,
            },
        )

    def delete_faces(self, event_id: int, ids: list[str], associated: dict[str, str] | None = None) -> None:
        """DeleteFaces of `ids`; those in `associated` (FaceId → UserId) are refused as AWS does."""
        held = associated or {}
        self.stubber.add_response(
            "delete_faces",
            {
                "DeletedFaces": sorted(i for i in ids if i not in held),
                "UnsuccessfulFaceDeletions": [
                    {"FaceId": fid, "UserId": user, "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}
                    for fid, user in sorted(held.items())
                ],
            },
            {"CollectionId": self.collection(event_id), "FaceIds": sorted(ids)},
        )

    # -- users ---------------------------------------------------------------

    @staticmethod
    def user(user_id: int) -> str:
        return f"user-{user_id}"

    def _user_hits(self, hits: list[tuple[int | str, float]]) -> list[dict[str, Any]]:
        return [
            {
                "Similarity": similarity,
                "User": {"UserId": self.user(who) if isinstance(who, int) else who, "UserStatus": "ACTIVE"},
            }
            for who, similarity in hits
        ]

    def search_users(self, event_id: int, fid: str, hits: list[tuple[int | str, float]]) -> None:
        """SearchUsers by FaceId; `hits` are (attendee id or raw UserId, similarity percent)."""
        self.stubber.add_response(
            "search_users",
            {"UserMatches": self._user_hits(hits), "FaceModelVersion": "7.0", "SearchedFace": {"FaceId": fid}},
            {
                "CollectionId": self.collection(event_id),
                "FaceId": fid,
                "UserMatchThreshold": self.settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                "MaxUsers": self.settings.AWS_REKOGNITION_SEARCH_MAXFACES,
            },
        )

    def search_users_by_image(self, event_id: int, hits: list[tuple[int | str, float]]) -> None:
        self.stubber.add_response(
            "search_users_by_image",
            {"UserMatches": self._user_hits(hits), "FaceModelVersion": "7.0"},
            {
                "CollectionId": self.collection(event_id),
                "Image": {"Bytes": ANY},
                "UserMatchThreshold": self.settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                "MaxUsers": self.settings.AWS_REKOGNITION_SEARCH_MAXFACES,
                "QualityFilter": self.settings.AWS_REKOGNITION_QUALITY_FILTER,
            },
        )

    def create_user(self, event_id: int, user_id: int, error: str = "") -> None:
        """CreateUser; `error` e.g. "ConflictException" (exists) or "ResourceNotFoundException" (no collection)."""
        params = {"CollectionId": self.collection(event_id), "UserId": self.user(user_id), "ClientRequestToken": ANY}
        if error:
            self.stubber.add_client_error("create_user", error, error, expected_params=params)
            return
        self.stubber.add_response("create_user", {}, params)

    def delete_user(self, event_id: int, user_id: int, missing: bool = False) -> None:
        params = {"CollectionId": self.collection(event_id), "UserId": self.user(user_id), "ClientRequestToken": ANY}
        if missing:
            self.stubber.add_client_error("delete_user", "ResourceNotFoundException", expected_params=params)
            return
        self.stubber.add_response("delete_user", {}, params)

    def associate_faces(
        self,
        event_id: int,
        user_id: int,
        ids: list[str],
        threshold: float,
        *,
        refused: dict[str, str] | None = None,
        error: str = "",
    ) -> None:
        """AssociateFaces; `refused` maps FaceIds to the reason AWS gives; `error` fails the call."""
        params = {
            "CollectionId": self.collection(event_id),
            "UserId": self.user(user_id),
            "FaceIds": sorted(ids),
            "UserMatchThreshold": threshold,
            "ClientRequestToken": ANY,
        }
        if error:
            self.stubber.add_client_error("associate_faces", error, error, expected_params=params)
            return
        refused = refused or {}
        self.stubber.add_response(
            "associate_faces",
            {
                "AssociatedFaces": [{"FaceId": fid} for fid in sorted(ids) if fid not in refused],
                "UnsuccessfulFaceAssociations": [
                    {"FaceId": fid, "UserId": self.user(user_id), "Reasons": [reason]}
                    for fid, reason in sorted(refused.items())
                ],
                "UserStatus": "UPDATING",
            },
            params,
        )

    def disassociate_faces(self, event_id: int, user: int | str, ids: list[str], missing: bool = False) -> None:
        params = {
            "CollectionId": self.collection(event_id),
            "UserId": self.user(user) if isinstance(user, int) else user,
            "FaceIds": sorted(ids),
            "ClientRequestToken": ANY,
        }
        if missing:
            self.stubber.add_client_error("disassociate_faces", "ResourceNotFoundException", expected_params=params)
            return
        self.stubber.add_response(
            "disassociate_faces",
            {"DisassociatedFaces": [{"FaceId": fid} for fid in sorted(ids)], "UserStatus": "UPDATING"},
            params,
        )

    # -- listings ------------------------------------------------------------

    def list_collections(self, ids: list[str], *, token: str = "", next_token: str = "") -> None:
        params: dict[str, Any] = {"MaxResults": 4096}
        if token:
            params["NextToken"] = token
        answer: dict[str, Any] = {"CollectionIds": ids, "FaceModelVersions": ["7.0"] * len(ids)}
        if next_token:
            answer["NextToken"] = next_token
        self.stubber.add_response("list_collections", answer, params)

    def list_faces(self, event_id: int, faces: list[tuple[str, str]], *, token: str = "", next_token: str = "") -> None:
        """ListFaces answering `faces` as (FaceId, UserId or "")."""
        params: dict[str, Any] = {"CollectionId": self.collection(event_id), "MaxResults": 4096}
        if token:
            params["NextToken"] = token
        listed = []
        for fid, user in faces:
            face: dict[str, Any] = {
                "FaceId": fid,
                "BoundingBox": box(0.1, 0.1, 0.2, 0.2),
                "ImageId": str(uuid.uuid4()),
                "ExternalImageId": "1",
                "Confidence": 99.0,
            }
            if user:
                face["UserId"] = user
            listed.append(face)
        answer: dict[str, Any] = {"Faces": listed, "FaceModelVersion": "7.0"}
        if next_token:
            answer["NextToken"] = next_token
        self.stubber.add_response("list_faces", answer, params)

    def delete_collection(self, event_id: int, missing: bool = False) -> None:
        params = {"CollectionId": self.collection(event_id)}
        if missing:
            self.stubber.add_client_error("delete_collection", "ResourceNotFoundException", expected_params=params)
            return
        self.stubber.add_response("delete_collection", {"StatusCode": 200}, params)

    def error(self, method: str, code: str, message: str = "", status: int = 400) -> None:
        self.stubber.add_client_error(method, code, message or code, http_status_code=status)

    def done(self) -> None:
        """Every queued call was made."""
        self.stubber.assert_no_pending_responses()

    def list_users(self, event_id: int, users: list[str], *, token: str = "", next_token: str = "") -> None:
        params: dict[str, Any] = {"CollectionId": self.collection(event_id), "MaxResults": 500}
        if token:
            params["NextToken"] = token
        answer: dict[str, Any] = {"Users": [{"UserId": user, "UserStatus": "ACTIVE"} for user in users]}
        if next_token:
            answer["NextToken"] = next_token
        self.stubber.add_response("list_users", answer, params)
