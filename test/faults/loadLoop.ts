/**
 * The load an agent keeps up while a fault is injected: a loop of resolutions and connections, one
 * JSON line per attempt, until a stop file appears. Every attempt records when it started and ended
 * (wall clock: the container shares the host's), so a test can line the results up with the moment
 * of the fault and with a bypass deadline.
 *
 *   python3 load.py OUT STOP ALLOWED_IP LITERAL_IP BLOCKED_IP RESOLVER_IP
 *
 * Operations (`op`), in this order each round:
 *   resolve-allowed  the system resolver (CoreDNS) for allowed.test
 *   resolve-blocked  the system resolver for blocked.test (never answered)
 *   tcp-allowed      ALLOWED_IP:7000, allowed by a rule: through the proxy; ok = connected and read
 *   tls-literal      LITERAL_IP:443, never resolved; ok = a TLS handshake completed; the SNI
 *                    is unique per round (r<N>.load.example) so the origin's record names the round
 *                    (the origin's log, not ok, is what says the connection reached it)
 *   tls-blocked      BLOCKED_IP:443 with SNI r<N>.blocked.test; ok = a handshake completed
 *   udp-literal      sendto LITERAL_IP:9999; ok = the kernel let the datagram out
 *   dns-direct       a query for blocked.test sent to RESOLVER_IP:53 itself; ok = an answer with records
 */
export interface LoadRecord {
  op: 'resolve-allowed' | 'resolve-blocked' | 'tcp-allowed' | 'tls-literal' | 'tls-blocked' | 'udp-literal' | 'dns-direct';
  round: number;
  /** Seconds since the epoch when the attempt started and ended. */
  t0: number;
  t1: number;
  ok: boolean;
  err?: string;
  sni?: string;
}

export const LOAD_PY = String.raw`
import errno, json, os, socket, ssl, struct, sys, time
out_path, stop_path, allowed, literal, blocked, resolver = sys.argv[1:7]
T = 1.0
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def err(e):
    n = getattr(e, "errno", None)
    return errno.errorcode.get(n, str(n)) if isinstance(n, int) else type(e).__name__

def resolve(name):
    socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)

def tcp(host, port):
    s = socket.create_connection((host, port), timeout=T)
    try:
        s.recv(64)
    finally:
        s.close()

def tls(host, port, sni):
    raw = socket.create_connection((host, port), timeout=T)
    try:
        ctx.wrap_socket(raw, server_hostname=sni).close()
    finally:
        raw.close()

def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"ping", (host, port))
    finally:
        s.close()

def dns(server, name):
    q = struct.pack("!6H", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!2H", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(T)
    try:
        s.sendto(q, (server, 53))
        reply = s.recv(2048)
        rcode = struct.unpack("!H", reply[2:4])[0] & 0xF
        answers = struct.unpack("!H", reply[6:8])[0]
        if rcode != 0 or answers == 0:
            raise OSError(0, "rcode %d, %d answers" % (rcode, answers))
    finally:
        s.close()

out = open(out_path, "a", buffering=1)
n = 0
while not os.path.exists(stop_path):
    n += 1
    sni = "r%d.load.example" % n
    bsni = "r%d.blocked.test" % n
    ops = [
        ("resolve-allowed", lambda: resolve("allowed.test"), None),
        ("resolve-blocked", lambda: resolve("blocked.test"), None),
        ("tcp-allowed", lambda: tcp(allowed, 7000), None),
        ("tls-literal", lambda: tls(literal, 443, sni), sni),
        ("tls-blocked", lambda: tls(blocked, 443, bsni), bsni),
        ("udp-literal", lambda: udp(literal, 9999), None),
        ("dns-direct", lambda: dns(resolver, "blocked.test"), None),
    ]
    for op, fn, tag in ops:
        t0 = time.time()
        rec = {"op": op, "round": n, "t0": t0}
        try:
            fn()
            rec["ok"] = True
        except Exception as e:
            rec["ok"] = False
            rec["err"] = err(e)
        rec["t1"] = time.time()
        if tag:
            rec["sni"] = tag
        out.write(json.dumps(rec) + "\n")
    time.sleep(0.02)
out.write(json.dumps({"op": "done", "round": n, "t0": time.time(), "t1": time.time(), "ok": True}) + "\n")
`;
