"""Evidence uploads (multipart `file`) and downloads for those who may see the case."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Path, UploadFile
from fastapi.responses import Response

from restitution.api.deps import AppDep, PrincipalDep
from restitution.api.present import attachment_json
from restitution.api.routing import api_router
from restitution.domain.errors import InvalidInput
from restitution.services import attachments as service

router = api_router(prefix="/v1/attachments", tags=["attachments"])


@router.post("", status_code=201, summary="Upload a photo or video")
async def upload(
    app: AppDep, principal: PrincipalDep, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    data = await file.read(app.settings.max_upload_bytes + 1)
    if not isinstance(data, bytes):
        raise InvalidInput("invalid_file", "send the file as multipart field 'file'", param="file")
    return attachment_json(service.upload(app, principal, data, file.filename))


@router.get(
    "/{attachment_id}",
    summary="Download an attachment",
    response_class=Response,
    responses={200: {"content": {"image/*": {}, "video/*": {}}}},
)
def download(
    attachment_id: Annotated[str, Path(max_length=200)], app: AppDep, principal: PrincipalDep
) -> Response:
    found = service.download(app, principal, attachment_id)
    extension = found.row.content_type.split("/")[-1]
    return Response(
        found.data,
        media_type=found.row.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{found.row.id}.{extension}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )
