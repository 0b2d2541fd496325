#!/usr/bin/python3
"""Turns sockbench/iperf3/RPyC/python_bench JSON lines into bench/results/latest.md and a
gnuplot script for latest.png. Ratios are computed per repetition (the
agent's figure and the peer's from the same repetition, measured minutes
apart at most) and summarised as median (min-max)."""
import argparse
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess

# figure, agent metric, peer label, peer metric (None: absolute), target op,
# target value
ROWS = [
    ("GetHostname p50 (us)", "agent.gethostname.p50",
     "gRPC floor unary 64 B p50", "floor.unary64.p50", "<=", 1.15),
    ("GetHostname p99 (us)", "agent.gethostname.p99",
     "gRPC floor unary 64 B p99", "floor.unary64.p99", "<=", 1.5),
    ("Send 64 B p50 (us)", "agent.send64.p50",
     "gRPC floor unary 64 B p50", "floor.unary64.p50", "<=", 1.15),
    ("Send 64 B p99 (us)", "agent.send64.p99",
     "gRPC floor unary 64 B p99", "floor.unary64.p99", "<=", 1.5),
    ("Recv 64 B ready p50 (us)", "agent.recv64.p50",
     "gRPC floor unary 64 B p50", "floor.unary64.p50", "<=", 1.15),
    ("Recv 64 B ready p99 (us)", "agent.recv64.p99",
     "gRPC floor unary 64 B p99", "floor.unary64.p99", "<=", 1.5),
    ("lifecycles/s, 1 client", "agent.lifecycle.rate1",
     "RPyC classic, same lifecycle", "rpyc.lifecycle.rate1", ">=", 5),
    ("lifecycles/s, 8 clients / 1 client", "agent.lifecycle.scaling8",
     "gRPC floor unary, 8 callers / 1", "floor.unary.scaling8", ">=", 1.0),
    # The Python client (bench/python_bench.py): one function run on
    # agent.socket_module() and on RPyC's conn.modules.socket; small ops
    # against a bare grpcio unary call to the same floor server.
    ("Python lifecycles/s (socket, bind, listen, connect, accept, 3 close)",
     "python.lifecycle.rate1", "RPyC classic, same function",
     "rpyc.pylifecycle.rate1", ">=", 20),
    ("Python getsockname() p50 (us)", "python.getsockname.p50",
     "grpcio unary 64 B p50", "pyfloor.unary64.p50", "<=", 1.2),
    ("Python getsockname() p99 (us)", "python.getsockname.p99",
     "grpcio unary 64 B p99", "pyfloor.unary64.p99", "<=", 1.5),
    ("Python getsockname() p50 (us)", "python.getsockname.p50",
     "GetSockName on the bare generated stub p50",
     "python.rawstub.getsockname.p50", "<=", 1.1),
    ("Python send(64 B) p50 (us)", "python.send64.p50",
     "grpcio unary 64 B p50", "pyfloor.unary64.p50", "<=", 1.2),
    ("Python send(64 B) p99 (us)", "python.send64.p99",
     "grpcio unary 64 B p99", "pyfloor.unary64.p99", "<=", 1.5),
]
for kib in (16, 64, 256):
    ROWS.append((f"RecvStream {kib} KiB chunks (MB/s)",
                 f"agent.recvstream.{kib}k",
                 f"gRPC floor server stream {kib} KiB",
                 f"floor.download.{kib}k", ">=", 0.8))
    ROWS.append((f"RecvStream {kib} KiB chunks (MB/s)",
                 f"agent.recvstream.{kib}k", "iperf3 single stream",
                 "iperf3", "share", None))
    ROWS.append((f"RecvStream {kib} KiB chunks (MB/s)",
                 f"agent.recvstream.{kib}k",
                 f"TCP relay, no gRPC, {kib} KiB reads", f"relay.{kib}k",
                 "share", None))
for kib in (16, 64, 256):
    ROWS.append((f"SendStream {kib} KiB chunks (MB/s)",
                 f"agent.sendstream.{kib}k",
                 f"gRPC floor client stream {kib} KiB",
                 f"floor.upload.{kib}k", ">=", 0.8))
    ROWS.append((f"SendStream {kib} KiB chunks (MB/s)",
                 f"agent.sendstream.{kib}k", "iperf3 single stream",
                 "iperf3", "share", None))
    ROWS.append((f"SendStream {kib} KiB chunks (MB/s)",
                 f"agent.sendstream.{kib}k",
                 f"TCP relay, no gRPC, {kib} KiB reads", f"relay.{kib}k",
                 "share", None))
