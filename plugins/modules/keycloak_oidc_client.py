#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_oidc_client
short_description: Converge confidential OpenID Connect clients in Keycloak and read their secrets back
version_added: 0.1.0
description:
  - Ensures a confidential C(openid-connect) client (client secret authentication, implicit flow off), found by its
    C(clientId), with the given redirect URIs, web origins, PKCE method, flows, default client scopes and audience;
    or several, given in O(clients), with one admin login.
  - A client is updated in place, never deleted and recreated, so its secret and the sessions of its users survive.
  - The client secret is read back as it is. It changes only when O(rotate_secret=true), or when O(secret) names
    another one.
  - The secret is returned only when O(return_secret=true), in RV(client_secret); set C(no_log) on such a task.
    It never appears in RV(client) or in the diff.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  client_id:
    description:
      - C(clientId) of the client, the value applications send as C(client_id).
      - Required unless O(clients) is given; mutually exclusive with it.
    type: str
  name:
    description: Display name of the client. Left as it is when omitted.
    type: str
  description:
    description: Description of the client. Left as it is when omitted.
    type: str
  redirect_uris:
    description:
      - Exact redirect URIs the client may use (avoid wildcards). The client gets exactly this list.
      - Left as it is when omitted.
    type: list
    elements: str
  web_origins:
    description:
      - Origins allowed for CORS requests. The client gets exactly this list.
      - Left as it is when omitted.
    type: list
    elements: str
  standard_flow:
    description: Enable the authorization code flow.
    type: bool
    default: true
  direct_access_grants:
    description: Enable the resource owner password grant (direct access grants).
    type: bool
    default: false
  service_accounts:
    description:
      - Enable the client credentials grant. Keycloak then gives the client a service-account user named
        C(service-account-<client id in lower case>), which can join groups like any user.
    type: bool
    default: false
  pkce_method:
    description: PKCE code challenge method the client must use; V(none) does not require PKCE.
    type: str
    choices: [S256, plain, none]
    default: S256
  default_client_scopes:
    description:
      - Client scopes that must be default client scopes of the client (moved from the optional scopes if needed).
      - Other default client scopes of the client (Keycloak's realm defaults such as C(profile), C(email),
        C(basic)) are kept.
      - Each scope must exist in the realm.
    type: list
    elements: str
    default: []
  audience:
    description:
      - C(clientId) of a client to put into the C(aud) claim of this client's access tokens, through a protocol
        mapper of type C(oidc-audience-mapper) named C(<audience>-audience) on the client (as
        M(mlops.mlflow.keycloak_audience_mapper) makes it).
      - Left as it is when omitted.
    type: str
  secret:
    description:
      - The client secret the client must have, for example one generated once by the lookup
        C(mlops.mlflow.stored_secret). A client created gets it; an existing client with another secret is updated.
      - Read back as it is when omitted.
      - Mutually exclusive with O(rotate_secret).
    type: str
  rotate_secret:
    description: Generate a new client secret. Every application that uses the old one stops working.
    type: bool
    default: false
  state:
    description:
      - Whether the client should exist.
      - V(absent) deletes the client (and its service-account user); a later V(present) creates a new one, with a
        new secret unless O(secret) is given.
    type: str
    choices: [present, absent]
    default: present
  clients:
    description:
      - Several clients, each with the options of one client; converged in order with one admin login, after
        checking that every client's default client scopes exist.
      - Mutually exclusive with O(client_id) and the other options of one client.
    type: list
    elements: dict
    suboptions:
      client_id:
        description: C(clientId) of the client, the value applications send as C(client_id).
        type: str
        required: true
      name:
        description: Display name of the client. Left as it is when omitted.
        type: str
      description:
        description: Description of the client. Left as it is when omitted.
        type: str
      redirect_uris:
        description:
          - Exact redirect URIs the client may use (avoid wildcards). The client gets exactly this list.
          - Left as it is when omitted.
        type: list
        elements: str
      web_origins:
        description:
          - Origins allowed for CORS requests. The client gets exactly this list.
          - Left as it is when omitted.
        type: list
        elements: str
      standard_flow:
        description: Enable the authorization code flow.
        type: bool
        default: true
      direct_access_grants:
        description: Enable the resource owner password grant (direct access grants).
        type: bool
        default: false
      service_accounts:
        description:
          - Enable the client credentials grant. Keycloak then gives the client a service-account user named
            C(service-account-<client id in lower case>), which can join groups like any user.
        type: bool
        default: false
      pkce_method:
        description: PKCE code challenge method the client must use; V(none) does not require PKCE.
        type: str
        choices: [S256, plain, none]
        default: S256
      default_client_scopes:
        description:
          - Client scopes that must be default client scopes of the client (moved from the optional scopes if needed).
          - Other default client scopes of the client (Keycloak's realm defaults such as C(profile), C(email),
            C(basic)) are kept.
          - Each scope must exist in the realm.
        type: list
        elements: str
        default: []
      audience:
        description:
          - C(clientId) of a client to put into the C(aud) claim of this client's access tokens, through a protocol
            mapper of type C(oidc-audience-mapper) named C(<audience>-audience) on the client (as
            M(mlops.mlflow.keycloak_audience_mapper) makes it).
          - Left as it is when omitted.
        type: str
      secret:
        description:
          - The client secret the client must have, for example one generated once by the lookup
            C(mlops.mlflow.stored_secret). A client created gets it; an existing client with another secret is updated.
          - Read back as it is when omitted.
          - Mutually exclusive with O(rotate_secret).
        type: str
      rotate_secret:
        description: Generate a new client secret. Every application that uses the old one stops working.
        type: bool
        default: false
      state:
        description:
          - Whether the client should exist.
          - V(absent) deletes the client (and its service-account user); a later V(present) creates a new one, with a
            new secret unless O(secret) is given.
        type: str
        choices: [present, absent]
        default: present
  return_secret:
    description:
      - Return the client secret in RV(client_secret) (with O(clients), in each entry of RV(clients)). Use
        C(no_log) on the task.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Converge the MLflow client and read its secret
  mlops.mlflow.keycloak_oidc_client:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    redirect_uris:
      - https://mlflow.example.com/callback
    web_origins:
      - https://mlflow.example.com
    default_client_scopes: [profile, email, groups]
    return_secret: true
  register: mlflow_client
  no_log: true

