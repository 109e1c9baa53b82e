"""The HTML report in a real browser: headless Chromium loads every image and logs nothing to the console.

A copy of the page gets a small probe script (the report itself has none): it records error
events and ``console.error`` calls, and after the load event writes the count of images that
decoded (``naturalWidth > 0``) into the DOM, which ``--dump-dom`` prints. Chromium's own log
(``--enable-logging=stderr``) must show no console message either.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.report import write_report

from ._records import attention_file, run_record, write_json_atomic, write_micro, write_suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium package is not installed (apt-get install chromium): "
                             "the HTML report cannot be opened in a headless browser here")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000")

PROBE = """<script>
window.__errors = [];
window.addEventListener("error",
  (e) => window.__errors.push(String(e.message || "resource failed to load")), true);
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); __consoleError(...args); };
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images.length, loaded: loaded, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def _report(tmp_path: Path) -> Path:
    suite = write_suite(tmp_path / "suite", {"none": [0.8, 0.81, 0.79], "additive": [0.84, 0.85, 0.86]},
                        task="translation")
    examples = attention_file(tmp_path / "alignment.json", "alignment")
    write_json_atomic(suite / "records" / "translation__luong__s0.json",
                      run_record("translation", "luong", 0, 0.83, attention_file=str(examples)))
    micro = write_micro(tmp_path / "micro.csv", runs=1)
    return write_report([suite, micro], tmp_path / "report").html


def test_html_report_renders_in_chromium(tmp_path) -> None:
    page = _report(tmp_path)
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                             probed.as_uri()], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert match, f"the probe did not run: {result.stdout[:500]} {result.stderr[-1000:]}"
    probe = json.loads(match.group(1).replace("&quot;", '"'))
    expected = page.read_text().count("<img ")
    assert expected >= 4 and probe["images"] == expected
    assert probe["loaded"] == expected, probe
    assert probe["errors"] == []
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
