"""Each local service answers for real with the admin credentials the stack generated."""

from __future__ import annotations

import io
import json
import uuid
from urllib.parse import urlparse

import psycopg2
import pytest
from keycloak.exceptions import KeycloakError
from minio import Minio
from minio.error import S3Error

from tests.keycloak_api import realm_admin, realm_openid


@pytest.mark.postgres
def test_postgresql_answers_sql(postgresql_admin):
    with psycopg2.connect(
        host=postgresql_admin.host,
        port=postgresql_admin.port,
        user=postgresql_admin.user,
        password=postgresql_admin.password,
        dbname="postgres",
        connect_timeout=5,
    ) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int / 10000, current_user, 6 * 7")
        assert cursor.fetchone() == (15, postgresql_admin.user, 42)


@pytest.mark.postgres
def test_postgresql_refuses_a_wrong_password(postgresql_admin):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=postgresql_admin.host,
            port=postgresql_admin.port,
            user=postgresql_admin.user,
            password="not-the-password",
            dbname="postgres",
            connect_timeout=5,
        )


@pytest.mark.keycloak
def test_keycloak_issues_an_admin_token_that_the_admin_api_accepts(keycloak_admin):
    # python-keycloak logs in with the password grant of admin-cli, then calls the admin API with the token; a
    # refused login or a refused token raises.
    admin = realm_admin(keycloak_admin, keycloak_admin.realm)
    assert "master" in [realm["realm"] for realm in admin.get_realms()]
    assert admin.connection.token["access_token"]


@pytest.mark.keycloak
def test_keycloak_refuses_a_wrong_admin_password(keycloak_admin):
    admin_cli = realm_openid(keycloak_admin, keycloak_admin.realm, "admin-cli")
    with pytest.raises(KeycloakError) as refused:
        admin_cli.token(keycloak_admin.user, "not-the-password")
    assert refused.value.response_code in (400, 401)
    assert json.loads(refused.value.response_body)["error"] == "invalid_grant"


def _minio_client(minio_admin, secret_key):
    return Minio(
        urlparse(minio_admin.url).netloc,
        access_key=minio_admin.user,
        secret_key=secret_key,
        secure=False,
    )


@pytest.mark.minio
def test_minio_lists_a_bucket_it_created(minio_admin):
    client = _minio_client(minio_admin, minio_admin.password)
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket)
    try:
        client.put_object(bucket, "hello.txt", io.BytesIO(b"hello"), length=5)
        assert bucket in [b.name for b in client.list_buckets()]
        assert [o.object_name for o in client.list_objects(bucket)] == ["hello.txt"]
        assert client.get_object(bucket, "hello.txt").read() == b"hello"
    finally:
        client.remove_object(bucket, "hello.txt")
        client.remove_bucket(bucket)


@pytest.mark.minio
def test_minio_refuses_a_wrong_secret_key(minio_admin):
    client = _minio_client(minio_admin, "not-the-secret-key")
    with pytest.raises(S3Error) as error:
        client.list_buckets()
    assert error.value.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId")
