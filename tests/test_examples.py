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


def atom(token: str):
    """A Max message atom: int, float or symbol."""
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token


def test_max_patch_sends_only_addresses_riffd_takes():
    import json
    import re

    from riffd.bridges.osctable import COMMANDS, check

    patcher = json.loads((EXAMPLES / "max" / "riffd.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    feeds: dict[str, list[str]] = {}
    for line in patcher["lines"]:
        (src, out), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert out < boxes[src]["numoutlets"] and inlet < boxes[dst]["numinlets"]
        feeds.setdefault(dst, []).append(src)
    texts = {i: b.get("text", "") for i, b in boxes.items()}
    send = next(i for i, t in texts.items() if t.startswith("udpsend"))
    receive = next(t for t in texts.values() if t.startswith("udpreceive"))
    sent = []
    for src in feeds[send]:
        words = texts[src].split()
        if words[0] == "prepend":
            sent += [(words[1], [atom(w) for w in texts[m].split()]) for m in feeds.get(src, [])
                     if boxes[m]["maxclass"] == "message"]
            sent.append((words[1], None))
        else:
            sent.append((words[0], [atom(w) for w in words[1:]]))
    assert {"/riffd/chord", "/riffd/chord/name", "/riffd/note/on", "/riffd/status"} <= {a for a, _ in sent}
    for address, args in sent:
        assert address in {a.path for a in COMMANDS if a.direction == "in"}, address
        if args is not None:
            check(address, args)                       # raises on a wrong type or count
    routed = next(t for t in texts.values() if t.startswith("route")).split()[1:]
    assert set(routed) <= {a.path for a in COMMANDS if a.direction == "out"}
    # the comment's command line is one this riffd takes, on the ports the patch uses
    command = re.search(r"riffd (serve .*)", next(t for t in texts.values() if "riffd serve" in t)).group(1)
    params = serve.make_context("serve", command.split()[1:]).params
    assert params["osc_port"] == int(texts[send].split()[2])
    assert params["osc_reply"].endswith(":" + receive.split()[1])
