# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared connection options, client construction, error translation and pure helpers for the MinIO modules."""

from __future__ import annotations

import json
import re
import traceback
from contextlib import contextmanager
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

try:
    import urllib3
    from minio import Minio, MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException, MinioException, S3Error
except ImportError:
    HAS_MINIO = False
    MINIO_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_MINIO = True
    MINIO_IMPORT_ERROR = None

# S3 and admin API error codes that mean "these credentials are not accepted".
BAD_CREDENTIAL_CODES = frozenset(("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"))


def minio_argument_spec():
    """Connection options shared by every MinIO module (documented in the mlops.mlflow.minio doc fragment)."""
    return dict(
        endpoint=dict(type="str", required=True),
        # The access key is a user name, not a secret.
        access_key=dict(type="str", required=True, no_log=False),
        secret_key=dict(type="str", required=True, no_log=True),
        region=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=10),
    )


def parse_endpoint(endpoint):
    """Return (host[:port], secure) for an http(s) URL; raise ValueError with the reason otherwise.

    Without a port, the SDK uses the scheme's (80 or 443).
    """
    not_a_url = ValueError("endpoint must be a URL like http://127.0.0.1:9000 or https://minio.example.com, got %r"
                           % endpoint)
    try:
        parts = urlsplit(endpoint)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise not_a_url from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise not_a_url
    if parts.username is not None:
        raise ValueError("endpoint must not carry credentials (give them as access_key and secret_key), got a URL "
                         "with a user name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("endpoint must not carry a path or query (MinIO serves buckets from the root), got %r"
                         % endpoint)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0:
        raise ValueError("endpoint %r has an invalid port: give a number from 1 to 65535, or no port for the "
                         "scheme's default (80 for http, 443 for https)" % endpoint)
    host = "[%s]" % parts.hostname if ":" in parts.hostname else parts.hostname
    return host if port is None else "%s:%d" % (host, port), parts.scheme == "https"


_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_LIKE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def bucket_name_error(name):
    """Return why `name` breaks the S3 bucket naming rules, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long (it has %d)" % len(name)
    if not _BUCKET_NAME.match(name):
        return ("may contain only lowercase letters, digits, dots and hyphens, and must start and end with a letter "
                "or digit")
    if ".." in name or ".-" in name or "-." in name:
        return "must not contain two adjacent dots or a dot next to a hyphen"
    if _IPV4_LIKE.match(name):
        return "must not look like an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "must not use a prefix or suffix reserved by S3 (%s, %s)" % (
            ", ".join(_RESERVED_PREFIXES), ", ".join(_RESERVED_SUFFIXES))
    return None


# Policy statement keys whose value is a string or a list of strings, where order does not matter.
_SET_KEYS = ("Action", "NotAction", "Resource", "NotResource")


def _kind(value):
    if isinstance(value, dict):
        return "a dictionary"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a %s" % type(value).__name__


def _strings(value):
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _statement_error(statement, where):
    if not isinstance(statement, dict):
        return "%s is %s, not a dictionary of Effect, Action, Resource ...: %s" % (
            where, _kind(statement), json.dumps(statement, default=str))
    for key in _SET_KEYS:
        if key in statement and not _strings(statement[key]):
            return "the %s of %s is %s, not a string or a list of strings" % (key, where, _kind(statement[key]))
    principal = statement.get("Principal")
    if principal is not None and not isinstance(principal, str) and not (
            isinstance(principal, dict) and all(_strings(value) for value in principal.values())):
        return "the Principal of %s is %s, not '*' or a dictionary like {AWS: [...]}" % (where, _kind(principal))
    condition = statement.get("Condition")
    if condition is not None and not (
            isinstance(condition, dict) and all(isinstance(tests, dict) for tests in condition.values())):
        return ("the Condition of %s is not a dictionary of operators, each with a dictionary of keys and values "
                "(like {StringEquals: {s3:prefix: [...]}})" % where)
    return None


def policy_error(document):
    """Return why `document` (a dictionary) is not a policy document the modules can compare, or None."""
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not statements:
        return "it has no Statement: give one statement (a dictionary) or a list of them"
    if not isinstance(statements, list):
        return "its Statement is %s, not one statement (a dictionary) or a list of them" % _kind(statements)
    for number, statement in enumerate(statements, 1):
        error = _statement_error(statement, "Statement %d" % number)
        if error:
            return error
    return None


def _as_sorted_list(value):
    values = value if isinstance(value, list) else [value]
    return sorted(set(str(item) for item in values))


def _normalize_principal(principal):
    if isinstance(principal, dict):
        return dict((key, _as_sorted_list(value)) for key, value in sorted(principal.items()))
    return principal


def _normalize_condition(condition):
    return dict(
        (operator, dict((key, _as_sorted_list(value)) for key, value in sorted(tests.items())))
        for operator, tests in sorted(condition.items())
    )


def _normalize_statement(statement):
    normalized = {}
    for key, value in statement.items():
        if key in _SET_KEYS:
            normalized[key] = _as_sorted_list(value)
        elif key == "Principal":
            normalized[key] = _normalize_principal(value)
        elif key == "Condition":
            normalized[key] = _normalize_condition(value)
        elif key == "Sid" and not value:
            continue
        else:
            normalized[key] = value
    return normalized


def normalize_policy(document):
    """Return an IAM policy document in a canonical form, so equal policies compare equal.

    Single values become lists, lists of actions/resources/principals/condition values are sorted and
    deduplicated, empty Sids are dropped and statements are sorted: the forms in which MinIO and people
    write the same policy differently.
    """
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    normalized = dict((key, value) for key, value in document.items() if key != "Statement")
    normalized["Statement"] = sorted(
        (_normalize_statement(statement) for statement in statements),
        key=lambda statement: json.dumps(statement, sort_keys=True),
    )
    return normalized


def grants_anonymous(statement):
    """Whether a bucket policy statement applies to anonymous (unauthenticated) requests."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in _as_sorted_list(value) for value in principal.values())
    return False