ROWS += [
    ("bulk remote recv into the client (MB/s; RecvStream 64 KiB)",
     "agent.recvstream.64k", "RPyC recv(65536) loop", "rpyc.recv64k", ">=",
     4),
    ("RSS per open socket + waiting Recv (KiB)", "agent.rss_per_socket",
     None, None, "<=", 20),
    ("  of which the open socket (KiB)", "agent.rss_per_open_socket", None,
     None, "info", None),
    ("  of which the waiting Recv call (KiB)", "agent.rss_per_waiting_recv",
     None, None, "info", None),
    ("open sockets with a waiting Recv", "agent.waiting_recvs", None, None,
     "info", None),
    ("agent threads: loaded - idle", "agent.threads.delta", None, None, "<=",
     0),
    ("  of which gRPC's executor growing to its cap (2 per core)",
     "agent.threads.executor_delta", None, None, "info", None),
    ("GetHostname p99 under that load (us)", "agent.gethostname.loaded.p99",
     "the same, idle", "agent.gethostname.idle.p99", "<=", 2.0),
    ("storm: clients", "agent.storm.clients", None, None, "info", None),
    ("storm: lifecycles/s", "agent.storm.rate", None, None, "info", None),
    ("storm: errors", "agent.storm.errors", None, None, "<=", 0),
    ("storm: agent fds after - before", "agent.storm.fd_delta", None, None,
     "<=", 0),
    ("storm: lifecycle p99 (ms)", "agent.storm.p99", None, None, "info",
     None),
    ("slow consumer: bytes the peer got into the socket (MiB)",
     "agent.slow.peer_sent", None, None, "info", None),
    ("slow consumer: agent RSS growth (MiB)", "agent.slow.rss_growth", None,
     None, "<=", 1.0),
]


def summary(values):
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"