- name: Two service-account clients whose access tokens are meant for MLflow, with secrets generated once
  mlops.mlflow.keycloak_oidc_client:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    clients:
      - client_id: training-pipeline
        description: Nightly training runs
        service_accounts: true
        standard_flow: false
        pkce_method: none
        default_client_scopes: [profile, groups]
        audience: mlflow
        secret: "{{ lookup('mlops.mlflow.stored_secret', secrets_dir ~ '/keycloak_client_training-pipeline_secret') }}"
      - client_id: old-pipeline
        state: absent

- name: Delete the MLflow client
  mlops.mlflow.keycloak_oidc_client:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    state: absent
"""

RETURN = r"""
client:
  description:
    - The client after the run (what it would be, in check mode), without its secret; empty when absent.
    - In check mode, a client still to be created has no C(id).
  returned: when O(client_id) is given
  type: dict
  sample:
    id: 2b7e1c4e-6a0f-4d59-8c3b-0e9a7d5f1c22
    clientId: mlflow
    publicClient: false
    redirectUris: [https://mlflow.example.com/callback]
    attributes:
      pkce.code.challenge.method: S256
default_client_scopes:
  description: Names of the client's default client scopes after the run.
  returned: when O(client_id) is given and O(state=present)
  type: list
  elements: str
  sample: [acr, basic, email, groups, profile, roles, web-origins]
secret_rotated:
  description: Whether a new client secret was generated (or would be, in check mode).
  returned: when O(client_id) is given and O(state=present)
  type: bool
  sample: false
secret_changed:
  description: Whether the client got the secret O(secret) in place of another one (or would, in check mode).
  returned: when O(client_id) is given and O(state=present)
  type: bool
  sample: false
client_secret:
  description:
    - The client secret.
    - Empty in check mode when the client does not exist yet.
  returned: when O(client_id) is given, O(return_secret=true) and O(state=present)
  type: str
  sample: vZ3r0...
clients:
  description:
    - For each entry of O(clients), in order, its C(client_id), C(changed) and what RV(client),
      RV(default_client_scopes), RV(secret_rotated), RV(secret_changed) and RV(client_secret) hold for one client.
  returned: when O(clients) is given
  type: list
  elements: dict
  sample:
    - client_id: training-pipeline
      changed: false
      client: {id: 5d0c..., clientId: training-pipeline, serviceAccountsEnabled: true}
      default_client_scopes: [acr, basic, email, groups, profile, roles, web-origins]
      secret_rotated: false
      secret_changed: false
    - client_id: old-pipeline
      changed: true
      client: {}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    find_by,
    keycloak_argument_spec,
    keycloak_module_kwargs,
    managed_view,
    merge,
    without_secrets,
)
from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak_mapper import audience_mapper_representation

# The options of one client: at the top level for one client, in each entry of `clients` for several.
CLIENT_OPTIONS = dict(
    client_id=dict(type="str", required=True),
    name=dict(type="str"),
    description=dict(type="str"),
    redirect_uris=dict(type="list", elements="str"),
    web_origins=dict(type="list", elements="str"),
    standard_flow=dict(type="bool", default=True),
    direct_access_grants=dict(type="bool", default=False),
    service_accounts=dict(type="bool", default=False),
    pkce_method=dict(type="str", choices=["S256", "plain", "none"], default="S256"),
    default_client_scopes=dict(type="list", elements="str", default=[]),
    audience=dict(type="str"),
    secret=dict(type="str", no_log=True),
    rotate_secret=dict(type="bool", default=False, no_log=False),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)
