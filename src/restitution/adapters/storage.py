"""Evidence blobs on the local disk, addressed by the SHA-256 of their bytes.

A file's modification time is when its bytes were last put, by the caller's clock. An upload
puts its bytes before it writes the row that refers to them: a file put recently may be about
to be referred to, and `delete` leaves it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from datetime import datetime
from pathlib import Path


class LocalEvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes, now: datetime) -> tuple[str, str]:
        """Store the bytes, written at `now`; returns (storage key, sha256). Same bytes, same
        key: bytes already stored are marked written again at `now`."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        stamp = now.timestamp()
        try:
            os.utime(path, (stamp, stamp))
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.utime(tmp, (stamp, stamp))
            os.replace(tmp, path)
        return digest, digest

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str, *, written_before: datetime) -> bool:
        """Remove the file unless it was put at `written_before` or later; a missing file is
        no error. True when it was removed."""
        path = self._path(key)
        # Moved aside first, in one step: a `put` of the same bytes meanwhile either marked
        # the file before the move (seen here: it is put back) or, finding none, writes it anew.
        doomed = path.with_name(f"{key}.deleting-{secrets.token_hex(8)}")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return False
        if doomed.stat().st_mtime >= written_before.timestamp():
            os.replace(doomed, path)
            return False
        doomed.unlink()
        return True
