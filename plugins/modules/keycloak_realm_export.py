#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_realm_export
short_description: Write a realm's configuration (clients, client scopes, groups, roles, mappers) without secrets
version_added: 0.1.0
description:
  - Asks Keycloak for the realm's partial export (C(POST /admin/realms/<realm>/partial-export) with clients, groups
    and roles) and writes it to O(dest) as JSON (mode 0600), with every secret removed, that is client secrets and any
    other value Keycloak masks (C(**********)) or names a secret, password, credential or private key. Users are not
    part of it.
  - The file is for reference and comparison (what the realm looked like); nothing in this collection imports it.
  - Writes O(dest) only when its content differs, so a second run against an unchanged realm changes nothing.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
options:
  dest:
    description: File to write. Its directory must exist.
    type: path
    required: true
attributes:
  check_mode:
    description: Reads the realm and reports whether the file would change, without writing it.
    support: full
  diff_mode:
    description: Nothing to show; RV(clients) and RV(groups) summarise the export.
    support: none
"""

EXAMPLES = r"""
- name: Keep the MLflow realm's configuration beside a backup
  mlops.mlflow.keycloak_realm_export:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    dest: /var/backups/mlflow/20261202T150000Z/realm.json
"""

RETURN = r"""
keycloak_version:
  description: Version of the Keycloak server.
  returned: always
  type: str
  sample: 26.7.3
clients:
  description: Client ids of the realm's clients.
  returned: always
  type: list
  elements: str
  sample: [account, admin-cli, mlflow]
groups:
  description: Paths of the realm's groups, subgroups included.
  returned: always
  type: list
  elements: str
  sample: [/mlflow-admins, /mlflow-users]
client_scopes:
  description: Number of client scopes.
  returned: always
  type: int
  sample: 11
mappers:
  description: Number of protocol mappers, on clients and client scopes together.
  returned: always
  type: int
  sample: 42
removed_secrets:
  description: Number of secret values left out of the file.
  returned: always
  type: int
  sample: 3
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)

# What Keycloak writes in place of a secret it does not give out.
MASK = "**********"
SECRET_NAMES = frozenset(("secret", "clientsecret", "password", "credentials", "privatekey", "secretkey",
                          "registrationaccesstoken"))


def is_secret(name, value):
    """Whether a key/value pair of a representation holds a secret, or the mask Keycloak put in its place."""
    if name.replace("_", "").replace(".", "").lower() in SECRET_NAMES:
        return True
    if isinstance(value, list):
        return any(item == MASK for item in value)
    return value == MASK


def without_secrets(value):
    """(a copy of `value` without any secret, the number of secrets left out), recursively."""
    if isinstance(value, dict):
        kept, removed = {}, 0
        for name, item in value.items():
            if is_secret(name, item):
                removed += 1
                continue
            kept[name], count = without_secrets(item)
            removed += count
        return kept, removed
    if isinstance(value, list):
        items = [without_secrets(item) for item in value]
        return [item for item, _count in items], sum(count for _item, count in items)
    return value, 0


def group_paths(groups):
    paths = []
    for group in groups or []:
        paths.append(group.get("path") or "/" + group.get("name", ""))
        paths.extend(group_paths(group.get("subGroups")))
    return paths


def summary(export):
    holders = (export.get("clients") or []) + (export.get("clientScopes") or [])
    return dict(
        clients=sorted(client.get("clientId", "") for client in export.get("clients") or []),
        groups=sorted(group_paths(export.get("groups"))),
        client_scopes=len(export.get("clientScopes") or []),
        mappers=sum(len(holder.get("protocolMappers") or []) for holder in holders),
    )


def current_content(path):
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(dest=dict(type="path", required=True)),
        **keycloak_module_kwargs()
    )
    dest = module.params["dest"]
    directory = os.path.dirname(dest) or "."
    # In check mode the directory may be one the run would have created.
    if not os.path.isdir(directory) and not module.check_mode:
        module.fail_json(msg="The directory of %s does not exist: create it first" % dest)
    api = KeycloakApi(module)
    api.require_realm()
    version = ((api.request("GET", "admin/serverinfo") or {}).get("systemInfo") or {}).get("version", "")
    export = api.request("POST", api.realm_path("partial-export"),
                         query={"exportClients": "true", "exportGroupsAndRoles": "true"}) or {}
    export, removed = without_secrets(export)
    content = (json.dumps(export, indent=2, sort_keys=True) + "\n").encode("utf-8")

    changed = current_content(dest) != content
    if changed and not module.check_mode:
        # mkstemp makes the file 0600; os.replace keeps that mode.
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".realm-export-")
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
        os.replace(temporary, dest)
    module.exit_json(changed=changed, keycloak_version=version, removed_secrets=removed, **summary(export))


if __name__ == "__main__":
    main()
