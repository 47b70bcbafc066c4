/**
 * The Python programs the datapath suites run in containers (the image is the base image plus
 * python3, see datapath-testbed.ts). They are written to a temporary directory that the containers
 * mount read-only at /e2e.
 *
 * standin.py   stands in for Envoy (TCP listeners answering `<banner>:<port>\n`, UDP listeners
 *              answering `<banner>-udp:<port>`) and for CoreDNS (DNS over UDP and TCP answering every
 *              A question with one address); every connection, datagram and query is logged to
 *              stdout as one JSON line, read back with `docker logs`.
 * client.py    what an agent does: one command per run, one JSON result on stdout.
 */

export const STANDIN_PY = String.raw`
import argparse, json, socket, struct, sys, threading

def log(**kw):
    print(json.dumps(kw), flush=True)

def tcp_listener(port, banner):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1024)
    while True:
        c, peer = s.accept()
        log(kind="tcp", port=port, peer=peer[0])
        try:
            c.sendall(("%s:%d\n" % (banner, port)).encode())
        except OSError:
            pass
        c.close()

def udp_listener(port, banner):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048)
        log(kind="udp", port=port, peer=peer[0])
        s.sendto(("%s-udp:%d" % (banner, port)).encode(), peer)

def dns_reply(query, answer):
    qid, _flags, _qd, _an, _ns, _ar = struct.unpack("!6H", query[:12])
    i, labels = 12, []
    while query[i] != 0:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode())
        i += 1 + n
    i += 1
    qtype, _qclass = struct.unpack("!2H", query[i:i + 4])
    i += 4
    records = b""
    if qtype == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(answer)
    header = struct.pack("!6H", qid, 0x8180, 1, 1 if records else 0, 0, 0)
    return ".".join(labels), qtype, header + query[12:i] + records

def dns_udp(port, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048)
        name, qtype, reply = dns_reply(data, answer)
        log(kind="dns-udp", port=port, peer=peer[0], name=name, qtype=qtype)
        s.sendto(reply, peer)

def read_exact(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError()
        data += chunk
    return data

def dns_tcp_conn(c, peer, port, answer):
    try:
        while True:
            n = struct.unpack("!H", read_exact(c, 2))[0]
            name, qtype, reply = dns_reply(read_exact(c, n), answer)
            log(kind="dns-tcp", port=port, peer=peer[0], name=name, qtype=qtype)
            c.sendall(struct.pack("!H", len(reply)) + reply)
    except (EOFError, OSError):
        pass
    finally:
        c.close()

def dns_tcp(port, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        threading.Thread(target=dns_tcp_conn, args=(c, peer, port, answer), daemon=True).start()

p = argparse.ArgumentParser()
p.add_argument("--banner", required=True)
p.add_argument("--tcp", type=int, action="append", default=[])
p.add_argument("--udp", type=int, action="append", default=[])
p.add_argument("--dns", type=int, action="append", default=[])
p.add_argument("--answer", default="198.51.100.77")
a = p.parse_args()
threads = [threading.Thread(target=tcp_listener, args=(port, a.banner)) for port in a.tcp]
threads += [threading.Thread(target=udp_listener, args=(port, a.banner)) for port in a.udp]
threads += [threading.Thread(target=dns_udp, args=(port, a.answer)) for port in a.dns]
threads += [threading.Thread(target=dns_tcp, args=(port, a.answer)) for port in a.dns]
for t in threads:
    t.daemon = True
    t.start()
log(kind="ready")
for t in threads:
    t.join()
`;

