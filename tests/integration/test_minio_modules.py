"""minio_bucket, minio_policy, minio_user and minio_mirror against the real MinIO of the local stack."""

from __future__ import annotations

import io
import json
import os
import socket
import time
import uuid

import pytest
import urllib3
from minio import Minio, MinioAdmin
from minio.commonconfig import Tags
from minio.credentials import StaticProvider
from minio.error import MinioAdminException, S3Error

from tests.ansible_runner import run_module

pytestmark = pytest.mark.minio

READ_OBJECTS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::mlt-nothing/*"]}],
}


def _netloc(url):
    return url.split("://", 1)[1]


def _http():
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=urllib3.Retry(total=0))


@pytest.fixture(scope="module")
def s3(minio_admin):
    return Minio(_netloc(minio_admin.url), minio_admin.user, minio_admin.password, secure=False, http_client=_http())


@pytest.fixture(scope="module")
def admin(minio_admin):
    return MinioAdmin(endpoint=_netloc(minio_admin.url), credentials=StaticProvider(minio_admin.user,
                      minio_admin.password), secure=False, http_client=_http())


def _unique(kind):
    return "mlt-%s-%s" % (kind, uuid.uuid4().hex[:10])


def remove_bucket(s3, name):
    """Delete a test bucket with every object version in it, if it exists."""
    if not s3.bucket_exists(name):
        return
    for item in s3.list_objects(name, recursive=True, include_version=True):
        s3.remove_object(name, item.object_name, version_id=item.version_id)
    s3.remove_bucket(name)


@pytest.fixture
def bucket(s3):
    name = _unique("b")
    yield name
    remove_bucket(s3, name)


@pytest.fixture
def policy_name(admin):
    name = _unique("p")
    yield name
    try:
        admin.policy_remove(name)
    except MinioAdminException:
        pass


@pytest.fixture
def user_name(admin):
    # Request it after policy_name: the user goes first, as MinIO keeps a policy that is still attached.
    name = _unique("u")
    yield name
    try:
        admin.user_remove(name)
    except MinioAdminException:
        pass


def run(minio_admin, module, *cli_args, **module_args):
    args = {"endpoint": minio_admin.url, "access_key": minio_admin.user, "secret_key": minio_admin.password}
    args.update(module_args)
    return run_module("mlops.mlflow.%s" % module, json.dumps(args), *cli_args)


def module_result(result):
    """The module's result; also when -v put a line ("Using ... as config file") before the JSON."""
    document = json.loads(result.output[result.output.index("{"):])
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- minio_bucket ---------------------------------------------------------------------------------------------

def test_bucket_is_created_with_its_settings_then_unchanged(minio_admin, s3, bucket):
    settings = dict(name=bucket, versioning=True, noncurrent_version_expiration_days=7, tags={"app": "mlflow"})
    first = run(minio_admin, "minio_bucket", **settings)
    assert first.returncode == 0, first.output
    assert first.module_result["changed"] is True
    assert first.module_result["actions"][0] == "create bucket"
    assert s3.get_bucket_versioning(bucket).status == "Enabled"
    rules = s3.get_bucket_lifecycle(bucket).rules
    assert [(rule.rule_id, rule.noncurrent_version_expiration.noncurrent_days) for rule in rules] == [
        ("mlops-mlflow-noncurrent-expiration", 7)]
    assert dict(s3.get_bucket_tags(bucket)) == {"app": "mlflow"}

    second = run(minio_admin, "minio_bucket", **settings)
    assert second.returncode == 0, second.output
    assert second.module_result["changed"] is False
    assert second.module_result["actions"] == []

    without_rule = run(minio_admin, "minio_bucket", name=bucket, noncurrent_version_expiration_days=0, tags={})
    assert without_rule.module_result["changed"] is True
    assert s3.get_bucket_lifecycle(bucket) is None
    assert s3.get_bucket_tags(bucket) is None


def test_bucket_check_mode_reports_the_change_and_makes_none(minio_admin, s3, bucket):
    result = run(minio_admin, "minio_bucket", "--check", name=bucket, versioning=True)
    assert result.returncode == 0, result.output
    assert result.module_result["changed"] is True
    assert result.module_result["actions"] == ["create bucket", "enable versioning"]
    assert not s3.bucket_exists(bucket)


def test_bucket_diff_shows_the_change_of_versioning(minio_admin, s3, bucket):
    assert run(minio_admin, "minio_bucket", name=bucket, versioning=True).returncode == 0
    result = run(minio_admin, "minio_bucket", "--check", "--diff", name=bucket, versioning=False)
    assert result.module_result["changed"] is True
    diff = result.module_result["diff"]
    assert diff["before"]["versioning"] == "Enabled"
    assert diff["after"]["versioning"] == "Suspended"
    assert s3.get_bucket_versioning(bucket).status == "Enabled", "check mode must not change the bucket"


def test_bucket_versioning_suspended_by_hand_is_enabled_again(minio_admin, s3, bucket):
    from minio.versioningconfig import SUSPENDED, VersioningConfig

    assert run(minio_admin, "minio_bucket", name=bucket, versioning=True).returncode == 0
    s3.set_bucket_versioning(bucket, VersioningConfig(SUSPENDED))
    result = run(minio_admin, "minio_bucket", name=bucket, versioning=True)
    assert result.module_result["actions"] == ["enable versioning"]
    assert s3.get_bucket_versioning(bucket).status == "Enabled"


def test_bucket_policy_granting_anonymous_access_is_removed(minio_admin, s3, bucket):
    s3.make_bucket(bucket)
    s3.put_object(bucket, "model.pkl", io.BytesIO(b"weights"), 7)
    s3.set_bucket_policy(bucket, json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::%s/*" % bucket]}]}))
    anonymous = Minio(_netloc(minio_admin.url), secure=False, http_client=_http())
    assert anonymous.get_object(bucket, "model.pkl").read() == b"weights"

    result = run(minio_admin, "minio_bucket", "--diff", name=bucket)
    assert result.returncode == 0, result.output
    assert result.module_result["actions"] == ["delete the bucket policy granting anonymous access"]
    assert result.module_result["diff"]["before"]["anonymous_access"] is True
    with pytest.raises(S3Error) as denied:
        anonymous.get_object(bucket, "model.pkl")
    assert denied.value.code == "AccessDenied"
    assert run(minio_admin, "minio_bucket", name=bucket).module_result["changed"] is False


def test_absent_refuses_a_bucket_that_is_not_empty_unless_forced(minio_admin, s3, bucket):
    assert run(minio_admin, "minio_bucket", name=bucket, versioning=True).returncode == 0
    s3.put_object(bucket, "run/artifact.txt", io.BytesIO(b"v1"), 2)
    s3.put_object(bucket, "run/artifact.txt", io.BytesIO(b"v2"), 2)
    s3.remove_object(bucket, "run/artifact.txt")  # leaves two versions and a delete marker

    refused = run(minio_admin, "minio_bucket", name=bucket, state="absent")
    assert refused.returncode != 0
    assert refused.module_result["msg"] == (
        "Bucket %s is not empty (3 object versions or delete markers): not deleted. "
        "Set force=true to delete it with everything in it." % bucket)
    assert s3.bucket_exists(bucket)

    forced = run(minio_admin, "minio_bucket", name=bucket, state="absent", force=True)
    assert forced.returncode == 0, forced.output
    assert forced.module_result["changed"] is True
    assert forced.module_result["deleted_objects"] == 3
    assert not s3.bucket_exists(bucket)
    assert run(minio_admin, "minio_bucket", name=bucket, state="absent").module_result["changed"] is False


def test_an_invalid_bucket_name_is_refused_before_any_call(minio_admin):
    # Nothing listens on the endpoint: only a check made before connecting can produce the name error.
    result = run(minio_admin, "minio_bucket", name="MLflow_Artifacts", endpoint="http://127.0.0.1:%d" % _free_port())
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        "Invalid bucket name 'MLflow_Artifacts': it may contain only lowercase letters, digits, dots and hyphens, "
        "and must start and end with a letter or digit.")


def test_bucket_managed_by_is_tagged_on_create(minio_admin, s3, bucket):
    created = run(minio_admin, "minio_bucket", name=bucket, tags={"app": "mlflow"}, managed_by="mlops.mlflow")
    assert created.returncode == 0, created.output
    assert created.module_result["adopted"] is False
    assert dict(s3.get_bucket_tags(bucket)) == {"app": "mlflow", "managed-by": "mlops.mlflow"}
    again = run(minio_admin, "minio_bucket", name=bucket, tags={"app": "mlflow"}, managed_by="mlops.mlflow")
    assert again.module_result["changed"] is False


def _someone_elses_bucket(s3, name):
    s3.make_bucket(name)
    tags = Tags.new_bucket_tags()
    tags["team"] = "research"
    s3.set_bucket_tags(name, tags)


def test_bucket_without_the_managed_by_tag_is_left_alone_unless_adopted(minio_admin, s3, bucket):
    _someone_elses_bucket(s3, bucket)
    refused = run(minio_admin, "minio_bucket", name=bucket, versioning=True, managed_by="mlops.mlflow")
    assert refused.returncode != 0
    assert refused.module_result["msg"] == (
        "Bucket %s exists without the tag managed-by=mlops.mlflow, so it was not created by this caller: it is left "
        "as it is. Set adopt=true to take it over." % bucket)
    assert s3.get_bucket_versioning(bucket).status != "Enabled"

    checked = run(minio_admin, "minio_bucket", "--check", name=bucket, managed_by="mlops.mlflow", adopt=True)
    assert checked.module_result["changed"] is True
    assert checked.module_result["adopted"] is True
    assert dict(s3.get_bucket_tags(bucket)) == {"team": "research"}

    # tags not given: the bucket keeps its own and gets the marker.
    adopted = run(minio_admin, "minio_bucket", name=bucket, managed_by="mlops.mlflow", adopt=True)
    assert adopted.module_result["actions"] == ["set tags"]
    assert dict(s3.get_bucket_tags(bucket)) == {"team": "research", "managed-by": "mlops.mlflow"}
    again = run(minio_admin, "minio_bucket", name=bucket, managed_by="mlops.mlflow")
    assert again.module_result["changed"] is False
    assert again.module_result["adopted"] is False


def test_absent_deletes_a_bucket_without_the_managed_by_tag_only_when_adopted(minio_admin, s3, bucket):
    _someone_elses_bucket(s3, bucket)
    refused = run(minio_admin, "minio_bucket", name=bucket, state="absent", force=True, managed_by="mlops.mlflow")
    assert refused.returncode != 0
    assert "Set adopt=true to take it over" in refused.module_result["msg"]
    assert s3.bucket_exists(bucket)

    deleted = run(minio_admin, "minio_bucket", name=bucket, state="absent", managed_by="mlops.mlflow", adopt=True)
    assert deleted.returncode == 0, deleted.output
    assert deleted.module_result["adopted"] is True
    assert not s3.bucket_exists(bucket)


def test_a_managed_by_tag_that_contradicts_managed_by_is_refused_before_any_call(minio_admin):
    result = run(minio_admin, "minio_bucket", name="mlt-errors", tags={"managed-by": "me"}, managed_by="mlops.mlflow",
                 endpoint="http://127.0.0.1:%d" % _free_port())
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        "tags sets managed-by=me while managed_by is mlops.mlflow: leave that tag to managed_by")


# --- errors shared by the three modules --------------------------------------------------------------------------

MODULE_CALLS = [
    ("minio_bucket", {"name": "mlt-errors"}, "check bucket mlt-errors"),
    ("minio_policy", {"name": "mlt-errors", "state": "absent"}, "read policy mlt-errors"),
    ("minio_user", {"name": "mlt-errors", "state": "absent"}, "read user mlt-errors"),
]


@pytest.mark.parametrize(("module", "args", "action"), MODULE_CALLS)
def test_wrong_credentials_are_named_quickly(minio_admin, module, args, action):
    wrong_secret = "wrong-" + uuid.uuid4().hex
    started = time.monotonic()
    result = run(minio_admin, module, "-v", secret_key=wrong_secret, **args)
    assert result.returncode != 0
    assert module_result(result)["msg"] == (
        "Cannot %s: MinIO at %s rejected the credentials of access key '%s' (SignatureDoesNotMatch): check "
        "access_key and secret_key" % (action, minio_admin.url, minio_admin.user))
    assert time.monotonic() - started < 20
    assert wrong_secret not in result.output


@pytest.mark.parametrize(("module", "args", "action"), MODULE_CALLS)
def test_minio_down_is_named_quickly(minio_admin, module, args, action):
    endpoint = "http://127.0.0.1:%d" % _free_port()
    started = time.monotonic()
    result = run(minio_admin, module, endpoint=endpoint, **args)
    assert result.returncode != 0
    assert result.module_result["msg"] == "Cannot %s: MinIO at %s is unreachable (Connection refused)" % (
        action, endpoint)
    assert time.monotonic() - started < 20


def test_tls_to_a_plain_http_minio_is_named(minio_admin):
    endpoint = minio_admin.url.replace("http://", "https://")
    result = run(minio_admin, "minio_bucket", name="mlt-errors", endpoint=endpoint)
    assert result.returncode != 0
    assert result.module_result["msg"].startswith("Cannot check bucket mlt-errors: TLS error talking to MinIO at %s: "
                                                  % endpoint)


# --- minio_policy -------------------------------------------------------------------------------------------------

def test_policy_is_created_then_unchanged_when_only_its_layout_differs(minio_admin, admin, policy_name):
    created = run(minio_admin, "minio_policy", name=policy_name, policy=READ_OBJECTS)
    assert created.returncode == 0, created.output
    assert module_result(created)["changed"] is True
    assert json.loads(admin.policy_info(policy_name))["Statement"][0]["Resource"] == ["arn:aws:s3:::mlt-nothing/*"]

    relaid = {"Statement": [{"Resource": "arn:aws:s3:::mlt-nothing/*", "Action": "s3:GetObject", "Sid": "",
                             "Effect": "Allow"}], "Version": "2012-10-17"}
    again = run(minio_admin, "minio_policy", name=policy_name, policy=relaid)
    assert again.returncode == 0, again.output
    assert again.module_result["changed"] is False


def test_policy_check_mode_and_diff(minio_admin, admin, policy_name):
    result = run(minio_admin, "minio_policy", "--check", "--diff", name=policy_name, policy=READ_OBJECTS)
    assert result.module_result["changed"] is True
    assert result.module_result["diff"]["before"] == {}
    assert result.module_result["diff"]["after"]["Statement"][0]["Action"] == ["s3:GetObject"]
    with pytest.raises(MinioAdminException):
        admin.policy_info(policy_name)


def test_policy_edited_by_hand_is_repaired(minio_admin, admin, policy_name):
    assert run(minio_admin, "minio_policy", name=policy_name, policy=READ_OBJECTS).returncode == 0
    admin.policy_add(policy_name, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]})
    result = run(minio_admin, "minio_policy", "--diff", name=policy_name, policy=READ_OBJECTS)
    assert result.module_result["changed"] is True
    assert result.module_result["diff"]["before"]["Statement"][0]["Action"] == ["s3:*"]
    assert json.loads(admin.policy_info(policy_name))["Statement"][0]["Action"] == ["s3:GetObject"]

    removed = run(minio_admin, "minio_policy", name=policy_name, state="absent")
    assert removed.module_result["changed"] is True
    assert run(minio_admin, "minio_policy", name=policy_name, state="absent").module_result["changed"] is False


# --- minio_user ---------------------------------------------------------------------------------------------------

def _can_log_in(minio_admin, access_key, secret_key):
    client = Minio(_netloc(minio_admin.url), access_key, secret_key, secure=False, http_client=_http())
    try:
        client.list_buckets()
    except S3Error as exc:
        # The user logged in; its policy just does not allow listing buckets.
        return exc.code == "AccessDenied"
    return True


def test_user_secret_is_set_on_create_and_on_request_only(minio_admin, admin, policy_name, user_name):
    assert run(minio_admin, "minio_policy", name=policy_name, policy=READ_OBJECTS).returncode == 0
    first_secret, second_secret = uuid.uuid4().hex, uuid.uuid4().hex

    created = run(minio_admin, "minio_user", "-v", "--diff", name=user_name, user_secret_key=first_secret,
                  policies=[policy_name])
    assert created.returncode == 0, created.output
    assert module_result(created)["changed"] is True
    assert module_result(created)["secret_updated"] is True
    assert module_result(created)["user"] == {"name": user_name, "status": "enabled", "policies": [policy_name]}
    assert first_secret not in created.output
    assert _can_log_in(minio_admin, user_name, first_secret)

    # A different secret without update_secret=always is not applied: the first one stays valid.
    again = run(minio_admin, "minio_user", name=user_name, user_secret_key=second_secret, policies=[policy_name])
    assert again.module_result["changed"] is False
    assert _can_log_in(minio_admin, user_name, first_secret)

    rotated = run(minio_admin, "minio_user", "-v", name=user_name, user_secret_key=second_secret,
                  policies=[policy_name], update_secret="always")
    assert module_result(rotated)["changed"] is True
    assert module_result(rotated)["secret_updated"] is True
    assert second_secret not in rotated.output
    assert _can_log_in(minio_admin, user_name, second_secret)
    assert not _can_log_in(minio_admin, user_name, first_secret)
    assert json.loads(admin.user_info(user_name))["policyName"] == policy_name


def test_user_check_mode_creates_nothing(minio_admin, admin, user_name):
    result = run(minio_admin, "minio_user", "--check", name=user_name, user_secret_key=uuid.uuid4().hex)
    assert result.module_result["changed"] is True
    with pytest.raises(MinioAdminException):
        admin.user_info(user_name)


def test_user_policies_and_status_drift_is_repaired(minio_admin, admin, policy_name, user_name):
    assert run(minio_admin, "minio_policy", name=policy_name, policy=READ_OBJECTS).returncode == 0
    secret = uuid.uuid4().hex
    assert run(minio_admin, "minio_user", name=user_name, user_secret_key=secret,
               policies=[policy_name]).returncode == 0
    admin.detach_policy([policy_name], user=user_name)
    admin.attach_policy(["readwrite"], user=user_name)
    admin.user_disable(user_name)

    result = run(minio_admin, "minio_user", "--diff", name=user_name, user_secret_key=secret, policies=[policy_name])
    assert result.module_result["changed"] is True
    assert result.module_result["diff"]["before"] == {"name": user_name, "status": "disabled",
                                                      "policies": ["readwrite"]}
    info = json.loads(admin.user_info(user_name))
    assert (info["status"], info["policyName"]) == ("enabled", policy_name)

    removed = run(minio_admin, "minio_user", name=user_name, state="absent")
    assert removed.module_result["changed"] is True
    with pytest.raises(MinioAdminException):
        admin.user_info(user_name)


# --- minio_mirror ---------------------------------------------------------------------------------------------

@pytest.fixture
def second_bucket(s3):
    name = _unique("b")
    yield name
    remove_bucket(s3, name)


def test_mirror_copies_a_bucket_down_and_up_and_a_second_run_copies_nothing(minio_admin, s3, bucket, second_bucket,
                                                                            tmp_path):
    s3.make_bucket(bucket)
    s3.make_bucket(second_bucket)
    # 6 MiB in 5 MiB parts: a multipart ETag, which is no MD5.
    large = os.urandom(6 << 20)
    objects = {"artifacts/1/run/artifacts/note.txt": b"note", "artifacts/1/run/artifacts/a b.txt": b"space",
               "artifacts/1/run/model/large.bin": large}
    for key, data in objects.items():
        s3.put_object(bucket, key, io.BytesIO(data), len(data), part_size=5 << 20)
    copy = tmp_path / "backup" / "objects"
    (tmp_path / "backup").mkdir()

    check = run(minio_admin, "minio_mirror", "--check", bucket=bucket, path=str(copy), direction="download")
    assert check.returncode == 0, check.output
    assert check.module_result["changed"] is True and check.module_result["copied_count"] == 3
    assert not copy.exists()

    down = run(minio_admin, "minio_mirror", bucket=bucket, path=str(copy), direction="download")
    assert down.returncode == 0, down.output
    assert down.module_result["copied_bytes"] == sum(len(data) for data in objects.values())
    assert {key: (copy / key).read_bytes() for key in objects} == objects
    assert {oct(path.stat().st_mode & 0o777) for path in copy.rglob("*")} == {"0o700", "0o600"}
    again = run(minio_admin, "minio_mirror", bucket=bucket, path=str(copy), direction="download")
    assert again.module_result["changed"] is False and again.module_result["copied_count"] == 0

    up = run(minio_admin, "minio_mirror", bucket=second_bucket, path=str(copy), direction="upload")
    assert up.returncode == 0, up.output
    assert up.module_result["copied_count"] == 3
    assert {key: s3.get_object(second_bucket, key).read() for key in objects} == objects
    again = run(minio_admin, "minio_mirror", bucket=second_bucket, path=str(copy), direction="upload")
    assert again.module_result["changed"] is False and again.module_result["copied_count"] == 0

    # A changed file is copied again; an object the directory does not hold stays.
    (copy / "artifacts/1/run/artifacts/note.txt").write_bytes(b"note v2")
    s3.put_object(second_bucket, "artifacts/2/other.txt", io.BytesIO(b"other"), 5)
    changed = run(minio_admin, "minio_mirror", bucket=second_bucket, path=str(copy), direction="upload")
    assert changed.module_result["copied"] == ["artifacts/1/run/artifacts/note.txt"]
    assert s3.get_object(second_bucket, "artifacts/1/run/artifacts/note.txt").read() == b"note v2"
    assert s3.get_object(second_bucket, "artifacts/2/other.txt").read() == b"other"


def test_mirror_refuses_a_key_that_cannot_be_a_file_before_copying_anything(minio_admin, s3, bucket, tmp_path):
    s3.make_bucket(bucket)
    s3.put_object(bucket, "a/note.txt", io.BytesIO(b"x"), 1)
    s3.put_object(bucket, "folder/", io.BytesIO(b""), 0)
    result = run(minio_admin, "minio_mirror", bucket=bucket, path=str(tmp_path / "objects"), direction="download")
    assert result.returncode != 0
    assert result.module_result["msg"] == (
        "Object 'folder/' of bucket %s cannot be a file: it has an empty path segment (a leading, trailing or doubled "
        "/); nothing was copied" % bucket)
    assert not (tmp_path / "objects").exists()
