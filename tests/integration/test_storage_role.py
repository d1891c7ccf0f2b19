"""The storage role (playbooks/storage.yml) against the real MinIO of the local stack."""

from __future__ import annotations

import io
import json
import stat
import uuid
from pathlib import Path

import pytest
import urllib3
from minio import Minio, MinioAdmin
from minio.commonconfig import Tags
from minio.credentials import StaticProvider
from minio.error import MinioAdminException, S3Error
from minio.versioningconfig import SUSPENDED, VersioningConfig

from ansible_collections.mlops.mlflow.plugins.module_utils._minio import normalize_policy
from tests.ansible_runner import run_playbook

pytestmark = pytest.mark.minio

PLAYBOOKS = Path(__file__).parent / "playbooks"
# The tag the role puts on the bucket it creates.
MARKER = {"managed-by": "mlops.mlflow"}


def _netloc(url):
    return url.split("://", 1)[1]


def _client(minio_admin, access_key, secret_key):
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=urllib3.Retry(total=0))
    return Minio(_netloc(minio_admin.url), access_key, secret_key, secure=False, http_client=http)


@pytest.fixture(scope="module")
def s3(minio_admin):
    return _client(minio_admin, minio_admin.user, minio_admin.password)


@pytest.fixture(scope="module")
def admin(minio_admin):
    return MinioAdmin(endpoint=_netloc(minio_admin.url), credentials=StaticProvider(minio_admin.user,
                      minio_admin.password), secure=False)


def _remove_bucket(s3, name):
    if not s3.bucket_exists(name):
        return
    for item in s3.list_objects(name, recursive=True, include_version=True):
        s3.remove_object(name, item.object_name, version_id=item.version_id)
    s3.remove_bucket(name)


class Storage:
    """Unique names for one test's bucket, user and policy, its own secrets directory, and the role runs."""

    def __init__(self, tmp_path):
        suffix = uuid.uuid4().hex[:10]
        self.bucket = "mlt-role-%s" % suffix
        self.user = "mlt-user-%s" % suffix
        self.policy = "mlt-policy-%s" % suffix
        self.secrets_dir = tmp_path / "secrets"
        self.secret_file = self.secrets_dir / ("minio_%s_secret_key" % self.user)

    def extra_vars(self, **more):
        values = dict(storage_bucket=self.bucket, storage_user=self.user, storage_policy_name=self.policy,
                      storage_secrets_dir=str(self.secrets_dir))
        values.update(more)
        return json.dumps(values)

    def converge(self, *args, playbook="playbooks/storage.yml", **more):
        return run_playbook(playbook, "-e", self.extra_vars(**more), *args, timeout=300)

    def teardown(self, *args, **more):
        return self.converge(*args, playbook=PLAYBOOKS / "storage_teardown.yml", **more)

    @property
    def secret(self):
        return self.secret_file.read_text().strip()


@pytest.fixture
def storage(tmp_path, s3, admin, minio_admin):
    names = Storage(tmp_path)
    yield names
    for remove, name in ((admin.user_remove, names.user), (admin.policy_remove, names.policy)):
        try:
            remove(name)
        except MinioAdminException:
            pass
    _remove_bucket(s3, names.bucket)


def _admin_object_exists(read):
    try:
        read()
    except MinioAdminException:
        return False
    return True


