# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared connection options, admin REST client and comparison helpers for the keycloak_* modules."""

from __future__ import annotations

import json
import ssl
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import HTTPSHandler, Request, build_opener

# The admin API is JSON over HTTP: the standard library's client does it, and every module run imports it in 0.02 s
# where python-keycloak took 0.2 s (requests or ansible.module_utils.urls 0.07 s).

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
    """A one-line explanation of a server that does not answer (`error`: the Unreachable outcome)."""
    if error.tls:
        return "Keycloak at %s failed the TLS handshake (%s): check its certificate, or validate_certs" % (
            url,
            error.reason,
        )
    text = error.reason.lower()
    if "timed out" in text or "timeout" in text:
        reason = "no answer within %d s" % timeout
    elif "refused" in text:
        reason = "connection refused"
    else:
        reason = error.reason
    return "Cannot reach Keycloak at %s (%s): is it running, and is auth_keycloak_url right?" % (url, reason)


def retrying(attempt, is_transient, delays=RETRY_DELAYS, budget=RETRY_BUDGET, clock=time.monotonic, sleep=time.sleep):
    """Return the outcome of attempt(), calling it again after each of `delays` while is_transient(outcome) holds.

    `attempt` returns its outcome (an Answer or Unreachable) instead of raising. No attempt starts more than
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
    if isinstance(outcome, Unreachable):
        # A TLS failure or an unusable URL is a configuration problem, not an outage.
        return outcome.network and not outcome.tls
    return outcome.status in RETRY_STATUSES


class Answer:
    """An HTTP answer of Keycloak, whatever its status."""

    def __init__(self, status, body):
        self.status = status
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Unreachable:
    """No answer: the connection failed, timed out or was closed, TLS failed, or the URL is unusable (`error` is
    what was raised)."""

    def __init__(self, error):
        self.error = error

    @property
    def _cause(self):
        # urllib wraps what failed before the request was sent in a URLError; a failure while waiting for the
        # answer (a timeout, a closed connection) comes as it is.
        return self.error.reason if isinstance(self.error, URLError) else self.error

    @property
    def network(self):
        return isinstance(self._cause, (OSError, HTTPException))

    @property
    def tls(self):
        # A connection closed during the handshake (SSLEOFError) is an outage like any closed connection.
        return isinstance(self._cause, ssl.SSLError) and not isinstance(self._cause, ssl.SSLEOFError)

    @property
    def reason(self):
        text = str(self._cause).strip()
        return text.splitlines()[0] if text else type(self._cause).__name__


def _json_or_none(body):
    """The decoded JSON of a body, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _tls_context(validate_certs):
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class KeycloakApi:
    """An authenticated client of Keycloak's admin REST API for one target realm.

    Every failure ends the module with a one-line message: no tracebacks.
    """

    def __init__(self, module):
        self.module = module
        params = module.params
        # An empty name would address the list of realms (admin/realms/) instead of one realm.
        for option in ("realm", "auth_realm"):
            if not params[option].strip():
                module.fail_json(msg="%s is empty: set it to the name of a Keycloak realm" % option)
        self.url = params["auth_keycloak_url"].rstrip("/")
        # urllib would also open file: and ftp: URLs.
        if urlsplit(self.url).scheme not in ("http", "https"):
            module.fail_json(msg="auth_keycloak_url %s is not an http:// or https:// URL" % self.url)
        self.realm = params["realm"]
        self.timeout = params["connection_timeout"]
        # Proxies from the environment and redirects as requests handled them (the default handlers).
        self._opener = build_opener(HTTPSHandler(context=_tls_context(params["validate_certs"])))
        self._token = None
        self._login()

    def _send(self, method, url, body=None, content_type=None):
        """One HTTP exchange: its Answer, or Unreachable."""
        request = Request(url, data=body, method=method, headers={"Accept": "application/json"})
        if content_type:
            request.add_header("Content-Type", content_type)
        if self._token:
            # Unredirected: the token is not sent on to wherever a redirect points.
            request.add_unredirected_header("Authorization", "Bearer " + self._token)
        try:
            try:
                response = self._opener.open(request, timeout=self.timeout)
            except HTTPError as error:
                # An answer all the same, with a status of 400 or more.
                response = error
            try:
                return Answer(response.status, response.read())
            finally:
                response.close()
        except (OSError, HTTPException, ValueError) as error:
            # ValueError: a URL that urllib cannot use (a port that is not a number).
            return Unreachable(error)

    def _login(self):
        """Get an admin access token: password grant for auth_username, client credentials for auth_client_secret."""
        params = self.module.params
        form = dict(client_id=params["auth_client_id"])
        if params["auth_username"]:
            form.update(grant_type="password", username=params["auth_username"], password=params["auth_password"])
            who = "user '%s'" % params["auth_username"]
        else:
            form.update(grant_type="client_credentials", client_secret=params["auth_client_secret"])
            who = "client '%s'" % params["auth_client_id"]
        url = "%s/realms/%s/protocol/openid-connect/token" % (self.url, quote(params["auth_realm"], safe=""))
        # The token endpoint is sent no bearer token, not even the expired one.
        self._token = None
        # Asking for a token changes nothing the modules manage: it is retried like a read.
        answer = retrying(
            lambda: self._send("POST", url, urlencode(form).encode(), "application/x-www-form-urlencoded"), transient
        )
        self._fail_if_unreachable(answer)
        if answer.status != 200:
            self.module.fail_json(
                msg=token_error_message(answer.status, answer.text, self.url, who, params["auth_realm"])
            )
        token = _json_or_none(answer.body)
        if not isinstance(token, dict) or not token.get("access_token"):
            self.module.fail_json(msg="Keycloak at %s answered the admin login without an access token" % self.url)
        self._token = token["access_token"]

    def _fail_if_unreachable(self, outcome):
        if isinstance(outcome, Unreachable):
            self.module.fail_json(msg=connection_error_message(self.url, self.timeout, outcome))

    def realm_path(self, *parts):
        """admin/realms/<realm>/<parts...>, each part URL-quoted."""
        return "/".join(["admin", "realms", quote(self.realm, safe="")] + [quote(str(part), safe="") for part in parts])

    def request(self, method, path, payload=None, query=None, missing_ok=False):
        """Call the admin API; return the decoded JSON (None for no content or a tolerated 404)."""
        url = "%s/%s" % (self.url, path)
        if query:
            url += "?" + urlencode(query)
        body = None
        if method in ("POST", "PUT"):
            body = json.dumps(payload if payload is not None else {}).encode()
        answer = self._call(method, url, body)
        if answer.status == 404 and missing_ok:
            return None
        # A redirect that urllib does not follow (a POST answered 307) is no success either.
        if not 200 <= answer.status < 300:
            self.module.fail_json(
                msg="Keycloak at %s answered HTTP %s to %s %s: %s"
                % (self.url, answer.status, method, path, answer.text[:500])
            )
        return _json_or_none(answer.body)

    def _call(self, method, url, body):
        """The Answer to one admin API request, after a new login on a 401; the module fails when unreachable."""
        content_type = "application/json" if body is not None else None

        def send():
            return self._send(method, url, body, content_type)

        def exchange():
            # Only reads are sent again after an outage: a write whose answer was lost may have been applied.
            return retrying(send, transient) if method == "GET" else send()

        answer = exchange()
        if isinstance(answer, Answer) and answer.status == 401:
            # The admin token expired during the run (master's live 60 s): log in again and send the request once
            # more, as python-keycloak did.
            self._login()
            answer = exchange()
        self._fail_if_unreachable(answer)
        return answer

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
