"""A real Prometheus scrapes a real controller over loopback (issue 17, done-when bullet 3).

Debian's ``prometheus`` binary is started with a generated configuration that
scrapes ``ledwarden controller run`` (simulated cards on a pseudo-terminal)
the way a deployment would: HTTPS, the controller's self-signed certificate
as the CA (``tls_config``), a viewer token from a file (``authorization``).
The query for a cabinet's temperature must return the simulated value; a
second job without the token must be refused, so ``/metrics`` is not open
to anyone on the network.  Without the binary the test is skipped on a
developer's machine and fails in CI.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from controller.service.auth import TokenStore
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator
from support import controller_process
from support.prometheus_tools import tool

TEMPERATURE_C = 47.5       # cabinet 3's simulated temperature, steady (no wander)


def config(target: str, cert: Path, token_file: Path) -> str:
    """The scrape configuration docs/metrics.md gives, for one controller."""
    return f"""
global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: ledwarden
    scheme: https
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token_file}
    tls_config:
      ca_file: {cert}
    static_configs:
      - targets: ["{target}"]
  - job_name: ledwarden-without-token
    scheme: https
    metrics_path: /metrics
    tls_config:
      ca_file: {cert}
    static_configs:
      - targets: ["{target}"]
"""


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def last_errors(base: str) -> dict[str, str]:
    """Each job's last scrape error ("" for a good scrape), from Prometheus' targets API."""
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as resp:
        targets = json.load(resp)["data"]["activeTargets"]
    return {t["labels"]["job"]: t["lastError"] for t in targets}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except OSError:        # Prometheus not listening yet
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.25)


def test_prometheus_scrapes_a_cabinets_simulated_temperature(tmp_path):
    prometheus = tool("prometheus")
    state = tmp_path / "state"
    state.mkdir()
    token = TokenStore(state / "tokens.db").create("prometheus", "viewer")
    token_file = tmp_path / "token"
    token_file.write_text(token)
    plan = FaultPlan().with_card(3, temp_c=TEMPERATURE_C)
    with Simulator(8, pty=True, plan=plan) as sim:
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--schedule", "off",
                                             "--watch-interval", "0.5")
        try:
            target = urllib.parse.urlsplit(url).netloc
            (tmp_path / "prometheus.yml").write_text(
                config(target, state / "tls" / "cert.pem", token_file))
            port = controller_process.free_port()
            server = subprocess.Popen(
                [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
            base = f"http://127.0.0.1:{port}"
            try:
                found = wait_for(lambda: query(base, 'ledwarden_cabinet_temperature_celsius'
                                                     '{job="ledwarden",cabinet="3"}'),
                                 60, "Prometheus had no temperature for cabinet 3")
                assert float(found[0]["value"][1]) == TEMPERATURE_C
                assert query(base, 'up{job="ledwarden"}')[0]["value"][1] == "1"
                # the job without a token: refused with 401 (waited for, since a scrape that
                # timed out on a loaded machine is a refusal of another kind)
                errors = wait_for(lambda: (e := last_errors(base)) and
                                  "401" in e.get("ledwarden-without-token", "") and e,
                                  30, "the job without a token was not refused with 401")
                assert query(base, 'up{job="ledwarden-without-token"}')[0]["value"][1] == "0"
                assert errors["ledwarden"] == "", errors
            except AssertionError:
                print((tmp_path / "prometheus.log").read_text()[-3000:])
                raise
            finally:
                server.terminate()
                server.wait(timeout=20)
        finally:
            controller_process.stop(proc)
