# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by the MinIO modules (defined in module_utils/_minio.py)."""

    DOCUMENTATION = r"""
options:
  endpoint:
    description:
      - URL of the MinIO S3 API, with scheme and port and without a path, for example V(http://127.0.0.1:9000)
        or V(https://minio.example.com).
    type: str
    required: true
  access_key:
    description:
      - Access key (user name) to log in with. It needs admin rights on the objects the module manages.
    type: str
    required: true
  secret_key:
    description:
      - Secret key of O(access_key).
    type: str
    required: true
  region:
    description:
      - Region of the MinIO server. When unset the S3 client asks the server.
    type: str
  validate_certs:
    description:
      - Verify the server's TLS certificate for an V(https://) endpoint.
      - Only switch it off for a throwaway test server.
    type: bool
    default: true
  ca_path:
    description:
      - File of CA certificates (PEM) to verify the server's certificate with, instead of the system's.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection to MinIO before failing (reads may take up to 30 s).
    type: int
    default: 10
requirements:
  - minio >= 7.2 (Python SDK) on the host that runs the module
notes:
  - The admin API calls (users, policies) are signed with the same credentials as the S3 calls.
"""
