# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Check mode and diff support shared by the modules that converge a remote object.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Reports the change it would make without making it.
    support: full
  diff_mode:
    description: Returns the managed settings before and after the change (never a secret).
    support: full
"""
