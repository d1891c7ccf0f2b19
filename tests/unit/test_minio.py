"""Pure logic of the MinIO modules: bucket names, endpoints, policy documents, user info, mirrored keys."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.module_utils._minio import (
    bucket_name_error,
    grants_anonymous,
    normalize_policy,
    parse_endpoint,
    policy_error,
    without_anonymous_statements,
)
from ansible_collections.mlops.mlflow.plugins.modules.minio_bucket import wanted_tags
from ansible_collections.mlops.mlflow.plugins.modules.minio_mirror import key_error, same_content
from ansible_collections.mlops.mlflow.plugins.modules.minio_user import parse_user_info

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["mlflow", "abc", "my-bucket.v2", "a" * 63, "0bucket9", "mlflow-artifacts-2026"])
def test_valid_bucket_names(name):
    assert bucket_name_error(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("Mlflow", "lowercase letters"),
        ("my_bucket", "lowercase letters"),
        ("-mlflow", "start and end with a letter or digit"),
        ("mlflow.", "start and end with a letter or digit"),
        ("my..bucket", "two adjacent dots"),
        ("my.-bucket", "dot next to a hyphen"),
        ("192.168.1.10", "IP address"),
        ("xn--bucket", "reserved"),
        ("bucket-s3alias", "reserved"),
        ("my bucket", "lowercase letters"),
    ],
)
def test_invalid_bucket_names_say_why(name, reason):
    assert reason in bucket_name_error(name)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:9000", ("127.0.0.1:9000", False)),
        ("https://minio.example.com", ("minio.example.com", True)),
        ("https://minio.example.com:9443/", ("minio.example.com:9443", True)),
        # No port, or an empty one: the SDK uses the scheme's.
        ("http://127.0.0.1", ("127.0.0.1", False)),
        ("http://127.0.0.1:", ("127.0.0.1", False)),
        ("http://[::1]:9000", ("[::1]:9000", False)),
        ("https://[::1]", ("[::1]", True)),
    ],
)
def test_parse_endpoint(endpoint, expected):
    assert parse_endpoint(endpoint) == expected


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("127.0.0.1:9000", "must be a URL"),
        ("ftp://minio:21", "must be a URL"),
        ("http://", "must be a URL"),
        ("http://minio:9000/mlflow", "must not carry a path"),
        ("http://[::1", "must be a URL"),
        ("http://minio:abc", "has an invalid port: give a number from 1 to 65535, or no port for the scheme's"),
        ("http://minio:99999", "has an invalid port"),
        ("http://minio:0", "has an invalid port"),
        ("http://root:secret@minio:9000", "must not carry credentials"),
    ],
)
def test_parse_endpoint_refuses_what_is_not_a_bare_url(endpoint, reason):
    with pytest.raises(ValueError, match=reason):
        parse_endpoint(endpoint)


def test_equal_policies_written_differently_normalize_equal():
    as_written = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlflow/*"},
            {"Sid": "", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucket"],
             "Resource": ["arn:aws:s3:::mlflow"]},
        ],
    }
    as_minio_returns_it = (
        '{\n "Version": "2012-10-17",\n "Statement": [\n'
        '  {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],'
        '   "Resource": ["arn:aws:s3:::mlflow"]},'
        '  {"Resource": ["arn:aws:s3:::mlflow/*"], "Action": ["s3:GetObject"], "Effect": "Allow"}\n ]\n}'
    )
    assert normalize_policy(as_written) == normalize_policy(as_minio_returns_it)


def test_normalized_policy_keeps_real_differences():
    base = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::mlflow/*"]}]}
    widened = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*"]}]}
    denied = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Deny", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::mlflow/*"]}]}
    assert normalize_policy(base) != normalize_policy(widened)
    assert normalize_policy(base) != normalize_policy(denied)


def test_normalize_policy_sorts_condition_values_and_principals():
    one = {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Principal": {"AWS": ["b", "a"]}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::x/*",
        "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.2/32", "10.0.0.1/32"]}}}}
    other = {"Version": "2012-10-17", "Statement": [{
        "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.1/32", "10.0.0.2/32"]}}, "Resource": ["arn:aws:s3:::x/*"],
        "Action": ["s3:GetObject"], "Principal": {"AWS": ["a", "b"]}, "Effect": "Allow"}]}
    assert normalize_policy(one) == normalize_policy(other)


@pytest.mark.parametrize(
    ("principal", "anonymous"),
    [
        ("*", True),
        ({"AWS": "*"}, True),
        ({"AWS": ["*"]}, True),
        ({"AWS": ["arn:aws:iam::1:user/x"]}, False),
        (None, False),
    ],
)
def test_grants_anonymous(principal, anonymous):
    statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::x/*"]}
    if principal is not None:
        statement["Principal"] = principal
    assert grants_anonymous(statement) is anonymous


def test_without_anonymous_statements_keeps_the_others():
    named = {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:user/x"]}, "Action": ["s3:GetObject"],
             "Resource": ["arn:aws:s3:::x/*"]}
    public = {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
              "Resource": ["arn:aws:s3:::x/*"]}
    assert without_anonymous_statements({"Version": "2012-10-17", "Statement": [public, named]}) == {
        "Version": "2012-10-17", "Statement": [named]}
    assert without_anonymous_statements({"Version": "2012-10-17", "Statement": [public]}) is None


def test_parse_user_info():
    assert parse_user_info("mlflow", '{"policyName":"readonly,mlflow-rw","status":"enabled"}') == {
        "name": "mlflow", "status": "enabled", "policies": ["mlflow-rw", "readonly"]}
    assert parse_user_info("mlflow", '{"status":"disabled","updatedAt":"0001-01-01T00:00:00Z"}') == {
        "name": "mlflow", "status": "disabled", "policies": []}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlflow/*"},
        [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::mlflow/*"],
          "Principal": {"AWS": ["*"]}, "Condition": {"StringEquals": {"s3:prefix": ["a/"]}}}],
    ],
)
def test_policy_error_accepts_a_statement_or_a_list_of_them(statement):
    assert policy_error({"Version": "2012-10-17", "Statement": statement}) is None


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (None, "it has no Statement: give one statement (a dictionary) or a list of them"),
        ([], "it has no Statement"),
        ("s3:GetObject", "its Statement is a string, not one statement (a dictionary) or a list of them"),
        (["s3:GetObject"], 'Statement 1 is a string, not a dictionary of Effect, Action, Resource ...: "s3:GetObject"'),
        ([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, [["s3:GetObject"]]],
         'Statement 2 is a list, not a dictionary'),
        ([{"Effect": "Allow", "Action": {"s3": "GetObject"}, "Resource": "*"}],
         "the Action of Statement 1 is a dictionary, not a string or a list of strings"),
        ([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": ["*"]}],
         "the Principal of Statement 1 is a list"),
        ([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": "bad"}],
         "the Condition of Statement 1 is not a dictionary of operators"),
    ],
)
def test_policy_error_names_the_statement_and_what_is_wrong(statement, reason):
    assert policy_error({"Version": "2012-10-17", "Statement": statement}).startswith(reason)


@pytest.mark.parametrize(
    ("tags", "current", "managed_by", "wanted"),
    [
        (None, {"team": "ml"}, None, None),
        ({"app": 1}, {"team": "ml"}, None, {"app": "1"}),
        ({"app": "mlflow"}, {"team": "ml"}, "mlops.mlflow", {"app": "mlflow", "managed-by": "mlops.mlflow"}),
        # tags not managed: the bucket's own tags stay, the marker joins them.
        (None, {"team": "ml"}, "mlops.mlflow", {"team": "ml", "managed-by": "mlops.mlflow"}),
        (None, {"managed-by": "someone-else"}, "mlops.mlflow", {"managed-by": "mlops.mlflow"}),
        ({"managed-by": "mlops.mlflow"}, {}, "mlops.mlflow", {"managed-by": "mlops.mlflow"}),
    ],
)
def test_wanted_tags(tags, current, managed_by, wanted):
    assert wanted_tags(tags, current, managed_by) == wanted


def test_wanted_tags_refuses_a_managed_by_tag_that_contradicts_managed_by():
    with pytest.raises(ValueError, match="tags sets managed-by=me while managed_by is mlops.mlflow"):
        wanted_tags({"managed-by": "me"}, {}, "mlops.mlflow")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("artifacts/1/abc/artifacts/note.txt", None),
        ("a", None),
        ("/etc/passwd", "empty path segment"),
        ("folder/", "empty path segment"),
        ("a//b", "empty path segment"),
        ("a/../../b", ". or .. path segment"),
        ("./a", ". or .. path segment"),
    ],
)
def test_key_error(key, reason):
    error = key_error(key)
    assert (error is None) if reason is None else (reason in error)


@pytest.mark.parametrize(
    ("local", "remote", "same"),
    [
        ({"size": 3, "md5": "abc"}, {"size": 3, "etag": '"abc"'}, True),
        ({"size": 3, "md5": "abc"}, {"size": 3, "etag": "abd"}, False),
        ({"size": 3, "md5": "abc"}, {"size": 4, "etag": "abc"}, False),
        # A multipart upload's ETag is no MD5: the size alone is compared.
        ({"size": 3, "md5": "abc"}, {"size": 3, "etag": '"0f1e-2"'}, True),
        (None, {"size": 3, "etag": "abc"}, False),
        ({"size": 3, "md5": "abc"}, None, False),
    ],
)
def test_same_content(local, remote, same):
    assert same_content(local, remote) is same
