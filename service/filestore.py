"""Where attachment bytes live: a small port, content-addressed by SHA-256.

`DirectoryStore` (the default) keeps each file once under `<root>/<first two hex digits>/<sha256>`,
written to a temporary file and renamed into place, so a half-written file is never read and two
uploads of the same bytes share one file. A file written by a transaction that then rolled back is
only an unreferenced blob (harmless; the same bytes uploaded later find it).

`S3Store` (`ATTACHMENT_STORE = "s3://bucket/prefix"`) keeps each object once under
`<prefix>/<first two hex digits>/<sha256>` in an S3-compatible bucket (AWS, MinIO, Ceph, ...: `S3_ENDPOINT_URL`,
`S3_REGION`); it asks (HEAD) before uploading, so the same bytes are sent once. Credentials come from the
standard AWS chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, ~/.aws, an instance role), never
from the settings files. A store that cannot be reached or refuses access raises `Unavailable` (503); a
missing object raises FileNotFoundError like a missing file, which the use case answers with a 404. Either store
hashes what it reads back and refuses (503) a file that no longer matches its SHA-256: changed behind the service.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from .config import PROJECT_ROOT, SettingsError
from .errors import Unavailable
from .private_files import private_dir, tighten

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileStore(Protocol):
    """Keeps bytes under their SHA-256 and gives them back."""

    def put(self, content: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...


class DirectoryStore:
    """Files in a directory tree, one per distinct content."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in (root, *_subfolders(root)):  # made readable to all by an earlier version: tightened
            tighten(folder)

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self._path(digest)
        if not path.exists():
            private_dir(path.parent)  # the files are 0600 (mkstemp), and the folders that list them 0700
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        return digest

    def get(self, sha256: str) -> bytes:
        """The file's bytes, refused (503) when they no longer hash to their name: changed on the disk since."""
        return _verified(self._path(sha256).read_bytes(), sha256, f"{self.root}")

    def _path(self, sha256: str) -> Path:
        digest = _checked_digest(sha256)
        return self.root / digest[:2] / digest


def _subfolders(root: Path) -> list[Path]:
    try:
        return [entry for entry in root.iterdir() if entry.is_dir()]
    except OSError:  # no folder yet (made 0700 at the first file), or not ours to list
        return []


def _verified(content: bytes, sha256: str, store: str) -> bytes:
    """`content` when it hashes to `sha256`; a file changed in the store behind the service's back is never served."""
    if hashlib.sha256(content).hexdigest() != sha256:
        logger.error("attachment store %s: file %s does not match its SHA-256", store, sha256)
        raise Unavailable("the stored file does not match its checksum (附件文件校验失败)")
    return content


def _checked_digest(sha256: str) -> str:
    """A digest used in a path or key only when it is 64 lower-case hex digits (never a path of its own)."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256 digest")
    return sha256


class S3Store:
    """Objects in an S3-compatible bucket, one per distinct content."""

    UNAVAILABLE = ("the attachment store cannot be reached or refused access; try again later "
                   "(附件存储暂时无法访问，请稍后重试)")

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, client: S3Client | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Short timeouts and few retries: an unreachable store answers 503 in seconds, not minutes.
        self.client: S3Client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"}))

    def key(self, sha256: str) -> str:
        digest = _checked_digest(sha256)
        return f"{self.prefix}/{digest[:2]}/{digest}" if self.prefix else f"{digest[:2]}/{digest}"

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        key = self.key(digest)
        with self._errors():
            if not self._exists(key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=content,
                                       ContentType="application/octet-stream")
        return digest

    def get(self, sha256: str) -> bytes:
        from botocore.exceptions import ClientError

        key = self.key(sha256)
        with self._errors():
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if _status(error) == 404 and _code(error) != "NoSuchBucket":
                    raise FileNotFoundError(key) from None
                raise
            content = response["Body"].read()
        return _verified(content, key.rsplit("/", 1)[-1], f"s3://{self.bucket}")

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _status(error) == 404 and _code(error) != "NoSuchBucket":
                return False
            raise
        return True

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Any failure of the store (network, credentials, access, a missing bucket) as one clear 503."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            logger.warning("attachment store s3://%s/%s: %s", self.bucket, self.prefix, error)
            raise Unavailable(self.UNAVAILABLE) from error


def _status(error: Any) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def s3_store(where: str, settings: Mapping[str, Any]) -> S3Store:
    """The store an `s3://bucket/prefix` setting names (S3_ENDPOINT_URL, S3_REGION beside it)."""
    parts = urlsplit(where)
    if not parts.netloc or parts.query or parts.fragment:
        raise SettingsError("ATTACHMENT_STORE: write an S3 store as s3://bucket/prefix "
                            "(S3 存储应写作 s3://bucket/prefix)")
    return S3Store(parts.netloc, parts.path, endpoint_url=str(settings.get("S3_ENDPOINT_URL") or "") or None,
                   region=str(settings.get("S3_REGION") or "") or None)


def store_from_settings(settings: Mapping[str, Any]) -> FileStore:
    """The store ATTACHMENT_STORE names: `s3://bucket/prefix`, a directory path, or empty for `attachments/`
    beside a SQLite database (the instance folder for any other database)."""
    where = str(settings.get("ATTACHMENT_STORE") or "")
    if where.startswith("s3://"):
        return s3_store(where, settings)
    if where:
        return DirectoryStore(Path(where))
    url = make_url(str(settings["DATABASE_URL"]))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        return DirectoryStore(Path(url.database).resolve().parent / "attachments")
    return DirectoryStore(PROJECT_ROOT / "instance" / "attachments")