def test_role_creates_everything_from_nothing_then_is_unchanged(storage, s3, admin):
    first = storage.converge(playbook=PLAYBOOKS / "storage_facts.yml")
    assert first.returncode == 0, first.output
    assert first.recap()["changed"] == 3  # bucket, policy, user

    assert s3.get_bucket_versioning(storage.bucket).status == "Enabled"
    assert json.loads(admin.user_info(storage.user)) | {"updatedAt": None} == {
        "policyName": storage.policy, "status": "enabled", "updatedAt": None}
    statements = json.loads(admin.policy_info(storage.policy))["Statement"]
    assert sorted((tuple(s["Resource"]), tuple(sorted(s["Action"]))) for s in statements) == [
        (("arn:aws:s3:::%s" % storage.bucket,),
         ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")),
        (("arn:aws:s3:::%s/*" % storage.bucket,),
         ("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts",
          "s3:PutObject")),
    ]
    assert stat.S_IMODE(storage.secret_file.stat().st_mode) == 0o600
    assert dict(s3.get_bucket_tags(storage.bucket)) == MARKER
    secret = storage.secret

    second = storage.converge()
    assert second.returncode == 0, second.output
    assert second.recap()["changed"] == 0
    assert storage.secret == secret, "the generated secret key must be reused"


def test_check_mode_reports_changes_and_makes_none(storage, s3, admin):
    result = storage.converge("--check")
    assert result.returncode == 0, result.output
    assert result.recap()["changed"] == 3
    assert not s3.bucket_exists(storage.bucket)
    assert not _admin_object_exists(lambda: admin.user_info(storage.user))
    assert not _admin_object_exists(lambda: admin.policy_info(storage.policy))
    assert not storage.secret_file.exists(), "check mode must not generate the secret key"


def test_diff_shows_the_change_and_check_mode_keeps_the_bucket(storage, s3):
    assert storage.converge().returncode == 0
    result = storage.converge("--check", "--diff", storage_versioning=False, storage_noncurrent_expiry_days=30)
    assert result.returncode == 0, result.output
    assert result.recap()["changed"] == 1
    assert "-    versioning: Enabled\n+    versioning: Suspended" in result.output
    assert "-    noncurrent_version_expiration_days: null\n+    noncurrent_version_expiration_days: 30" in result.output
    assert s3.get_bucket_versioning(storage.bucket).status == "Enabled"
    assert s3.get_bucket_lifecycle(storage.bucket) is None


def test_drift_made_by_hand_is_repaired(storage, s3, admin):
    assert storage.converge().returncode == 0
    wanted_policy = normalize_policy(admin.policy_info(storage.policy))
    s3.set_bucket_versioning(storage.bucket, VersioningConfig(SUSPENDED))
    admin.policy_add(storage.policy, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]})

    repaired = storage.converge()
    assert repaired.returncode == 0, repaired.output
    assert repaired.recap()["changed"] == 2  # bucket versioning, policy
    assert s3.get_bucket_versioning(storage.bucket).status == "Enabled"
    assert normalize_policy(admin.policy_info(storage.policy)) == wanted_policy
    assert storage.converge().recap()["changed"] == 0


def test_generated_credentials_only_reach_their_own_bucket(storage, s3, minio_admin):
    assert storage.converge().returncode == 0
    other_bucket = "mlt-other-%s" % uuid.uuid4().hex[:10]
    s3.make_bucket(other_bucket)
    try:
        s3.put_object(other_bucket, "secret.txt", io.BytesIO(b"not for mlflow"), 14)
        mlflow = _client(minio_admin, storage.user, storage.secret)

        mlflow.put_object(storage.bucket, "1/model/MLmodel", io.BytesIO(b"artifact"), 8)
        assert mlflow.get_object(storage.bucket, "1/model/MLmodel").read() == b"artifact"
        assert [o.object_name for o in mlflow.list_objects(storage.bucket, recursive=True)] == ["1/model/MLmodel"]
        mlflow.remove_object(storage.bucket, "1/model/MLmodel")
        assert list(mlflow.list_objects(storage.bucket, recursive=True)) == []

        # MinIO answers ListBuckets with the buckets the user may use, instead of denying it: only its own.
        assert [b.name for b in mlflow.list_buckets()] == [storage.bucket]
        denied = [
            lambda: mlflow.make_bucket("mlt-forbidden-%s" % uuid.uuid4().hex[:10]),
            lambda: mlflow.get_object(other_bucket, "secret.txt"),
            lambda: list(mlflow.list_objects(other_bucket)),
            lambda: mlflow.put_object(other_bucket, "x", io.BytesIO(b"x"), 1),
            lambda: mlflow.set_bucket_versioning(storage.bucket, VersioningConfig(SUSPENDED)),
        ]
        for attempt in denied:
            with pytest.raises(S3Error) as error:
                attempt()
            assert error.value.code == "AccessDenied"
    finally:
        _remove_bucket(s3, other_bucket)


