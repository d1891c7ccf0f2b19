# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Protocol mappers on a client scope or a client: what the keycloak_*_mapper modules share."""

from __future__ import annotations

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    bool_string,
    find_by,
    keycloak_argument_spec,
    keycloak_module_kwargs,
    managed_view,
)

# Where a mapper lives and whether it should exist; the module adds the options of its mapper type.
MAPPER_OWNER_OPTIONS = dict(
    name=dict(type="str", required=True),
    client_scope=dict(type="str"),
    client_id=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


def mapper_argument_spec(**mapper_options):
    """The connection options, the owner options and the options of one mapper type."""
    return keycloak_argument_spec(**dict(MAPPER_OWNER_OPTIONS, **mapper_options))


def mapper_module_kwargs():
    return keycloak_module_kwargs(
        required_one_of=[("client_scope", "client_id")], mutually_exclusive=[("client_scope", "client_id")]
    )


def mapper_owner_path(api, params):
    """The admin path of the client scope or client that holds the mapper."""
    if params["client_scope"]:
        scope = api.find_client_scope(params["client_scope"])
        if scope is None:
            api.module.fail_json(
                msg="Client scope '%s' does not exist in realm '%s'" % (params["client_scope"], api.realm)
            )
        return ("client-scopes", scope["id"])
    client = api.find_client(params["client_id"])
    if client is None:
        api.module.fail_json(msg="Client '%s' does not exist in realm '%s'" % (params["client_id"], api.realm))
    return ("clients", client["id"])


def converge_mapper(module, desired):
    """Create, repair, keep or delete the mapper `desired` (a protocol-mapper representation), then exit.

    Works through Keycloak's protocol-mapper endpoints, because Keycloak ignores mappers sent inside a client or
    client-scope update. Only the settings in `desired` are compared; a mapper of another type with the same name
    is an error, not something to overwrite.
    """
    params = module.params
    api = KeycloakApi(module)
    api.require_realm()
    models_path = api.realm_path(*mapper_owner_path(api, params)) + "/protocol-mappers/models"
    current = find_by(api.request("GET", models_path) or [], "name", params["name"])

    if params["state"] == "absent":
        changed = api.delete(models_path, current)
        module.exit_json(changed=changed, mapper={}, diff=dict(before=managed_view(current, desired), after={}))

    if current is not None and current.get("protocolMapper") != desired["protocolMapper"]:
        module.fail_json(
            msg="Mapper '%s' exists with type %s, not %s: remove it first"
            % (params["name"], current.get("protocolMapper"), desired["protocolMapper"])
        )

    changed, after = api.converge(
        models_path, current, desired, lambda: find_by(api.request("GET", models_path) or [], "name", params["name"])
    )
    module.exit_json(
        changed=changed,
        mapper=after,
        diff=dict(before=managed_view(current, desired), after=managed_view(after, desired)),
    )


def audience_mapper_representation(name, audience, access_token, id_token):
    """The protocol mapper that adds a client to the audience (aud) of the tokens."""
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.client.audience": audience,
            "access.token.claim": bool_string(access_token),
            "id.token.claim": bool_string(id_token),
            "introspection.token.claim": "true",
        },
    }
