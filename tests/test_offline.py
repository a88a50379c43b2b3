"""Offline by default (issue 12, point 5): `coop run` on a copy of the sample (one year of it),
in a terminal (a pty: Prefect shows its telemetry notice only to an interactive terminal) with
a brand-new PREFECT_HOME (a "new user"), no DO_NOT_TRACK and every proxy variable pointing at
a trap on the loopback. coop must not try to reach the network (the trap sees no connection), print no
telemetry notice (nor record one as shown), no traceback and no ERROR line.

Without coop's settings (`coop.run.runner.PREFECT_OFFLINE`) this fails three ways: the first-run
notice ("Prefect collects anonymous usage data ... telemetry"), the SDK's usage event sent
through the proxy, and the temporary Prefect API unreachable (its health check went through
the proxy: "Timed out while attempting to connect to ephemeral Prefect API server").
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import io
import threading
import time
from pathlib import Path

import pytest

from coop.paths import PROJECT_ROOT

COOP = str(Path(sys.executable).with_name("coop"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
#: Variables that switch Prefect's analytics off on their own (CI detection) or would hide the
#: behaviour under test: removed from the child's environment.
_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI", "TRAVIS", "TF_BUILD",
            "BITBUCKET_BUILD_NUMBER", "TEAMCITY_VERSION", "CODEBUILD_BUILD_ID", "DO_NOT_TRACK", "NO_PROXY", "no_proxy")


class ProxyTrap:
    """A TCP listener on the loopback standing for the proxy: records every connection (and
    the first bytes: `CONNECT host:443 ...`), answers nothing and closes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    first = conn.recv(200).decode("latin-1").splitlines()[:1]
                except OSError:
                    first = []
                self.seen.append(first[0] if first else "(connection)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


#: The year of the sample the offline run reads: xlsx, xls and csv files. What is checked (no
#: connection, no notice, no traceback) does not depend on how many files are read; the whole
#: sample would only add reading time.
SAMPLE_YEAR = "2019"


def committed_sample(dest: Path) -> Path:
    """One year (`SAMPLE_YEAR`) of the committed sample (data/raw at HEAD), whatever the
    working tree holds."""
    try:
        tar = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", "HEAD", f"data/raw/{SAMPLE_YEAR}"],
                             capture_output=True, check=True, timeout=120).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(dest, filter="data")
        raw = dest / "data" / "raw"
    except (OSError, subprocess.SubprocessError, tarfile.TarError):
        raw = dest / "raw"
        shutil.copytree(PROJECT_ROOT / "data" / "raw" / SAMPLE_YEAR, raw / SAMPLE_YEAR)
    assert any(raw.rglob("*.xlsx")) or any(raw.rglob("*.csv")), "the sample is empty"
    return raw


def offline_env(home: Path, trap: ProxyTrap) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "COOP_TEST_")) and k not in _CI_VARS and k not in PROXY_VARS}
    env.update({k: trap.url for k in PROXY_VARS})
    env.update(PREFECT_HOME=str(home), PYTHONUNBUFFERED="1", TERM="xterm", COLUMNS="120")
    return env


def run_in_terminal(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> tuple[int, str]:
    """Run `cmd` with a pty as its terminal (stdin, stdout, stderr); -> (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"{cmd} still running after {timeout} s:\n" + b"".join(chunks).decode(errors="replace")[-3000:])
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=60)
    finally:
        os.close(master)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the temporary Prefect API, should it outlive the run
        except ProcessLookupError:
            pass
    return rc, ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace"))


FORBIDDEN = [re.compile(r"telemetry", re.I), re.compile(r"Traceback"), re.compile(r"\bERROR\b"),
             re.compile(r"anonymous usage", re.I)]


def assert_clean(output: str, what: str) -> None:
    for pat in FORBIDDEN:
        hits = [line for line in output.splitlines() if pat.search(line)]
        assert not hits, f"{what}: {pat.pattern!r} in the output:\n" + "\n".join(hits[:10]) + "\n---\n" + output[-3000:]


@pytest.fixture(scope="module")
def trap():
    t = ProxyTrap()
    yield t
    t.close()


def test_coop_run_offline_in_a_terminal(tmp_path, trap):
    raw = committed_sample(tmp_path / "sample")
    wh = tmp_path / "wh" / "coop.duckdb"
    home = tmp_path / "prefect-home"  # a new user: Prefect would show its notice and send a first event
    env = offline_env(home, trap)

    rc, out = run_in_terminal([COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)], env, tmp_path)
    assert rc == 0, out[-4000:]
    assert "Published" in out
    assert_clean(out, "coop run")
    assert trap.seen == [], f"coop tried to reach the network through the proxy: {trap.seen}"
    # Prefect keeps local bookkeeping (.sdk_telemetry/device_id, milestones.json) whatever the
    # settings, but with DO_NOT_TRACK it neither shows its notice nor queues an event to send
    assert not (home / ".sdk_telemetry" / "notice_shown").exists(), "Prefect showed its telemetry notice"

    # the operations commands, offline too (none of them starts Prefect)
    for cmd in (["--version"], ["plan", "--raw-dir", str(raw), "--warehouse", str(wh)],
                ["check", "--warehouse", str(wh)], ["runs", "--warehouse", str(wh)]):
        rc, out = run_in_terminal([COOP, *cmd], env, tmp_path, timeout=300)
        assert rc == 0, f"coop {' '.join(cmd)}:\n{out[-3000:]}"
        assert_clean(out, f"coop {cmd[0]}")
    assert trap.seen == [], f"coop tried to reach the network through the proxy: {trap.seen}"


def test_offline_settings_exist_in_the_installed_prefect():
    """Each PREFECT_* setting coop sets is one Prefect knows, and takes effect."""
    code = ("import os; from coop.run.runner import quiet_prefect; quiet_prefect()\n"
            "from prefect.settings import get_current_settings as g; s = g()\n"
            "print(s.server.analytics_enabled, s.cloud.enable_orchestration_telemetry, "
            "s.server.ui.show_promotional_content)\n"
            "from prefect._internal.analytics import is_telemetry_enabled; print(is_telemetry_enabled())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in _CI_VARS}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False", "False"]


def test_loopback_bypasses_a_proxy(monkeypatch):
    from coop.run.runner import PREFECT_OFFLINE, offline_prefect

    for k in PREFECT_OFFLINE:  # restored after the test
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "corp.local")
    monkeypatch.delenv("no_proxy", raising=False)
    offline_prefect()
    for name in ("NO_PROXY", "no_proxy"):
        hosts = os.environ[name].split(",")
        assert hosts[0] == "corp.local" and {"127.0.0.1", "localhost", "::1"} <= set(hosts)
    assert os.environ["DO_NOT_TRACK"] == "1"
    monkeypatch.setenv("DO_NOT_TRACK", "0")  # an operator's own choice wins
    offline_prefect()
    assert os.environ["DO_NOT_TRACK"] == "0"
