"""Each local service answers for real with the admin credentials the stack generated."""

from __future__ import annotations

import io
import uuid
from urllib.parse import urlparse

import psycopg2
import pytest
import requests
from minio import Minio
from minio.error import S3Error


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


def _keycloak_token(keycloak_admin, password):
    return requests.post(
        f"{keycloak_admin.url}/realms/{keycloak_admin.realm}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": keycloak_admin.user,
            "password": password,
        },
        timeout=30,
    )


@pytest.mark.keycloak
def test_keycloak_issues_an_admin_token_that_the_admin_api_accepts(keycloak_admin):
    response = _keycloak_token(keycloak_admin, keycloak_admin.password)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    realms = requests.get(
        f"{keycloak_admin.url}/admin/realms", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert realms.status_code == 200
    assert "master" in [realm["realm"] for realm in realms.json()]


@pytest.mark.keycloak
def test_keycloak_refuses_a_wrong_admin_password(keycloak_admin):
    response = _keycloak_token(keycloak_admin, "not-the-password")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_grant"


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
