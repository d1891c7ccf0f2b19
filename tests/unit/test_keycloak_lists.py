"""The list forms of keycloak_user and keycloak_group_members: what each run plans and looks up (pure logic)."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.modules.keycloak_group_members import UserIds, plan
from ansible_collections.mlops.mlflow.plugins.modules.keycloak_user import check_entries

pytestmark = pytest.mark.unit


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, **params):
        self.params = params

    def fail_json(self, msg):
        raise Failed(msg)


class FakeApi:
    """Keycloak's answers for groups (name -> member user names) and users (name -> id); counts user lookups."""

    realm = "mlflow"

    def __init__(self, groups, users):
        self.groups = groups
        self.users = users
        self.lookups = []
        self.module = FakeModule()

    def realm_path(self, *parts):
        return "/".join(parts)

    def find_top_level_group(self, name):
        return {"id": "id-" + name, "name": name, "path": "/" + name} if name in self.groups else None

    def request(self, method, path, query=None):
        assert method == "GET"
        if path.endswith("/members"):
            group = path.split("/")[1][len("id-"):]
            return [{"id": self.users[user], "username": user} for user in self.groups[group]]
        self.lookups.append(query["username"])
        user = query["username"]
        return [{"id": self.users[user], "username": user}] if user in self.users else []


USERS = {"alice": "1", "bob": "2", "carol": "3"}


def test_a_run_with_nothing_to_change_looks_no_user_up():
    api = FakeApi({"admins": ["alice"], "users": ["bob", "carol"]}, USERS)
    ids = UserIds(api)
    for name, members in (("admins", ["alice"]), ("users", ["Bob", "carol"])):
        _group, _current, to_add, to_remove, missing = plan(api, ids, name, members, "exact")
        assert (to_add, to_remove, missing) == ({}, {}, [])
    assert api.lookups == []


def test_exact_removes_the_unlisted_members_and_present_keeps_them():
    api = FakeApi({"users": ["bob", "carol"]}, USERS)
    assert plan(api, UserIds(api), "users", ["alice", "bob"], "exact")[2:] == ({"alice": "1"}, {"carol": "3"}, [])
    assert plan(api, UserIds(api), "users", ["alice", "bob"], "present")[2:] == ({"alice": "1"}, {}, [])


def test_absent_removes_only_members_and_looks_nobody_up():
    api = FakeApi({"users": ["bob"]}, USERS)
    assert plan(api, UserIds(api), "users", ["bob", "alice", "nosuchuser"], "absent")[2:] == ({}, {"bob": "2"}, [])
    assert api.lookups == []


def test_missing_users_are_reported_and_each_user_is_looked_up_once():
    api = FakeApi({"admins": [], "users": []}, USERS)
    ids = UserIds(api)
    assert plan(api, ids, "admins", ["alice", "nosuchuser"], "present")[4] == ["nosuchuser"]
    assert plan(api, ids, "users", ["alice", "nosuchuser"], "present")[4] == ["nosuchuser"]
    assert sorted(api.lookups) == ["alice", "nosuchuser"]


def test_a_missing_group_is_named():
    api = FakeApi({}, USERS)
    with pytest.raises(Failed, match="^Group 'admins' does not exist in realm 'mlflow'$"):
        plan(api, UserIds(api), "admins", ["alice"], "present")


def user(name, password=None):
    return {"username": name, "password": password}


def test_a_user_listed_twice_is_refused_whatever_the_case():
    module = FakeModule(users=[user("alice"), user("Alice"), user("bob")], update_password="on_create")
    with pytest.raises(Failed, match="^User\\(s\\) alice are listed more than once in users$"):
        check_entries(module)


def test_update_password_always_names_the_users_without_one():
    module = FakeModule(users=[user("alice", "pw"), user("bob"), user("carol")], update_password="always")
    with pytest.raises(Failed, match="^update_password=always needs a password for every user; missing for bob, carol$"):
        check_entries(module)
    check_entries(FakeModule(users=[user("bob")], update_password="on_create"))
