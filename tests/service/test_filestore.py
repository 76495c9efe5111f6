"""The attachment store: content-addressed files, where they live by default, and what settings are refused."""

from __future__ import annotations

import hashlib

import pytest

from service.config import PROJECT_ROOT, SettingsError
from service.errors import Unavailable
from service.filestore import DirectoryStore, S3Store, store_from_settings


def test_files_are_kept_once_under_their_sha256(tmp_path):
    store = DirectoryStore(tmp_path)
    digest = store.put(b"abc")
    assert digest == hashlib.sha256(b"abc").hexdigest() and store.put(b"abc") == digest
    assert store.get(digest) == b"abc"
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == [
        f"{digest[:2]}/{digest}"]  # no temporary file left behind


def test_a_file_changed_on_the_disk_is_refused_not_served(tmp_path):
    """Bytes rewritten behind the service's back (the same path, other content) no longer hash to their name: the
    store refuses them (503) like the S3 store, so a download never hands out a forged document."""
    store = DirectoryStore(tmp_path)
    digest = store.put(b"%PDF-1.4 the minutes as recorded\n")
    (tmp_path / digest[:2] / digest).write_bytes(b"%PDF-1.4 the minutes rewritten\n")
    with pytest.raises(Unavailable, match="附件文件校验失败"):
        store.get(digest)


def test_only_digests_name_files(tmp_path):
    with pytest.raises(ValueError):
        DirectoryStore(tmp_path).get("../../etc/passwd")


def test_where_the_files_live(tmp_path):
    beside = store_from_settings({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    assert beside.root == tmp_path.resolve() / "attachments"
    other = store_from_settings({"DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert other.root == PROJECT_ROOT / "instance" / "attachments"
    named = store_from_settings({"DATABASE_URL": "sqlite://", "ATTACHMENT_STORE": str(tmp_path / "files")})
    assert named.root == tmp_path / "files"
    s3 = store_from_settings({"DATABASE_URL": "sqlite://", "ATTACHMENT_STORE": "s3://bucket/cases/2026/",
                              "S3_ENDPOINT_URL": "http://127.0.0.1:9000", "S3_REGION": "cn-north-1"})
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "cases/2026")
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:9000" and s3.client.meta.region_name == "cn-north-1"
    assert s3.key("ab" + "0" * 62) == "cases/2026/ab/ab" + "0" * 62
    for bad in ("s3://", "s3:///prefix", "s3://bucket/p?x=1"):
        with pytest.raises(SettingsError):
            store_from_settings({"DATABASE_URL": "sqlite://", "ATTACHMENT_STORE": bad})


def test_only_digests_name_objects():
    """A key is made only of a real digest: no path, no upper case, no other length."""
    store = S3Store("bucket", "cases", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    for bad in ("../../etc/passwd", "A" * 64, "a" * 63, "a" * 63 + "/", "a" * 64 + "\n", ""):
        with pytest.raises(ValueError):
            store.key(bad)
        with pytest.raises(ValueError):
            store.get(bad)
