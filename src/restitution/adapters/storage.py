"""Evidence blobs on the local disk, addressed by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class LocalEvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes) -> tuple[str, str]:
        """Store the bytes; returns (storage key, sha256). Same bytes, same key."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return digest, digest

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()
