# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: stored_secret
short_description: A secret generated once into a file, then read back on every run
version_added: 0.1.0
description:
  - Returns the content of each file named in the terms. A file that does not exist yet gets a new random secret of
    letters and digits, written with mode C(0600) (its directory, when made, C(0700)), so every later run reads back
    the same value.
  - In check mode nothing is written, and a missing file gives the placeholder C(not-generated-in-check-mode). A
    file left behind by a dry run would be a secret no service knows yet (the next real run would set it, and a
    running client would lose its login).
  - Runs on the controller, like M(ansible.builtin.set_fact) lookups do. The files of an existing deployment made by
    C(ansible.builtin.password) (same format, one line) are read as they are.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  _terms:
    description: Paths of the secret files.
    type: list
    elements: path
    required: true
  length:
    description: Number of characters of a new secret.
    type: int
    default: 32
"""

EXAMPLES = r"""
- name: Generate the owner's password once, then reuse it
  ansible.builtin.set_fact:
    owner_password: "{{ lookup('mlops.mlflow.stored_secret', secrets_dir ~ '/owner_password') }}"
  no_log: true

- name: A longer key
  ansible.builtin.set_fact:
    secret_key: "{{ lookup('mlops.mlflow.stored_secret', secrets_dir ~ '/secret_key', length=64) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The secret of each file, or C(not-generated-in-check-mode) for a missing file in check mode.
  type: list
  elements: str
"""

import os
import secrets
import string

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

CHECK_MODE_PLACEHOLDER = "not-generated-in-check-mode"
ALPHABET = string.ascii_letters + string.digits


def read_or_create(path: str, length: int, check_mode: bool) -> str:
    """The secret stored at `path`; a new one is written first when there is none (never in check mode)."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as stored:
            return stored.read().strip()
    if check_mode:
        return CHECK_MODE_PLACEHOLDER
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    value = "".join(map(secrets.choice, [ALPHABET] * length))
    # O_EXCL: two runs at once never overwrite each other's secret; the loser reads the winner's.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_or_create(path, length, check_mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stored:
        stored.write(value + "\n")
    return value


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        length = self.get_option("length")
        if length < 16:
            raise AnsibleLookupError(f"stored_secret: length is {length}; a secret needs 16 characters or more.")
        check_mode = bool((variables or {}).get("ansible_check_mode", False))
        try:
            return [read_or_create(str(path), length, check_mode) for path in terms]
        except OSError as error:
            raise AnsibleLookupError(f"stored_secret: cannot read or write {error.filename}: {error.strerror}.") from None
