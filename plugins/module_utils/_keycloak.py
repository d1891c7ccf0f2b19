# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared connection options, admin REST client and comparison helpers for the keycloak_* modules."""

from __future__ import annotations

import json
import time
import traceback
from urllib.parse import quote

from ansible.module_utils.basic import missing_required_lib

KEYCLOAK_IMPORT_ERROR = None
try:
    import requests
    from keycloak import KeycloakOpenIDConnection
    from keycloak.exceptions import KeycloakConnectionError, KeycloakError
except ImportError:
    KEYCLOAK_IMPORT_ERROR = traceback.format_exc()

KEYCLOAK_ARGUMENT_SPEC = dict(
    auth_keycloak_url=dict(type="str", required=True, no_log=False),
    auth_realm=dict(type="str", default="master"),
    realm=dict(type="str", required=True),
    auth_username=dict(type="str"),
    auth_password=dict(type="str", no_log=True),
    auth_client_id=dict(type="str", default="admin-cli"),
    auth_client_secret=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", default=True),
    connection_timeout=dict(type="int", default=10),
)
KEYCLOAK_REQUIRED_ONE_OF = [("auth_username", "auth_client_secret")]
KEYCLOAK_REQUIRED_TOGETHER = [("auth_username", "auth_password")]
KEYCLOAK_MUTUALLY_EXCLUSIVE = [("auth_username", "auth_client_secret")]

# Keys of a client representation that must never reach module output.
SECRET_KEYS = frozenset(("secret", "credentials"))

# Reads (and the admin login) are tried again when Keycloak is briefly unavailable: it refuses connections while it
# restarts, and a reverse proxy in front of it answers 502-504 meanwhile. Pauses between attempts, in seconds; no
# attempt starts later than RETRY_BUDGET seconds after the first.
RETRY_DELAYS = (0.5, 1, 2, 4)
RETRY_BUDGET = 10
RETRY_STATUSES = frozenset((502, 503, 504))


def keycloak_argument_spec(**module_options):
    """The shared connection options plus the module's own."""
    spec = dict(KEYCLOAK_ARGUMENT_SPEC)
    spec.update(module_options)
    return spec


def keycloak_module_kwargs(required_one_of=(), required_together=(), mutually_exclusive=()):
    """AnsibleModule keyword arguments that every keycloak_* module shares, plus the module's own constraints."""
    return dict(
        required_one_of=KEYCLOAK_REQUIRED_ONE_OF + list(required_one_of),
        required_together=KEYCLOAK_REQUIRED_TOGETHER + list(required_together),
        mutually_exclusive=KEYCLOAK_MUTUALLY_EXCLUSIVE + list(mutually_exclusive),
        supports_check_mode=True,
    )


def bool_string(value):
    """Keycloak stores mapper and client attributes as the strings 'true' / 'false'."""
    return "true" if value else "false"


