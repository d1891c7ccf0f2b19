# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Where a protocol mapper lives and whether it exists: the options every keycloak_*_mapper module shares.
    DOCUMENTATION = r"""
options:
  name:
    description: Name of the mapper, unique on its client scope or client.
    type: str
    required: true
  client_scope:
    description:
      - Name of the client scope that holds the mapper.
      - Exactly one of O(client_scope) and O(client_id) is required.
    type: str
  client_id:
    description:
      - C(clientId) of the client that holds the mapper.
      - Exactly one of O(client_scope) and O(client_id) is required.
    type: str
  state:
    description: Whether the mapper should exist.
    type: str
    choices: [present, absent]
    default: present
"""