export const CLIENT_PY = String.raw`
import errno, json, socket, struct, sys, time

def failure(e, stage):
    code = errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else type(e).__name__
    return {"ok": False, "stage": stage, "errno": code, "error": str(e)}

def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def tcp(host, port, timeout=3.0):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect((host, port))
        except OSError as e:
            return failure(e, "connect")
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            return failure(e, "recv")
        return {"ok": True, "banner": data.decode().strip()}
    finally:
        s.close()

def udp(host, port, connect=False, payload=b"ping", timeout=3.0):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        start = time.monotonic()
        try:
            if connect:
                s.connect((host, port))
                s.send(payload)
            else:
                s.sendto(payload, (host, port))
        except OSError as e:
            r = failure(e, "connect" if connect else "send")
            r["seconds"] = time.monotonic() - start
            return r
        try:
            data, frm = s.recvfrom(2048)
        except OSError as e:
            return failure(e, "recv")
        return {"ok": True, "reply": data, "from": [frm[0], frm[1]]}
    finally:
        s.close()

def dns_query(name, qid):
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!2H", 1, 1)

def dns_answer(reply, qid):
    rid, flags, _qd, an = struct.unpack("!4H", reply[:8])
    if rid != qid:
        return {"ok": False, "error": "reply id %d for query %d" % (rid, qid)}
    out = {"ok": True, "rcode": flags & 0xF, "answers": an}
    if an and len(reply) >= 4:
        out["answer"] = socket.inet_ntoa(reply[-4:])
    return out

def dns(host, use_tcp=False, connect=False, name="example.test", timeout=3.0):
    qid = 0x4242
    query = dns_query(name, qid)
    if use_tcp:
        s = socket.socket(family(host), socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, 53))
            s.sendall(struct.pack("!H", len(query)) + query)
            n = struct.unpack("!H", s.recv(2))[0]
            data = b""
            while len(data) < n:
                data += s.recv(n - len(data))
            return dns_answer(data, qid)
        except OSError as e:
            return failure(e, "tcp")
        finally:
            s.close()
    r = udp(host, 53, connect=connect, payload=query, timeout=timeout)
    if not r["ok"]:
        return r
    out = dns_answer(r["reply"], qid)
    out["from"] = r["from"]
    return out

def sockets():
    attempts = {
        "raw4": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "icmp4": (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
        "raw6": (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
        "icmp6": (socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6),
        "rawudp4": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP),
        "tcp4": (socket.AF_INET, socket.SOCK_STREAM, 0),
        "udp6": (socket.AF_INET6, socket.SOCK_DGRAM, 0),
    }
    out = {}
    for name, args in attempts.items():
        try:
            socket.socket(*args).close()
            out[name] = "ok"
        except OSError as e:
            out[name] = errno.errorcode.get(e.errno, str(e.errno))
    return out

def loopback(host):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    c = socket.socket(family(host), socket.SOCK_STREAM)
    c.settimeout(2)
    try:
        c.connect((host, port))
        return {"ok": True, "port": port}
    except OSError as e:
        return failure(e, "connect")
    finally:
        c.close()
        srv.close()

def tally(results):
    counts = {}
    for r in results:
        key = r["banner"] if r["ok"] else "error:%s" % r["errno"]
        counts[key] = counts.get(key, 0) + 1
    return counts

def loop(host, port, seconds):
    end = time.monotonic() + seconds
    results = []
    while time.monotonic() < end:
        results.append(tcp(host, port, timeout=2.0))
    return {"ok": True, "total": len(results), "counts": tally(results)}

def burst(host, port, count):
    return {"ok": True, "counts": tally([tcp(host, port, timeout=1.0) for _ in range(count)])}

cmd, args = sys.argv[1], sys.argv[2:]
flags = {a for a in args if a.startswith("--")}
pos = [a for a in args if not a.startswith("--")]
if cmd == "tcp":
    r = tcp(pos[0], int(pos[1]))
elif cmd == "udp":
    r = udp(pos[0], int(pos[1]), connect="--connect" in flags)
    if r["ok"]:
        r["reply"] = r["reply"].decode(errors="replace")
elif cmd == "dns":
    r = dns(pos[0], use_tcp="--tcp" in flags, connect="--connect" in flags)
elif cmd == "sockets":
    r = sockets()
elif cmd == "loopback":
    r = loopback(pos[0])
elif cmd == "loop":
    r = loop(pos[0], int(pos[1]), float(pos[2]))
elif cmd == "burst":
    r = burst(pos[0], int(pos[1]), int(pos[2]))
else:
    r = {"ok": False, "error": "unknown command " + cmd}
print(json.dumps(r))
`;