def fmt(v):
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - a description is best effort
        return "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default="full")
    parser.add_argument("--load-start", default="?")
    parser.add_argument("--notes", default="")
    args = parser.parse_args()

    data = collections.defaultdict(dict)  # metric -> rep -> value
    for line in open(args.raw):
        line = line.strip()
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        data[rec["metric"]][rec["rep"]] = rec["value"]

    lines = []
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    lines.append("# sockagent benchmark results\n")
    lines.append(f"Run: {now}, mode `{args.mode}`, command "
                 f"`bash bench/run.sh{' --smoke' if args.mode == 'smoke' else ''}`."
                 " Loopback only; every figure is median (min–max) over the "
                 "repetitions; ratios are computed per repetition (agent and "
                 "peer measured back to back) and then summarised.\n")
    lines.append("## Machine\n")
    cpu = sh("lscpu | grep -m1 'Model name' | sed 's/.*: *//'")
    mem = sh("free -m | awk '/Mem:/{print $2}'")
    grpc = sh("dpkg-query -W -f='${Version}' libgrpc++-dev")
    pb = sh("dpkg-query -W -f='${Version}' libprotobuf-dev")
    lines.append(f"- nproc: {sh('nproc')}")
    lines.append(f"- CPU: {cpu}")
    lines.append(f"- memory: {mem} MiB")
    lines.append(f"- kernel: {sh('uname -srvmo')}")
    lines.append(f"- gRPC {grpc}, protobuf {pb} (Debian), Release build")
    lines.append(f"- load average at start: {args.load_start}; at the end: "
                 f"{open('/proc/loadavg').read().strip()}")
    lines.append("- shared machine: other engineers may compile on the same "
                 "2 cores during runs (see the load averages above), so "
                 "absolute numbers move; ratios are the figures to read.\n")
    lines.append("## Figures\n")
    lines.append("| figure | sockagent | compared to | peer | ratio | target | met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for figure, metric, peer_label, peer_metric, op, target in ROWS:
        mine = data.get(metric, {})
        if not mine:
            continue
        if peer_metric is None:
            vals = list(mine.values())
            med = statistics.median(vals)
            if op == "info":
                met, tgt = "", ""
            else:
                ok = med <= target if op == "<=" else med >= target
                met, tgt = ("yes" if ok else "**no**"), f"{op} {target}"
            lines.append(f"| {figure} | {summary(vals)} | | | | {tgt} | {met} |")
            continue
        peer = data.get(peer_metric, {})
        if not peer:
            lines.append(f"| {figure} | {summary(list(mine.values()))} | "
                         f"{peer_label} | not measured | | | |")
            continue
        ratios = [mine[r] / peer[r] for r in mine if r in peer and peer[r]]
        if not ratios:
            ratios = [statistics.median(mine.values()) /
                      statistics.median(peer.values())]
        med = statistics.median(ratios)
        if op == "share":
            ratio = f"{summary([100 * x for x in ratios])} %"
            met, tgt = "", "report"
        else:
            ratio = summary(ratios) + "×"
            ok = med <= target if op == "<=" else med >= target
            met, tgt = ("yes" if ok else "**no**"), f"{op} {target}×"
        lines.append(f"| {figure} | {summary(list(mine.values()))} | "
                     f"{peer_label} | {summary(list(peer.values()))} | "
                     f"{ratio} | {tgt} | {met} |")
    lines.append("")
    lines.append("![throughput by chunk size and latency percentiles]"
                 "(latest.png)\n")
    lines.append("Raw figures: [raw.jsonl](raw.jsonl) (one JSON object per "
                 "measurement).\n")
    if args.notes and os.path.exists(args.notes):
        lines.append(open(args.notes).read())
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    def med(metric):
        v = data.get(metric, {})
        return statistics.median(v.values()) if v else float("nan")

    with open(os.path.join(args.out, "throughput.dat"), "w") as f:
        f.write("# KiB agent_recvstream floor_download agent_sendstream "
                "floor_upload iperf3 relay\n")
        for kib in (16, 64, 256):
            f.write(f"{kib} {med(f'agent.recvstream.{kib}k')} "
                    f"{med(f'floor.download.{kib}k')} "
                    f"{med(f'agent.sendstream.{kib}k')} "
                    f"{med(f'floor.upload.{kib}k')} {med('iperf3')} "
                    f"{med(f'relay.{kib}k')}\n")
    with open(os.path.join(args.out, "latency.dat"), "w") as f:
        f.write("# call p50_us p99_us\n")
        for label, m in (("floor-unary-64B", "floor.unary64"),
                         ("GetHostname", "agent.gethostname"),
                         ("Send-64B", "agent.send64"),
                         ("Recv-64B", "agent.recv64"),
                         ("GetHostname-10k-waiting",
                          "agent.gethostname.loaded")):
            f.write(f"{label} {med(m + '.p50')} {med(m + '.p99')}\n")
    with open(os.path.join(args.out, "plot.gp"), "w") as f:
        f.write("""set terminal pngcairo size 1400,560 noenhanced font ",10"
set output "latest.png"
set multiplot layout 1,2 title "sockagent vs gRPC floor vs iperf3 (loopback, medians)"
set title "Throughput by chunk size"
set xlabel "chunk (KiB)"
set ylabel "MB/s"
set logscale x 2
set xtics (16, 64, 256)
set xrange [12:340]
set key top left
set grid
plot "throughput.dat" using 1:2 with linespoints lw 2 title "agent RecvStream", \\
     "" using 1:3 with linespoints lw 2 dt 2 title "floor server stream", \\
     "" using 1:4 with linespoints lw 2 title "agent SendStream", \\
     "" using 1:5 with linespoints lw 2 dt 2 title "floor client stream", \\
     "" using 1:6 with lines lw 1 lc rgb "black" title "iperf3 (1 TCP stream)", \\
     "" using 1:7 with linespoints lw 1 dt 3 lc rgb "gray40" title "TCP relay, no gRPC (2 hops)"
unset logscale x
set autoscale x
set title "Unary latency percentiles"
set xlabel ""
set ylabel "microseconds"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -20
set key top left
plot "latency.dat" using 2:xtic(1) title "p50", "" using 3 title "p99"
unset multiplot
""")


if __name__ == "__main__":
    main()