def test_secret_keys_never_appear_in_verbose_logs(storage, minio_admin):
    first = storage.converge("-vvv", "--diff")
    second = storage.converge("-vvv", "--diff", "--check")
    for result in (first, second):
        assert result.returncode == 0, result.output
        assert storage.secret not in result.output
        assert minio_admin.password not in result.output


def test_a_lost_secret_file_gives_the_existing_user_a_new_key(storage, minio_admin):
    assert storage.converge().returncode == 0
    old_secret = storage.secret
    storage.secret_file.unlink()
    result = storage.converge()
    assert result.returncode == 0, result.output
    new_secret = storage.secret
    assert new_secret != old_secret
    _client(minio_admin, storage.user, new_secret).put_object(storage.bucket, "probe", io.BytesIO(b"x"), 1)


def test_an_invalid_bucket_name_stops_the_role_before_any_change(storage, admin):
    result = storage.converge(storage_bucket="MLflow_Bucket")
    assert result.returncode != 0
    assert "Invalid bucket name 'MLflow_Bucket'" in result.output
    assert not _admin_object_exists(lambda: admin.policy_info(storage.policy))


def test_teardown_keeps_the_bucket_unless_asked(storage, s3, admin):
    assert storage.converge().returncode == 0
    s3.put_object(storage.bucket, "1/artifact", io.BytesIO(b"keep me"), 7)

    kept = storage.teardown()
    assert kept.returncode == 0, kept.output
    assert "Bucket %s on http://127.0.0.1:9000 is kept with its artifacts." % storage.bucket in kept.output
    assert s3.get_object(storage.bucket, "1/artifact").read() == b"keep me"
    assert not _admin_object_exists(lambda: admin.user_info(storage.user))
    assert not _admin_object_exists(lambda: admin.policy_info(storage.policy))
    assert not storage.secret_file.exists()

    deleted = storage.teardown(storage_delete_bucket=True)
    assert deleted.returncode == 0, deleted.output
    assert not s3.bucket_exists(storage.bucket)


def test_a_bucket_the_collection_did_not_create_is_adopted_only_on_request(storage, s3, admin):
    s3.make_bucket(storage.bucket)
    tags = Tags.new_bucket_tags()
    tags["team"] = "research"
    s3.set_bucket_tags(storage.bucket, tags)

    refused = storage.converge()
    assert refused.returncode != 0
    message = " ".join(refused.output.split())
    assert ("Bucket %s on http://127.0.0.1:9000 exists without the tag managed-by=mlops.mlflow, so this collection "
            "did not create it. Set storage_adopt_existing=true" % storage.bucket) in message
    assert dict(s3.get_bucket_tags(storage.bucket)) == {"team": "research"}
    assert s3.get_bucket_versioning(storage.bucket).status != "Enabled"
    assert not _admin_object_exists(lambda: admin.policy_info(storage.policy))
    assert not storage.secret_file.exists(), "a refused run writes no secret key"

    adopted = storage.converge(storage_adopt_existing=True)
    assert adopted.returncode == 0, adopted.output
    # storage_bucket_tags ({}) are the bucket's tags, exactly, besides the marker.
    assert dict(s3.get_bucket_tags(storage.bucket)) == MARKER
    assert s3.get_bucket_versioning(storage.bucket).status == "Enabled"
    again = storage.converge()
    assert again.returncode == 0, again.output
    assert again.recap()["changed"] == 0


def test_teardown_deletes_a_bucket_the_collection_did_not_create_only_on_request(storage, s3, admin):
    assert storage.converge().returncode == 0
    s3.delete_bucket_tags(storage.bucket)  # as if someone else's bucket had been named in storage_bucket

    refused = storage.teardown(storage_delete_bucket=True)
    assert refused.returncode != 0
    assert "Set storage_adopt_existing=true" in " ".join(refused.output.split())
    assert s3.bucket_exists(storage.bucket)
    assert _admin_object_exists(lambda: admin.user_info(storage.user)), "a refused teardown deletes nothing"

    deleted = storage.teardown(storage_delete_bucket=True, storage_adopt_existing=True)
    assert deleted.returncode == 0, deleted.output
    assert not s3.bucket_exists(storage.bucket)
