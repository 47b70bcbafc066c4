/**
 * What the agent does in the firewall suite: one command per run, one JSON result on stdout. Runs in
 * an agent container created exactly as the product creates agents (src/core/stack/agentSpec.ts).
 *
 *   resolve NAME                    the system resolver (CoreDNS, from /etc/resolv.conf): addresses or the error
 *   tls HOST PORT SNI               TCP connect + TLS ClientHello with that SNI: what the peer did
 *   tcp HOST PORT                   connect and read one line (banner)
 *   udp HOST PORT                   sendto + wait for a reply
 *   dns SERVER NAME [--tcp]         an explicit query to SERVER:53 (as a tool with its own resolver would)
 *   sockets                         which socket types can be created
 *   id                              uid
 */
export const AGENT_PY = String.raw`
import errno, json, os, socket, ssl, struct, sys, time

def failure(e, stage):
    code = errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else type(e).__name__
    return {"ok": False, "stage": stage, "errno": code, "error": str(e)}

def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def resolve(name):
    try:
        infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
        return {"ok": True, "addresses": sorted({i[4][0] for i in infos})}
    except socket.gaierror as e:
        return {"ok": False, "stage": "resolve", "errno": {socket.EAI_NONAME: "NXDOMAIN"}.get(e.errno, "EAI%d" % e.errno), "error": str(e)}

def tcp(host, port, timeout=3.0):
    s = socket.socket(fam(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        try:
            s.connect((host, port))
        except OSError as e:
            r = failure(e, "connect")
            r["seconds"] = time.monotonic() - start
            return r
        try:
            data = s.recv(256)
        except OSError as e:
            return failure(e, "recv")
        return {"ok": True, "banner": data.decode(errors="replace").strip()}
    finally:
        s.close()

def tls(host, port, sni, timeout=3.0):
    raw = socket.socket(fam(host), socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        raw.connect((host, port))
    except OSError as e:
        raw.close()
        return failure(e, "connect")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni)
        s.close()
        return {"ok": True, "stage": "handshake"}
    except ConnectionResetError as e:
        return {"ok": False, "stage": "handshake", "errno": "ECONNRESET", "error": str(e)}
    except (ssl.SSLError, OSError) as e:
        return {"ok": False, "stage": "handshake", "errno": type(e).__name__, "error": str(e)}
    finally:
        raw.close()

def udp(host, port, timeout=2.0):
    s = socket.socket(fam(host), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        try:
            s.sendto(b"ping", (host, port))
        except OSError as e:
            r = failure(e, "send")
            r["seconds"] = time.monotonic() - start
            return r
        try:
            data, frm = s.recvfrom(2048)
            return {"ok": True, "reply": data.decode(errors="replace"), "from": frm[0]}
        except OSError as e:
            return failure(e, "recv")
    finally:
        s.close()

def query(name, qid):
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!2H", 1, 1)

def answer(reply, qid):
    rid, flags, _qd, an = struct.unpack("!4H", reply[:8])
    out = {"ok": rid == qid, "rcode": flags & 0xF, "answers": an}
    if an:
        out["answer"] = socket.inet_ntoa(reply[-4:])
    return out

def dns(server, name, use_tcp, timeout=3.0):
    qid = 0x5151
    q = query(name, qid)
    if use_tcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((server, 53))
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", s.recv(2))[0]
            data = b""
            while len(data) < n:
                data += s.recv(n - len(data))
            return answer(data, qid)
        except OSError as e:
            return failure(e, "tcp")
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (server, 53))
        data, frm = s.recvfrom(2048)
        out = answer(data, qid)
        out["from"] = frm[0]
        return out
    except OSError as e:
        return failure(e, "udp")
    finally:
        s.close()

def sockets():
    attempts = {
        "raw4": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "icmp4": (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
        "raw6": (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
        "tcp4": (socket.AF_INET, socket.SOCK_STREAM, 0),
    }
    out = {}
    for name, args in attempts.items():
        try:
            socket.socket(*args).close()
            out[name] = "ok"
        except OSError as e:
            out[name] = errno.errorcode.get(e.errno, str(e.errno))
    return out

cmd, args = sys.argv[1], sys.argv[2:]
flags = {a for a in args if a.startswith("--")}
pos = [a for a in args if not a.startswith("--")]
if cmd == "resolve":
    r = resolve(pos[0])
elif cmd == "tls":
    r = tls(pos[0], int(pos[1]), pos[2])
elif cmd == "tcp":
    r = tcp(pos[0], int(pos[1]))
elif cmd == "udp":
    r = udp(pos[0], int(pos[1]))
elif cmd == "dns":
    r = dns(pos[0], pos[1], "--tcp" in flags)
elif cmd == "sockets":
    r = sockets()
elif cmd == "id":
    r = {"ok": True, "uid": os.getuid()}
else:
    r = {"ok": False, "error": "unknown command " + cmd}
print(json.dumps(r))
`;