def differs(current, desired):
    """True when `desired` is not contained in `current`.

    Dicts are compared on the keys of `desired` only (Keycloak adds many of its own); lists are compared
    as sets, because Keycloak does not keep the order of redirect URIs and web origins.
    """
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(differs(current.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(current, list):
            return True
        return sorted(map(str, current)) != sorted(map(str, desired))
    return current != desired


def merge(current, desired):
    """`current` updated with `desired`, nested dicts merged key by key (what gets PUT back)."""
    merged = dict(current)
    for key, value in desired.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def managed_view(representation, desired):
    """The part of `representation` that a module manages (the keys of `desired`), for diff output."""
    if representation is None:
        return {}
    view = {}
    for key, value in desired.items():
        if key in SECRET_KEYS:
            continue
        current = representation.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            view[key] = {sub: current.get(sub) for sub in value}
        elif isinstance(current, list):
            view[key] = sorted(current, key=str)
        else:
            view[key] = current
    return view


def without_secrets(representation):
    """A copy of a representation without its secret keys, safe to return."""
    if representation is None:
        return None
    return {key: value for key, value in representation.items() if key not in SECRET_KEYS}


def group_mapper_representation(name, claim_name, full_path, id_token, access_token, userinfo):
    """The protocol mapper that puts a user's groups into a claim."""
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-group-membership-mapper",
        "config": {
            "claim.name": claim_name,
            "full.path": bool_string(full_path),
            "id.token.claim": bool_string(id_token),
            "access.token.claim": bool_string(access_token),
            "userinfo.token.claim": bool_string(userinfo),
        },
    }


def find_by(items, key, value):
    """The first item whose `key` equals `value`, or None."""
    for item in items:
        if item.get(key) == value:
            return item
    return None


def token_error_message(status, body, url, who, auth_realm):
    """A one-line explanation of a refused admin login."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    reason = answer.get("error_description") or answer.get("error") or body
    # Keycloak answers a wrong password with 400 invalid_grant and a wrong client secret with 401 invalid_client.
    if status == 401 or answer.get("error") in ("invalid_grant", "invalid_client", "unauthorized_client"):
        return "Keycloak at %s refused the credentials of %s in realm '%s' (HTTP %s: %s): check them" % (
            url,
            who,
            auth_realm,
            status,
            reason,
        )
    if status == 404:
        return "Keycloak at %s has no realm '%s' to log in to (HTTP 404): check auth_realm" % (url, auth_realm)
    return "Keycloak at %s refused the admin login of %s in realm '%s' (HTTP %s: %s)" % (
        url,
        who,
        auth_realm,
        status,
        reason,
    )


def connection_error_message(url, timeout, error):
    """A one-line explanation of a server that does not answer."""
    # python-keycloak wraps the requests exception, which holds the reason.
    text = str(error.__cause__ or error)
    if "timed out" in text.lower() or "timeout" in text.lower():
        reason = "no answer within %d s" % timeout
    elif "refused" in text.lower():
        reason = "connection refused"
    else:
        reason = text.splitlines()[0] if text else type(error).__name__
    return "Cannot reach Keycloak at %s (%s): is it running, and is auth_keycloak_url right?" % (url, reason)


def retrying(attempt, is_transient, delays=RETRY_DELAYS, budget=RETRY_BUDGET, clock=time.monotonic, sleep=time.sleep):
    """Return the outcome of attempt(), calling it again after each of `delays` while is_transient(outcome) holds.

    `attempt` returns its outcome (a response, or the error it met) instead of raising. No attempt starts more than
    `budget` seconds after the first; the last outcome is returned as it is, transient or not.
    """
    deadline = clock() + budget
    outcome = attempt()
    for delay in delays:
        if not is_transient(outcome) or clock() + delay > deadline:
            break
        sleep(delay)
        outcome = attempt()
    return outcome


def transient(outcome):
    """Whether an outcome of a Keycloak call may go away by itself: no connection, or a proxy's 502/503/504."""
    if isinstance(outcome, KeycloakConnectionError):
        cause = outcome.__cause__
        # A TLS failure is a configuration problem, not an outage.
        return isinstance(cause, (requests.ConnectionError, requests.Timeout)) and not isinstance(
            cause, requests.exceptions.SSLError
        )
    if isinstance(outcome, KeycloakError):
        return outcome.response_code in RETRY_STATUSES
    return getattr(outcome, "status_code", None) in RETRY_STATUSES


def _outcome(function, *args, **kwargs):
    """function(*args, **kwargs), or the KeycloakError it raised."""
    try:
        return function(*args, **kwargs)
    except KeycloakError as error:
        return error


def _decode(content):
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return str(content)


class KeycloakApi:
    """An authenticated client of Keycloak's admin REST API for one target realm.

    Every failure ends the module with a one-line message: no tracebacks.
    """

    def __init__(self, module):
        if KEYCLOAK_IMPORT_ERROR:
            module.fail_json(msg=missing_required_lib("python-keycloak"), exception=KEYCLOAK_IMPORT_ERROR)
        self.module = module
        params = module.params
        # An empty name would address the list of realms (admin/realms/) instead of one realm.
        for option in ("realm", "auth_realm"):
            if not params[option].strip():
                module.fail_json(msg="%s is empty: set it to the name of a Keycloak realm" % option)
        self.url = params["auth_keycloak_url"].rstrip("/")
        self.realm = params["realm"]
        self.timeout = params["connection_timeout"]
        self.connection = KeycloakOpenIDConnection(
            server_url=self.url,
            username=params["auth_username"],
            password=params["auth_password"],
            realm_name=params["auth_realm"],
            user_realm_name=params["auth_realm"],
            client_id=params["auth_client_id"],
            client_secret_key=params["auth_client_secret"],
            verify=params["validate_certs"],
            timeout=self.timeout,
            # Fail in seconds when the server is down instead of retrying.
            max_retries=0,
        )
        self._login()

    def _login(self):
        # Asking for a token changes nothing the modules manage: it is retried like a read.
        self._fail_for_error(retrying(lambda: _outcome(self.connection.get_token), transient))

    def _fail_for_error(self, outcome):
        """End the module with one line when `outcome` is an error (a refused login or no connection)."""
        if isinstance(outcome, KeycloakConnectionError):
            self.module.fail_json(msg=connection_error_message(self.url, self.timeout, outcome))
        if isinstance(outcome, KeycloakError):
            params = self.module.params
            if params["auth_username"]:
                who = "user '%s'" % params["auth_username"]
            else:
                who = "client '%s'" % params["auth_client_id"]
            self.module.fail_json(
                msg=token_error_message(
                    outcome.response_code, _decode(outcome.error_message), self.url, who, params["auth_realm"]
                )
            )

    def realm_path(self, *parts):
        """admin/realms/<realm>/<parts...>, each part URL-quoted."""
        return "/".join(["admin", "realms", quote(self.realm, safe="")] + [quote(str(part), safe="") for part in parts])

    def request(self, method, path, payload=None, query=None, missing_ok=False):
        """Call the admin API; return the decoded JSON (None for no content or a tolerated 404)."""
        full_path = "%s/%s" % (self.url, path)
        kwargs = dict(query or {})
        # python-keycloak renews an expired admin token inside these calls: that login may fail too.
        if method == "GET":
            response = retrying(lambda: _outcome(self.connection.raw_get, full_path, **kwargs), transient)
        elif method == "POST":
            response = _outcome(self.connection.raw_post, full_path, data=self._json(payload), **kwargs)
        elif method == "PUT":
            response = _outcome(self.connection.raw_put, full_path, data=self._json(payload), **kwargs)
        else:
            response = _outcome(self.connection.raw_delete, full_path, **kwargs)
        self._fail_for_error(response)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            self.module.fail_json(
                msg="Keycloak at %s answered HTTP %s to %s %s: %s"
                % (self.url, response.status_code, method, path, response.text[:500])
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    @staticmethod
    def _json(payload):
        return json.dumps(payload if payload is not None else {})

    def require_realm(self):
        """Fail with a clear message when the target realm does not exist."""
        if self.request("GET", self.realm_path(), missing_ok=True) is None:
            self.module.fail_json(msg="Realm '%s' does not exist on Keycloak at %s" % (self.realm, self.url))

    def converge(self, collection_path, current, desired, reread, keep_out=()):
        """Create, update or keep one object of an admin API collection; return (changed, after).

        A missing object is POSTed to `collection_path` and read back with `reread()`; a differing one gets
        `current` merged with `desired` PUT to its item path, without the keys in `keep_out`. In check mode
        nothing is sent and `after` is what the object would become.
        """
        if current is None:
            if self.module.check_mode:
                return True, desired
            self.request("POST", collection_path, desired)
            return True, reread()
        if not differs(current, desired):
            return False, current
        after = merge(current, desired)
        for key in keep_out:
            after.pop(key, None)
        if not self.module.check_mode:
            self.request("PUT", "%s/%s" % (collection_path, quote(str(current["id"]), safe="")), after)
        return True, after

    def delete(self, collection_path, current):
        """Delete `current` from `collection_path` when it exists (not in check mode); return whether it existed."""
        if current is not None and not self.module.check_mode:
            self.request("DELETE", "%s/%s" % (collection_path, quote(str(current["id"]), safe="")))
        return current is not None

    def find_client(self, client_id):
        """The client whose clientId is `client_id`, or None."""
        clients = self.request("GET", self.realm_path("clients"), query={"clientId": client_id})
        return find_by(clients or [], "clientId", client_id)

    def find_client_scope(self, name):
        """The client scope called `name`, or None."""
        return find_by(self.request("GET", self.realm_path("client-scopes")) or [], "name", name)

    def find_top_level_group(self, name):
        """The top-level group called `name` as {id, name, path}, or None."""
        groups = self.request("GET", self.realm_path("groups"), query={"search": name, "exact": "true"}) or []
        for group in groups:
            if group.get("name") == name and group.get("path") == "/" + name:
                return {"id": group["id"], "name": group["name"], "path": group["path"]}
        return None
