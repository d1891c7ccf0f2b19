#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_realm
short_description: Ensure a Keycloak realm exists and is enabled, or is absent
version_added: 0.1.0
description:
  - Creates the realm named by O(realm) when it is missing, enables it when it is disabled, or deletes it.
  - Converges the realm settings given in O(settings) (brute-force protection, password policy, ...); other realm
    settings are left as they are.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  state:
    description:
      - Whether the realm should exist.
      - V(absent) deletes the realm with all its clients, groups and users.
    type: str
    choices: [present, absent]
    default: present
  settings:
    description:
      - Top-level attributes of the realm representation to set, for example V(bruteForceProtected), V(passwordPolicy)
        or V(editUsernameAllowed). Only these are compared and changed.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Create the mlflow realm
  mlops.mlflow.keycloak_realm:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow

- name: Create the mlflow realm with brute-force protection and a password policy
  mlops.mlflow.keycloak_realm:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    settings:
      bruteForceProtected: true
      passwordPolicy: length(12) and notUsername and notEmail
      editUsernameAllowed: false
"""

RETURN = r"""
realm:
  description: Name, enabled state and the managed O(settings) of the realm after the run; empty when absent.
  returned: always
  type: dict
  sample:
    realm: mlflow
    enabled: true
    bruteForceProtected: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)


def realm_view(representation, settings):
    """The realm's name, enabled state and the settings the module manages."""
    if representation is None:
        return {}
    view = {"realm": representation["realm"], "enabled": representation.get("enabled", False)}
    view.update({key: representation.get(key) for key in settings})
    return view


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            settings=dict(type="dict", default={}),
        ),
        **keycloak_module_kwargs(),
    )
    api = KeycloakApi(module)
    settings = module.params["settings"]
    reserved = sorted({"realm", "enabled", "id"} & set(settings))
    if reserved:
        module.fail_json(msg="settings must not contain %s: the module manages the realm's name and state" % ", ".join(reserved))
    current = api.request("GET", api.realm_path(), missing_ok=True)
    before = realm_view(current, settings)

    if module.params["state"] == "absent":
        changed = current is not None
        if changed and not module.check_mode:
            api.request("DELETE", api.realm_path())
        module.exit_json(changed=changed, realm={}, diff=dict(before=before, after={}))

    after = dict(settings, realm=api.realm, enabled=True)
    changed = before != after
    if changed and not module.check_mode:
        if current is None:
            api.request("POST", "admin/realms", after)
        else:
            api.request("PUT", api.realm_path(), dict(settings, enabled=True))
    module.exit_json(changed=changed, realm=after, diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