CLIENT_MUTUALLY_EXCLUSIVE = [("secret", "rotate_secret")]


def desired_client(params):
    """The managed part of the client representation."""
    desired = {
        "clientId": params["client_id"],
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "bearerOnly": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": params["standard_flow"],
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": params["direct_access_grants"],
        "serviceAccountsEnabled": params["service_accounts"],
        "attributes": {"pkce.code.challenge.method": "" if params["pkce_method"] == "none" else params["pkce_method"]},
    }
    for option, key in (
        ("name", "name"),
        ("description", "description"),
        ("redirect_uris", "redirectUris"),
        ("web_origins", "webOrigins"),
    ):
        if params[option] is not None:
            desired[key] = params[option]
    return desired


def as_read(client):
    """The client as Keycloak returned it, an absent PKCE method read as none (""): Keycloak stores no empty attribute,
    so a client without PKCE comes back without the attribute."""
    if client is None:
        return None
    attributes = dict(client.get("attributes") or {})
    attributes.setdefault("pkce.code.challenge.method", "")
    return dict(client, attributes=attributes)


def audience_mapper(audience):
    """The mapper that puts `audience` into the aud claim of the client's access tokens."""
    return audience_mapper_representation("%s-audience" % audience, audience, True, False)


def duplicates(values):
    return sorted({value for value in values if values.count(value) > 1})


class ClientConverger:
    def __init__(self, module, api):
        self.module = module
        self.api = api
        self.check_mode = module.check_mode
        self.scopes = {}

    def client_path(self, client, *parts):
        return self.api.realm_path("clients", client["id"], *parts)

    def load_scopes(self, wanted):
        """Read the realm's client scopes by name; fails naming any wanted scope that does not exist."""
        scopes = self.api.request("GET", self.api.realm_path("client-scopes")) or []
        self.scopes = {scope["name"]: scope for scope in scopes}
        missing = sorted({name for name in wanted if name not in self.scopes})
        if missing:
            self.module.fail_json(
                msg="Client scope(s) %s do not exist in realm '%s'" % (", ".join(missing), self.api.realm)
            )

    def scope_names(self, client, kind):
        if client is None:
            return []
        return sorted(scope["name"] for scope in self.api.request("GET", self.client_path(client, kind)) or [])

    def converge_scopes(self, client, wanted, current_defaults):
        """Make the wanted scopes default scopes of the client; return whether anything changed."""
        missing = [name for name in wanted if name not in current_defaults]
        if not missing or self.check_mode:
            return bool(missing)
        optional = self.scope_names(client, "optional-client-scopes")
        for name in missing:
            scope_id = self.scopes[name]["id"]
            # A scope cannot be default and optional at once.
            if name in optional:
                self.api.request("DELETE", self.client_path(client, "optional-client-scopes", scope_id))
            self.api.request("PUT", self.client_path(client, "default-client-scopes", scope_id))
        return True

    def converge_audience(self, client, mappers, audience):
        """Ensure the audience mapper; return (changed, before, after) of its managed settings.

        `mappers` are the client's protocol mappers as its representation lists them (no extra read).
        """
        desired = audience_mapper(audience)
        current = find_by(mappers, "name", desired["name"])
        if current is not None and current.get("protocolMapper") != desired["protocolMapper"]:
            self.module.fail_json(
                msg="Mapper '%s' of client '%s' exists with type %s, not %s: remove it first"
                % (desired["name"], client["clientId"], current.get("protocolMapper"), desired["protocolMapper"])
            )
        if "id" not in client:
            # Check mode, a client still to be created: its mapper would be too.
            return True, {}, managed_view(desired, desired)
        path = self.client_path(client, "protocol-mappers", "models")
        changed, after = self.api.converge(
            path, current, desired, lambda: find_by(self.api.request("GET", path) or [], "name", desired["name"])
        )
        return changed, managed_view(current, desired), managed_view(after, desired)

    def read_secret(self, client, rotate):
        if client is None:
            return ""
        if rotate:
            if self.check_mode:
                return self.read_secret(client, False)
            answer = self.api.request("POST", self.client_path(client, "client-secret"))
        else:
            answer = self.api.request("GET", self.client_path(client, "client-secret"))
        return (answer or {}).get("value") or ""

    def set_secret(self, client, secret):
        """Give an existing client the secret `secret` (Keycloak takes it in a client update)."""
        if not self.check_mode:
            representation = merge(client, {"secret": secret})
            representation.pop("protocolMappers", None)
            self.api.request("PUT", self.client_path(client), representation)

    def present(self, spec):
        """Converge one client; return its result (with the secret, which the caller drops unless asked for)."""
        desired = desired_client(spec)
        current = as_read(self.api.find_client(spec["client_id"]))
        current_defaults = self.scope_names(current, "default-client-scopes")

        # A new client gets its given secret with its creation. Keycloak keeps the secret when an update carries
        # none, and ignores mappers sent with it.
        created = dict(desired, secret=spec["secret"]) if current is None and spec["secret"] else desired
        client_changed, after = self.api.converge(
            self.api.realm_path("clients"),
            current,
            created,
            lambda: self.api.find_client(spec["client_id"]),
            keep_out=("secret", "protocolMappers"),
        )
        exists = "id" in after
        if current is None and exists:
            current_defaults = self.scope_names(after, "default-client-scopes")

        wanted_scopes = spec["default_client_scopes"]
        scopes_changed = self.converge_scopes(after if exists else None, wanted_scopes, current_defaults)
        defaults_after = sorted(set(current_defaults) | set(spec["default_client_scopes"]))
        before_view = dict(managed_view(current, desired), defaultClientScopes=current_defaults if current else [])
        after_view = dict(managed_view(after, desired), defaultClientScopes=defaults_after)

        audience_changed = False
        if spec["audience"]:
            # An update does not change the mappers: the representation read before it lists them.
            mappers = (current if current is not None else after).get("protocolMappers") or []
            audience_changed, before_view["audienceMapper"], after_view["audienceMapper"] = self.converge_audience(
                after, mappers, spec["audience"]
            )

        rotate = spec["rotate_secret"] and current is not None
        secret = self.read_secret(after if exists else None, rotate)
        secret_changed = bool(spec["secret"]) and current is not None and secret != spec["secret"]
        if secret_changed:
            self.set_secret(after, spec["secret"])
            secret = spec["secret"]
            # Never the value: only that it changes.
            before_view["secret"], after_view["secret"] = "(another secret)", "(the given secret)"

        return dict(
            changed=client_changed or scopes_changed or audience_changed or rotate or secret_changed,
            client=without_secrets(after),
            default_client_scopes=defaults_after,
            secret_rotated=rotate,
            secret_changed=secret_changed,
            client_secret=secret,
            diff=dict(before=before_view, after=after_view),
        )

    def absent(self, spec):
        desired = desired_client(spec)
        current = as_read(self.api.find_client(spec["client_id"]))
        changed = self.api.delete(self.api.realm_path("clients"), current)
        return dict(changed=changed, client={}, diff=dict(before=managed_view(current, desired), after={}))

    def converge(self, spec):
        return self.present(spec) if spec["state"] == "present" else self.absent(spec)


