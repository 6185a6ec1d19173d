"""`pbx-service run` refuses to start, before touching Asterisk or a database, when a prompt
its config names is missing: a caller would hear silence where the greeting should be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_missing_prompt_stops_the_daemon(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "ari: {url: 'http://127.0.0.1:9/ari'}\n"
        "lines: [{did: '84952223344', label: website}]\n"
        "teams: {reception: {members: [PJSIP/101]}}\n"
        "flow: {greeting: welcome-to-romashka}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "pbx_service.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "prompts-missing" in proc.stderr
    assert "welcome-to-romashka" in proc.stderr
    assert "pbx-service prompts build" in proc.stderr  # says how to fix it
