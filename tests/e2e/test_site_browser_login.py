"""A real browser on the deployed MLflow: log in through Keycloak, land in the MLflow UI, create an access key.

Playwright drives Debian's Chromium (never a browser Playwright downloads). Screenshots go to tests/output/e2e/.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.ansible_runner import REPO_ROOT
from tests.stack_layout import SECRETS_DIR
from tests.conftest import MLFLOW_URL, http_status

pytestmark = pytest.mark.e2e

USER = "demo-user"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "tests" / "output" / "e2e"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed with apt when missing; the test is skipped only if that fails."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=600, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, timeout=1200, capture_output=True)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install -y chromium` could not install it")
    return CHROMIUM


def log_in_through_keycloak(page: Page, password: str) -> None:
    page.goto(MLFLOW_URL)
    page.get_by_role("link", name="Login with Keycloak").click()
    page.locator("#kc-form-login").wait_for()
    page.fill("#username", USER)
    page.fill("#password", password)
    page.click("#kc-login")
    page.wait_for_url(f"{MLFLOW_URL}/oidc/ui/user")


def create_access_key(page: Page, name: str) -> str:
    """Permissions > Tokens > Create token: the dialog shows the new key once."""
    page.get_by_role("link", name="Permissions").click()
    page.get_by_role("link", name="Tokens").click()
    page.get_by_role("button", name="Create token").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create token").last.click()
    page.get_by_text(f'Token "{name}" created').first.wait_for()
    return page.get_by_label("Token", exact=True).input_value()


def delete_access_key(page: Page, name: str) -> None:
    """With the browser's session, as the trash icon of the Tokens page does."""
    tokens = page.request.get(f"{MLFLOW_URL}/api/2.0/mlflow/users/current/tokens").json()["tokens"]
    for token in tokens:
        if token["name"] == name:
            assert page.request.delete(f"{MLFLOW_URL}/api/2.0/mlflow/users/current/tokens/{token['id']}").ok


def test_browser_logs_in_through_keycloak_and_creates_an_access_key(chromium, deployed_mlflow):
    password = (SECRETS_DIR / f"keycloak_user_{USER}_password").read_text(encoding="utf-8").strip()
    key_name = f"browser-{uuid.uuid4().hex[:10]}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            try:
                log_in_through_keycloak(page, password)

                # From the permissions page login lands on, into MLflow's own UI, signed in as the user.
                page.get_by_role("link", name="MLFlow").first.click()
                page.get_by_role("link", name="Experiments").first.click()
                page.wait_for_url(re.compile(rf"^{re.escape(MLFLOW_URL)}/#/experiments"))
                page.get_by_role("heading", name="Experiments").wait_for()
                page.get_by_role("button", name="Create").first.wait_for()
                page.get_by_text("Demo User").first.wait_for()
                page.screenshot(path=SCREENSHOTS / "mlflow-ui.png")

                key = create_access_key(page, key_name)
                page.screenshot(path=SCREENSHOTS / "access-key.png")
                assert key.startswith("mlf_"), f"the dialog shows {key[:8]}..., not an access key"

                # The account the login is bound to (an account older than preferred_username keeps its e-mail key).
                account = page.request.get(f"{MLFLOW_URL}/auth/status").json()["username"]
                basic = base64.b64encode(f"{account}:{key}".encode()).decode()
                status = http_status(
                    f"{MLFLOW_URL}/api/2.0/mlflow/experiments/search?max_results=1", {"Authorization": f"Basic {basic}"}
                )
                assert status == 200, f"the new access key gets HTTP {status} from the API"
            except Exception:
                page.screenshot(path=SCREENSHOTS / "failure.png")
                raise
            finally:
                delete_access_key(page, key_name)
        finally:
            browser.close()
