#!/usr/bin/env python3
"""Quick probes for performance work (issue 18), built on scripts/bench's own
peers and load generator: one load against one gateway, printed per round,
optionally under `perf record` or `strace -c`, or a heap profile of idle
sessions under heaptrack. Not a benchmark: scripts/bench is. Use it to
compare two binaries side by side (copy each to target/release/ucgate in
turn and alternate the rounds), dividing the gateway's CPU per message by
the peer's in the same run to cancel the machine's drift (the notes in
docs/performance.md).

  bench/probe.py xmpp xmpp-ws|xmpp-bosh|xmpp-relay CLIENTS [--rounds N] [--config ucgate-xmpp.toml]
                 [--tool perf|strace] [--on ucgate|prosody]
  bench/probe.py sip CLIENTS [--rounds N] [--config ucgate-sip.toml] [--tool perf|strace]
  bench/probe.py heap ws|xmpp-ws|bosh [--sessions 1000]

Needs `cargo build --release -p ucgate --bin ucgate -p ucgate-bench --bin
ucgate-bench` and the bench peers (`scripts/install-deps --bench`). Output:
perf.data or strace.out in target/bench/, heaptrack's file in
target/bench/heap-KIND.zst (read it with heaptrack_print)."""

import argparse
import importlib.machinery
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
loader = importlib.machinery.SourceFileLoader("bench", os.path.join(ROOT, "scripts", "bench"))
spec = importlib.util.spec_from_loader("bench", loader)
b = importlib.util.module_from_spec(spec)
loader.exec_module(b)


def start_tool(tool, pid):
    out = os.path.join(b.WORK, "perf.data" if tool == "perf" else "strace.out")
    if tool == "perf":
        argv = ["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "--call-graph", "dwarf,16384",
                "-o", out, "-p", str(pid)]
    elif tool == "strace":
        argv = ["strace", "-c", "-f", "-o", out, "-p", str(pid)]
    else:
        return None, None
    return subprocess.Popen(argv, stderr=subprocess.DEVNULL), out


def stop_tool(proc, out):
    if proc:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        print("written:", os.path.relpath(out, ROOT))


def report(d):
    cpu = {k: round(v, 1) for k, v in d.get("_cpu_us", {}).items()}
    print("rate", round(d.get("rate") or 0), "p50 µs", d.get("latency_us", {}).get("p50"),
          "CPU µs per message", cpu, d.get("_error", ""), flush=True)


def xmpp(a):
    pros = b.Prosody(max(a.clients, 2))
    gw = b.Ucgate("xmpp", a.config or "ucgate-xmpp.toml", {"DOMAIN": b.XMPP_DOMAIN, "C2S_PORT": pros.c2s_port})
    tool, out = start_tool(a.tool, pros.pid if a.on == "prosody" else gw.pid)
    time.sleep(1)
    url = {"xmpp-ws": f"ws://127.0.0.1:{gw.port}/xmpp-websocket",
           "xmpp-bosh": f"http://127.0.0.1:{gw.port}/http-bind",
           "xmpp-relay": f"ws://127.0.0.1:{gw.port}/c2s"}[a.kind]
    for _ in range(a.rounds):
        report(b.run_bench("probe", [a.kind, url, "--domain", b.XMPP_DOMAIN, "--clients", a.clients,
                                     "--user", "bench{n}", "--password", b.XMPP_PASSWORD,
                                     "--duration", 4, "--warmup", 1], 60,
                           {"ucgate": gw.pid, "prosody": pros.pid}))
    stop_tool(tool, out)


def sip(a):
    kam = b.Kamailio()
    gw = b.Ucgate("sip", a.config or "ucgate-sip.toml", {"SIP_PORT": kam.port})
    tool, out = start_tool(a.tool, gw.pid)
    time.sleep(1)
    for _ in range(a.rounds):
        report(b.run_bench("probe", ["sip-ws", f"ws://127.0.0.1:{gw.port}/sip", "--clients", a.clients,
                                     "--domain", b.SIP_DOMAIN, "--duration", 4], 90,
                           {"ucgate": gw.pid, "kamailio": kam.proc.pid}))
    stop_tool(tool, out)


def heap(a):
    pros = b.Prosody(2)
    echo = b.start_echo()
    store = os.path.join(b.WORK, f"heap-{a.kind}")
    wrapper = os.path.join(b.WORK, "ucgate-heaptrack")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec heaptrack -o {store} {b.UCGATE} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    real, b.UCGATE = b.UCGATE, wrapper
    orig_run = subprocess.run

    def run(argv, *args, **kw):  # check-config runs the real binary
        if argv and argv[0] == wrapper:
            argv = [real] + list(argv[1:])
        return orig_run(argv, *args, **kw)
    subprocess.run = run
    try:
        gw = b.Ucgate("idle", "ucgate-idle.toml",
                      {"DOMAIN": b.XMPP_DOMAIN, "C2S_PORT": pros.c2s_port, "ECHO_PORT": echo.port})
    finally:
        subprocess.run, b.UCGATE = orig_run, real
    time.sleep(1)
    pid = subprocess.check_output(["pgrep", "-n", "-f", f"{real} run"]).decode().strip()
    url = {"bosh": f"http://127.0.0.1:{gw.port}/http-bind",
           "xmpp-ws": f"ws://127.0.0.1:{gw.port}/xmpp-websocket",
           "ws": f"ws://127.0.0.1:{gw.port}/echo"}[a.kind]
    args = ["idle", url, "--kind", a.kind, "--pid", pid, "--connections", a.sessions, "--concurrency", 200,
            "--hold", 4, "--source-ips", "127.0.0.1-127.0.0.8", "--domain", b.XMPP_DOMAIN]
    if a.kind == "ws":
        args += ["--subprotocol", "binary"]
    d = b.run_bench("heap", args, 120)
    print("bytes per session (RSS)", d.get("bytes_per_connection"), d.get("_error", ""))
    os.kill(int(pid), signal.SIGTERM)  # heaptrack writes its file when the gateway exits
    time.sleep(8)
    print("written:", os.path.relpath(store + ".zst", ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    x = sub.add_parser("xmpp")
    x.add_argument("kind", choices=["xmpp-ws", "xmpp-bosh", "xmpp-relay"])
    x.add_argument("--on", choices=["ucgate", "prosody"], default="ucgate",
                   help="the process --tool watches")
    s = sub.add_parser("sip")
    for p in (x, s):
        p.add_argument("clients", type=int)
        p.add_argument("--rounds", type=int, default=1)
        p.add_argument("--config", help="a template in bench/ (default: the section's own)")
        p.add_argument("--tool", choices=["perf", "strace"])
    h = sub.add_parser("heap")
    h.add_argument("kind", choices=["ws", "xmpp-ws", "bosh"])
    h.add_argument("--sessions", type=int, default=1000)
    a = ap.parse_args()
    shutil.rmtree(b.WORK, ignore_errors=True)
    os.makedirs(b.LOGS)
    try:
        {"xmpp": xmpp, "sip": sip, "heap": heap}[a.what](a)
    finally:
        b.stop_all()


if __name__ == "__main__":
    sys.exit(main())
