"""The docs site served by dbt_docs, opened in headless Chromium (Debian's `chromium`, installed by
tests/install_chromium.sh): the page and its lineage view render. The screenshot is kept in tests/.artifacts/."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, error, free_port, ok, stdio_session

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "tests" / ".artifacts"


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed (tests/install_chromium.sh installs it)"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                           "--virtual-time-budget=15000", *args], capture_output=True, text=True, timeout=timeout)


async def test_docs_site_served_and_rendered_in_chromium(shop: Path, data_dir: Path) -> None:
    port = free_port()
    async with stdio_session(shop, data_dir) as client:
        assert error(await client.call_tool("dbt_docs", {"generate": False, "serve": True, "port": port}))["code"] == "docs_not_generated"
        served = ok(await client.call_tool("dbt_docs", {"serve": True, "port": port}))
        url = served["extra"]["url"]
        assert url == f"http://127.0.0.1:{port}/" and served["success"]
        with urllib.request.urlopen(url + "manifest.json", timeout=10) as response:
            assert b"model.shop.fct_orders" in response.read()
        page = url + "#!/model/model.shop.fct_orders"
        ARTIFACTS.mkdir(exist_ok=True)
        shot, lineage_shot = ARTIFACTS / "docs_fct_orders.png", ARTIFACTS / "docs_fct_orders_lineage.png"
        for picture in (shot, lineage_shot):
            picture.unlink(missing_ok=True)  # an earlier run's picture must not pass for this one
        # One Chromium run per view: the rendered DOM and the screenshot of the same page load.
        dom = chromium("--window-size=1400,1000", f"--screenshot={shot}", "--dump-dom", page)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "fct_orders" in dom.stdout and "Order fact table" in dom.stdout  # the model page, with its description
        assert shot.is_file() and shot.stat().st_size > 20_000, dom.stderr[-2000:]
        graph = chromium("--window-size=1400,1000", f"--screenshot={lineage_shot}", "--dump-dom", page + "?g_v=1")
        # the lineage view (dbt docs' graph panel, drawn by cytoscape)
        assert "Lineage Graph" in graph.stdout and 'data-id="layer2-node"' in graph.stdout, graph.stderr[-2000:]
        assert graph.returncode == 0 and lineage_shot.is_file() and lineage_shot.stat().st_size > 20_000, graph.stderr[-2000:]
        stopped = ok(await client.call_tool("dbt_docs", {"stop": True}))
        assert stopped["note"] == "stopped serving the docs site"
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=3)