def main():
    options = dict(CLIENT_OPTIONS)
    # At the top level client_id is not required: clients may name the clients instead.
    options["client_id"] = dict(type="str")
    options["clients"] = dict(
        type="list", elements="dict", options=CLIENT_OPTIONS, mutually_exclusive=CLIENT_MUTUALLY_EXCLUSIVE
    )
    options["return_secret"] = dict(type="bool", default=False, no_log=False)
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(**options),
        **keycloak_module_kwargs(
            required_one_of=[("client_id", "clients")],
            # With clients, each entry carries its own options.
            mutually_exclusive=[("clients", option) for option in CLIENT_OPTIONS] + CLIENT_MUTUALLY_EXCLUSIVE,
        ),
    )
    params = module.params
    specs = params["clients"] if params["clients"] is not None else [{key: params[key] for key in CLIENT_OPTIONS}]
    twice = duplicates([spec["client_id"] for spec in specs])
    if twice:
        module.fail_json(msg="Client(s) %s are listed more than once in clients" % ", ".join(twice))

    api = KeycloakApi(module)
    api.require_realm()
    converger = ClientConverger(module, api)
    present = [spec for spec in specs if spec["state"] == "present"]
    # Every client's scopes are checked before anything changes.
    if present:
        converger.load_scopes([name for spec in present for name in spec["default_client_scopes"]])
    results = [converger.converge(spec) for spec in specs]

    for result in results:
        if not params["return_secret"]:
            result.pop("client_secret", None)
    if params["clients"] is None:
        module.exit_json(**results[0])
    module.exit_json(
        changed=any(result["changed"] for result in results),
        clients=[
            dict({key: value for key, value in result.items() if key != "diff"}, client_id=spec["client_id"])
            for spec, result in zip(specs, results)
        ],
        diff=dict(
            before={spec["client_id"]: result["diff"]["before"] for spec, result in zip(specs, results)},
            after={spec["client_id"]: result["diff"]["after"] for spec, result in zip(specs, results)},
        ),
    )


if __name__ == "__main__":
    main()
