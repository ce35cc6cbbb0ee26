"""The ingress stays light: its module graph loads neither duckdb nor pyarrow (history reads
import them on the first read, app/history/client.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_importing_the_ingress_loads_no_duckdb() -> None:
    result = _run("import sys, deployments.ingress; print('duckdb' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_ingress_imports_with_neither_duckdb_nor_pyarrow_installed() -> None:
    """Ray itself imports pyarrow when it is installed (`serve.ingress` sets up Ray's
    serializers, which register Arrow's), so `sys.modules` cannot tell whether our code needs
    it. Made unimportable, the import still succeeds only if no module of ours imports it."""
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = None\n"
        "sys.modules['duckdb'] = None\n"
        "import deployments.ingress\n"
        "import app.history.client, app.history.queries, app.history.snapshots\n"
        "print('ok')\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