def without_anonymous_statements(document):
    """Return the bucket policy document without its anonymous statements, or None if nothing is left."""
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [statement for statement in statements if not grants_anonymous(statement)]
    if not kept:
        return None
    return dict(document, Statement=kept)


def _admin_error(exc):
    """(code, message) from a MinioAdminException's JSON body, e.g. ('XMinioAdminNoSuchUser', '...')."""
    body = exc._body  # pylint: disable=protected-access
    try:
        answer = json.loads(body)
    except ValueError:
        return "HTTP %s" % exc._code, body  # pylint: disable=protected-access
    return answer.get("Code", ""), answer.get("Message", body)


class MinioConnection:
    """Clients for the S3 and admin APIs of one MinIO endpoint, with errors translated into fail_json."""

    def __init__(self, module):
        self.module = module
        if not HAS_MINIO:
            module.fail_json(msg=missing_required_lib("minio"), exception=MINIO_IMPORT_ERROR)
        params = module.params
        self.endpoint = params["endpoint"]
        try:
            netloc, secure = parse_endpoint(self.endpoint)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        self.timeout = params["timeout"]
        # Short timeouts and no connect retries: an unreachable endpoint fails in seconds, not minutes.
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self.timeout, read=max(self.timeout, 30)),
            cert_reqs="CERT_REQUIRED" if params["validate_certs"] else "CERT_NONE",
            ca_certs=params["ca_path"],
            retries=urllib3.Retry(total=2, connect=0, read=1, redirect=0, status=0, backoff_factor=0.2),
        )
        credentials = StaticProvider(params["access_key"], params["secret_key"])
        try:
            self.s3 = Minio(
                netloc,
                credentials=credentials,
                secure=secure,
                region=params["region"],
                http_client=http_client,
                cert_check=params["validate_certs"],
            )
            self.admin = MinioAdmin(
                endpoint=netloc,
                credentials=credentials,
                region=params["region"] or "",
                secure=secure,
                cert_check=params["validate_certs"],
                http_client=http_client,
            )
        except ValueError as exc:  # e.g. an invalid region name
            module.fail_json(msg="Invalid MinIO connection settings: %s" % exc)

    @contextmanager
    def errors(self, action):
        """Turn SDK and network errors raised while doing `action` into one clear fail_json message."""
        try:
            yield
        except S3Error as exc:
            self._fail_for_code(action, exc.code, exc.message)
        except MinioAdminException as exc:
            self._fail_for_code(action, *_admin_error(exc))
        except MinioException as exc:
            # Not an S3 error document: something else (a proxy, another server) answered.
            self.module.fail_json(msg="Cannot %s: unexpected answer from %s, is it MinIO? %s"
                                  % (action, self.endpoint, exc))
        except urllib3.exceptions.HTTPError as exc:
            self.module.fail_json(msg="Cannot %s: %s" % (action, self._network_reason(exc)))

    def call(self, action, function, *args, absent_codes=(), **kwargs):
        """Return function(*args, **kwargs); None when it fails with one of `absent_codes` (e.g. NoSuchBucketPolicy).

        Any other error ends the module with a message saying what it was trying to do (`action`).
        """
        with self.errors(action):
            try:
                return function(*args, **kwargs)
            except S3Error as exc:
                if exc.code in absent_codes:
                    return None
                raise
            except MinioAdminException as exc:
                if _admin_error(exc)[0] in absent_codes:
                    return None
                raise

    def _fail_for_code(self, action, code, message):
        if code in BAD_CREDENTIAL_CODES:
            self.module.fail_json(
                msg="Cannot %s: MinIO at %s rejected the credentials of access key %r (%s): check access_key and "
                    "secret_key" % (action, self.endpoint, self.module.params["access_key"], code),
                error_code=code,
            )
        if code == "AccessDenied":
            self.module.fail_json(
                msg="Cannot %s: access key %r is not allowed to do this on MinIO at %s (AccessDenied)"
                    % (action, self.module.params["access_key"], self.endpoint),
                error_code=code,
            )
        self.module.fail_json(msg="Cannot %s: MinIO at %s answered %s: %s" % (action, self.endpoint, code, message),
                              error_code=code)

    def _network_reason(self, exc):
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, urllib3.exceptions.SSLError):
            return ("TLS error talking to MinIO at %s: %s. Check the certificate, ca_path, or validate_certs"
                    % (self.endpoint, reason))
        # NewConnectionError is a subclass of ConnectTimeoutError: test it first.
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            detail = str(reason).rsplit("] ", 1)[-1].rstrip(")\"'")
            return "MinIO at %s is unreachable (%s)" % (self.endpoint, detail)
        if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            return "MinIO at %s did not answer within %d s (connection timed out)" % (self.endpoint, self.timeout)
        if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
            return "MinIO at %s stopped answering (read timed out)" % self.endpoint
        return "MinIO at %s: %s" % (self.endpoint, reason)
