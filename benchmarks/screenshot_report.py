"""Render a natgrad report in headless Chromium and save a screenshot (not a test).

Checks that ``report.html`` opens without console errors and writes
``report_screenshot.png`` next to it, for a person to look at.

    uv run natgrad run --out /tmp/natgrad-report
    uv run python benchmarks/screenshot_report.py /tmp/natgrad-report

Needs Debian's ``chromium`` (``apt-get install chromium``).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def main(folder: str) -> int:
    html = Path(folder, "report.html").resolve()
    if not html.exists():
        print(f"screenshot_report: {html} does not exist", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshot_report: chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    png = html.with_name("report_screenshot.png")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,3000",
             "--enable-logging=stderr", "--v=0", f"--screenshot={png}", html.as_uri()],
            capture_output=True, text=True, timeout=120)
    console_errors = [line for line in proc.stderr.splitlines()
                      if "CONSOLE" in line and ("Error" in line or "error" in line)]
    print(f"chromium exit {proc.returncode}; console errors: {len(console_errors)}; "
          f"screenshot: {png} ({png.stat().st_size if png.exists() else 0} bytes)")
    for line in console_errors:
        print("  " + line)
    return 0 if proc.returncode == 0 and png.exists() and not console_errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "natgrad-report"))
