"""The stored_secret lookup's file logic: generated once (0600 in a 0700 directory), read back, never written in
check mode."""

from __future__ import annotations

import stat

from ansible_collections.mlops.mlflow.plugins.lookup.stored_secret import CHECK_MODE_PLACEHOLDER, read_or_create


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_secret_is_generated_once_then_read_back(tmp_path):
    path = tmp_path / "secrets" / "owner_password"
    first = read_or_create(str(path), 32, check_mode=False)
    assert len(first) == 32 and first.isalnum()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert read_or_create(str(path), 64, check_mode=False) == first
    assert read_or_create(str(path), 32, check_mode=True) == first


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "secrets" / "owner_password"
    assert read_or_create(str(path), 32, check_mode=True) == CHECK_MODE_PLACEHOLDER
    assert not path.parent.exists()


def test_a_file_written_by_the_password_lookup_is_read_as_it_is(tmp_path):
    # ansible.builtin.password wrote the secrets of deployments made before this lookup existed.
    path = tmp_path / "owner_password"
    path.write_text("Xq3vXq3vXq3vXq3vXq3vXq3vXq3vXq3v\n")
    assert read_or_create(str(path), 32, check_mode=False) == "Xq3vXq3vXq3vXq3vXq3vXq3vXq3vXq3v"


def test_two_secrets_differ(tmp_path):
    assert read_or_create(str(tmp_path / "a"), 32, False) != read_or_create(str(tmp_path / "b"), 32, False)
