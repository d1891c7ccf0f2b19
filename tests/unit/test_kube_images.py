"""The test cluster's podman wrapper on a fresh machine: describing it must not need podman installed yet."""

from __future__ import annotations

from tests.kube import images


def test_podman_storage_arguments_need_no_podman_until_it_is_installed(tmp_path, monkeypatch):
    # A PATH with no podman on it, as on a fresh machine before ensure_tools() ran.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    podman = images.Podman(tmp_path)
    arguments = podman.storage_args()
    assert arguments[-2:] == ["--storage-driver", "overlay"]
    # Nothing was probed, so no choice is remembered: the first call with podman installed probes.
    assert not (tmp_path / "podman" / "storage-driver").exists()
