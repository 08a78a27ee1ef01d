"""The service files in examples/ run a `riffd serve` that this riffd accepts."""
import plistlib
import shlex
from pathlib import Path

from riffd.daemon.cli_live import serve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check_serve_args(args):
    assert args[0].endswith("/riffd") and args[1] == "serve", args
    ctx = serve.make_context("serve", list(args[2:]))   # click raises on an unknown option or value
    assert ctx.params["log_level"] in ("info", "warning", "debug", "error")


def test_systemd_unit_runs_a_valid_serve():
    text = (EXAMPLES / "riffd.service").read_text()
    exec_start = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]
    assert len(exec_start) == 1
    check_serve_args(shlex.split(exec_start[0].replace("%h", "/home/user")))
    assert "KillSignal=SIGTERM" in text and "Restart=on-failure" in text


def test_launchd_agent_runs_a_valid_serve():
    agent = plistlib.loads((EXAMPLES / "com.riffd.serve.plist").read_bytes())
    assert agent["Label"] == "com.riffd.serve" and agent["RunAtLoad"]
    check_serve_args(agent["ProgramArguments"])
