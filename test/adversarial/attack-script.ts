/**
 * The attacker's extra moves, beside the firewall suite's agent script (AGENT_PY, mounted as
 * /agent/agent.py): one command per run, one JSON result on stdout. Runs as root inside an agent
 * container created exactly as the product creates agents.
 *
 *   packet                          AF_PACKET and the remaining inet socket kinds (ICMPv6, raw IP)
 *   udpconnect HOST PORT            connected UDP (what QUIC does): connect, send an Initial-like datagram
 *   http HOST PORT HOSTHEADER       a plain HTTP GET: what answered (status line) or the error
 *   resolvconf SERVER NAME          rewrite /etc/resolv.conf to SERVER, resolve NAME, put the file back
 *   burst HOST PORT N               N unconnected UDP sends as fast as possible: count of each outcome
 *   listen PORT LOG                 (for a victim container) log every TCP connection and UDP datagram
 */
export const ATTACK_PY = String.raw`
import errno, json, os, socket, sys, threading, time

def code(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else type(e).__name__

def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def packet():
    kinds = {
        "packet_raw": (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)),
        "packet_dgram": (socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800)),
        "icmp6": (socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6),
        "raw_ip": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW),
        "raw_udp": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP),
    }
    out = {}
    for name, args in kinds.items():
        try:
            socket.socket(*args).close()
            out[name] = "ok"
        except OSError as e:
            out[name] = code(e)
    return out

def udpconnect(host, port):
    s = socket.socket(fam(host), socket.SOCK_DGRAM)
    s.settimeout(1.0)
    start = time.monotonic()
    try:
        s.connect((host, port))
        # first byte 0xc0: a QUIC long header (Initial), version 1
        s.send(b"\xc0\x00\x00\x00\x01" + os.urandom(40))
        return {"ok": True, "stage": "sent"}
    except OSError as e:
        return {"ok": False, "errno": code(e), "seconds": time.monotonic() - start}
    finally:
        s.close()

def http(host, port, hostheader):
    s = socket.socket(fam(host), socket.SOCK_STREAM)
    s.settimeout(3.0)
    try:
        try:
            s.connect((host, port))
        except OSError as e:
            return {"ok": False, "stage": "connect", "errno": code(e)}
        s.sendall(("GET /latest/meta-data/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % hostheader).encode())
        data = b""
        try:
            while len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            if not data:
                return {"ok": False, "stage": "recv", "errno": code(e)}
        head = data.split(b"\r\n", 1)[0].decode(errors="replace")
        return {"ok": bool(data), "status": head, "body": data.split(b"\r\n\r\n", 1)[-1][:200].decode(errors="replace")}
    finally:
        s.close()

def resolvconf(server, name):
    path = "/etc/resolv.conf"
    original = open(path).read()
    try:
        with open(path, "w") as f:
            f.write("nameserver %s\noptions attempts:1 timeout:2\n" % server)
        written = open(path).read()
        try:
            infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
            r = {"ok": True, "addresses": sorted({i[4][0] for i in infos})}
        except socket.gaierror as e:
            r = {"ok": False, "errno": {socket.EAI_NONAME: "NXDOMAIN"}.get(e.errno, "EAI%d" % e.errno)}
        r["wrote"] = written
        return r
    finally:
        with open(path, "w") as f:
            f.write(original)

def burst(host, port, n):
    counts = {}
    s = socket.socket(fam(host), socket.SOCK_DGRAM)
    start = time.monotonic()
    for i in range(n):
        try:
            s.sendto(b"x", (host, port))
            k = "sent"
        except OSError as e:
            k = "error:" + code(e)
        counts[k] = counts.get(k, 0) + 1
    s.close()
    return {"ok": True, "counts": counts, "seconds": time.monotonic() - start}

def listen(port, logpath):
    log = open(logpath, "a", buffering=1)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(64)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    def udp_loop():
        while True:
            _data, peer = u.recvfrom(2048)
            log.write(json.dumps({"proto": "udp", "peer": peer[0]}) + "\n")
    threading.Thread(target=udp_loop, daemon=True).start()
    log.write(json.dumps({"ready": True}) + "\n")
    while True:
        c, peer = t.accept()
        log.write(json.dumps({"proto": "tcp", "peer": peer[0]}) + "\n")
        c.close()

cmd, pos = sys.argv[1], sys.argv[2:]
if cmd == "packet":
    r = packet()
elif cmd == "udpconnect":
    r = udpconnect(pos[0], int(pos[1]))
elif cmd == "http":
    r = http(pos[0], int(pos[1]), pos[2])
elif cmd == "resolvconf":
    r = resolvconf(pos[0], pos[1])
elif cmd == "burst":
    r = burst(pos[0], int(pos[1]), int(pos[2]))
elif cmd == "listen":
    listen(int(pos[0]), pos[1])
    r = {"ok": False}
else:
    r = {"ok": False, "error": "unknown command " + cmd}
print(json.dumps(r))
`;
