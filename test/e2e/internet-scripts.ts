/**
 * The Python programs of the end-to-end suite's own "internet" and of the Envoy stand-in
 * (see internet.ts). Each logs what reaches it as one JSON line per event on stdout, read back
 * with `docker logs`; a line is written before the program answers, so a client that has its
 * answer can find the record.
 *
 * DNS_PY      the internet's resolver: A records from a JSON zone file (exact names and `*.x`
 *             wildcards), NXDOMAIN for every other name, over UDP and TCP.
 * ORIGIN_PY   an origin: records every TCP connection with the SNI (and ALPN) of a TLS ClientHello,
 *             or the request line and Host of plain HTTP, and answers `origin-<name>:<port>`.
 * GIT_ORIGIN_PY  an HTTPS git server: TLS with a certificate of the test CA, HTTP Basic auth (401 with
 *             `WWW-Authenticate: Basic` when it is missing or wrong), then `git http-backend` (smart
 *             HTTP) for one bare repository made at start from the files it is given. Records every
 *             request (method, path, peer, SNI, whether auth was missing, right or wrong, the user name
 *             presented; never a password) and the status it answered.
 * ENVOY_PY    /usr/local/bin/envoy of the stand-in image: reads the bootstrap given with `-c` and the
 *             listeners (lds.json) and clusters (cds.json) it names, listens on every listener's port
 *             (polling the files every 200 ms, opening and closing listeners as they change), and picks
 *             a filter chain for each connection the way Envoy does: SNI from the ClientHello where
 *             the listener has tls_inspector, most specific server name first (exact, then `*.suffix`
 *             longest first, then chains without server_names), then transport protocol within that
 *             level only; no chain → reset. TLS chains are terminated with the rendered domain
 *             certificate when it is there, and HTTP requests go through the rendered virtual hosts and
 *             routes (first match wins). By default it does not proxy: a route to a cluster answers
 *             200 `envoy:<port>`, a tcp_proxy chain answers `envoy:<port>`, a UDP listener
 *             `envoy-udp:<port>`. With CLAWKER_STANDIN_FORWARD=1 (the image of
 *             TestInternet.forwardingEnvoyImage) a route to a cluster and a tcp_proxy chain go on to
 *             the real upstream (see "Forwarding" in the program); UDP is still answered locally.
 *             Besides its own records (with a `kind`) it writes the access-log lines the rendered
 *             `access_log`s ask for, in their json_format.
 */

/** Parsing of a TLS ClientHello (what Envoy's tls_inspector reads), shared by ORIGIN_PY and ENVOY_PY. */
const CLIENT_HELLO_PY = String.raw`
NEED_MORE = "need-more"

def _u16(b, i):
    return (b[i] << 8) | b[i + 1]

def parse_client_hello(data):
    """None: not TLS. NEED_MORE: the first bytes say TLS but the hello is incomplete.
    Otherwise a dict with sni and alpn (either may be None)."""
    if len(data) < 1:
        return NEED_MORE
    if data[0] != 0x16:
        return None
    if len(data) < 5:
        return NEED_MORE
    if data[1] != 3:
        return None
    rec_len = _u16(data, 3)
    if len(data) < 5 + rec_len:
        return NEED_MORE
    body = data[5:5 + rec_len]
    out = {"sni": None, "alpn": None}
    try:
        if body[0] != 1:
            return None
        p = 4 + 2 + 32
        p += 1 + body[p]
        p += 2 + _u16(body, p)
        p += 1 + body[p]
        if p + 2 > len(body):
            return out
        end = p + 2 + _u16(body, p)
        p += 2
        while p + 4 <= end:
            etype, elen = _u16(body, p), _u16(body, p + 2)
            p += 4
            ext = body[p:p + elen]
            if etype == 0 and len(ext) >= 2:
                q = 2
                while q + 3 <= len(ext):
                    ntype, nlen = ext[q], _u16(ext, q + 1)
                    if ntype == 0:
                        out["sni"] = ext[q + 3:q + 3 + nlen].decode("ascii", "replace")
                        break
                    q += 3 + nlen
            elif etype == 16 and len(ext) >= 2:
                protos, q = [], 2
                while q < len(ext):
                    n = ext[q]
                    protos.append(ext[q + 1:q + 1 + n].decode("ascii", "replace"))
                    q += 1 + n
                out["alpn"] = protos
            p += elen
    except IndexError:
        pass
    return out

def peek_client_hello(conn, timeout):
    """Peeks (never consumes) until the first bytes classify. Returns (data, hello) where data is
    None on timeout, b"" on EOF; hello is as parse_client_hello."""
    deadline = time.monotonic() + timeout
    data = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, (NEED_MORE if data else None)
        conn.settimeout(left)
        try:
            data = conn.recv(65536 + 5, socket.MSG_PEEK)
        except socket.timeout:
            return data, (NEED_MORE if data else None)
        if not data:
            return b"", None
        hello = parse_client_hello(data)
        if hello != NEED_MORE:
            return data, hello
        time.sleep(0.01)

def read_http_head(conn, timeout, limit=65536):
    """Consumes a request head; returns (method, path, headers dict lower-cased, every byte read:
    the head and whatever of the body came with it) or None."""
    conn.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < limit:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
    return parts[0], parts[1], headers, data

def http_response(conn, status, body, extra=""):
    reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}
    data = body.encode()
    head = "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n%s\r\n" % (
        status, reasons.get(status, "Status"), len(data), extra)
    conn.sendall(head.encode("latin-1") + data)

def finish(conn, linger=1.0):
    """Half-close, then drain what the client still sends, so that its unread bytes never turn
    our close into a reset that would discard the answer."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(linger)
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()

def reset(conn):
    """SO_LINGER 0 then close: the peer gets a RST."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()

HTTP_METHOD = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r?\n?")
`;

const COMMON_PY = String.raw`
import json, os, re, select, selectors, socket, ssl, struct, sys, threading, time

_log_lock = threading.Lock()

def log(**kw):
    line = json.dumps({k: v for k, v in kw.items() if v is not None})
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
`;

export const DNS_PY = `${COMMON_PY}${String.raw`
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS", 255: "ANY"}
ZONE_FILE = sys.argv[1]
TTL = 30
_zone = {"stat": None, "names": {}}

def zone():
    try:
        st = os.stat(ZONE_FILE)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != _zone["stat"]:
            with open(ZONE_FILE) as f:
                _zone["names"] = {k.lower().rstrip("."): v for k, v in json.load(f).items()}
            _zone["stat"] = key
    except (OSError, ValueError) as e:
        log(kind="zone-error", error=str(e))
    return _zone["names"]

def lookup(name):
    """(exists, address): exact names first, then the closest wildcard *.<suffix>."""
    names = zone()
    if name == "":
        return True, None  # the root exists (CoreDNS's forward health check asks ". IN NS")
    if name in names:
        return True, names[name]
    labels = name.split(".")
    for i in range(1, len(labels)):
        wild = "*." + ".".join(labels[i:])
        if wild in names:
            return True, names[wild]
    return False, None

def reply(query, peer, proto):
    qid, flags, qd = struct.unpack("!3H", query[:6])
    i, labels = 12, []
    while query[i] != 0:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    i += 1
    qtype, qclass = struct.unpack("!2H", query[i:i + 4])
    i += 4
    name = ".".join(labels).lower()
    exists, address = lookup(name)
    records = b""
    if exists and address and qtype in (1, 255) and qclass == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, TTL, 4) + socket.inet_aton(address)
    rcode = 0 if exists else 3
    log(kind="query", name=name, type=TYPES.get(qtype, str(qtype)), qtype=qtype, peer=peer[0], proto=proto,
        rcode="NOERROR" if rcode == 0 else "NXDOMAIN", answer=address if records else None)
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR AA RD(copied) RA
    header = struct.pack("!6H", qid, out_flags, 1, 1 if records else 0, 0, 0)
    return header + query[12:i] + records

def serve_udp(s):
    while True:
        data, peer = s.recvfrom(4096)
        try:
            s.sendto(reply(data, peer, "udp"), peer)
        except (IndexError, struct.error) as e:
            log(kind="bad-query", peer=peer[0], proto="udp", error=str(e))

def read_exact(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError()
        data += chunk
    return data

def serve_tcp_conn(c, peer):
    try:
        c.settimeout(30)
        while True:
            n = struct.unpack("!H", read_exact(c, 2))[0]
            r = reply(read_exact(c, n), peer, "tcp")
            c.sendall(struct.pack("!H", len(r)) + r)
    except (EOFError, OSError, IndexError, struct.error):
        pass
    finally:
        c.close()

def serve_tcp(s):
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, peer), daemon=True).start()

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 53))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 53))
tcp.listen(128)
zone()
threads = [threading.Thread(target=serve_udp, args=(udp,), daemon=True), threading.Thread(target=serve_tcp, args=(tcp,), daemon=True)]
for t in threads:
    t.start()
log(kind="ready")
for t in threads:
    t.join()
`}`;

export const ORIGIN_PY = `${COMMON_PY}${CLIENT_HELLO_PY}${String.raw`
NAME = sys.argv[1]
WAIT = float(sys.argv[2])  # how long to wait for the client to speak first
PORTS = [int(p) for p in sys.argv[3:]]

def handle(conn, peer, port):
    local = conn.getsockname()[0]
    record = {"kind": "conn", "origin": NAME, "port": port, "peer": peer[0], "peerPort": peer[1], "local": local, "tls": False}
    banner = "origin-%s:%d\n" % (NAME, port)
    try:
        data, hello = peek_client_hello(conn, WAIT)
        if isinstance(hello, dict):
            record.update(tls=True, sni=hello["sni"], alpn=hello["alpn"])
            log(**record)
            # No TLS here: the handshake fails on the client's side, which is all a test needs.
            conn.settimeout(1)
            try:
                conn.recv(65536 + 5)
            except OSError:
                pass
            finish(conn)
            return
        if data and HTTP_METHOD.match(data):
            head = read_http_head(conn, 2.0)
            if head:
                record.update(method=head[0], path=head[1], host=head[2].get("host"))
            log(**record)
            http_response(conn, 200, banner)
            finish(conn)
            return
        log(**record)
        conn.sendall(banner.encode())
        finish(conn)
    except OSError as e:
        record["error"] = str(e)
        log(**record)
        conn.close()

def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1024)
    return s

def accept_loop(s, port):
    while True:
        conn, peer = s.accept()
        threading.Thread(target=handle, args=(conn, peer, port), daemon=True).start()

socks = [(listener(p), p) for p in PORTS]
threads = [threading.Thread(target=accept_loop, args=(s, p), daemon=True) for s, p in socks]
for t in threads:
    t.start()
log(kind="ready", origin=NAME, ports=PORTS)
for t in threads:
    t.join()
`}`;

export const GIT_ORIGIN_PY = `${COMMON_PY}${String.raw`
import base64, http.server, subprocess, tempfile

CONF = json.load(open(sys.argv[1]))
NAME, USER, PASSWORD, REPO = CONF["name"], CONF["user"], CONF["password"], CONF["repo"]
ROOT = "/srv/git"
REALM = "git at %s" % NAME

def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

def make_repository():
    work = tempfile.mkdtemp(prefix="work-")
    for rel, content in CONF["files"].items():
        path = os.path.join(work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
    git("init", "-q", "-b", "main", work)
    git("add", "-A", cwd=work)
    git("-c", "user.name=Clawker E2E", "-c", "user.email=e2e@clawker.invalid", "commit", "-q", "-m", "initial", cwd=work)
    os.makedirs(ROOT, exist_ok=True)
    git("clone", "-q", "--bare", work, os.path.join(ROOT, REPO + ".git"))

def check_auth(header):
    """("none" | "ok" | "wrong", the user name presented or None). Never logs the password."""
    if not header:
        return "none", None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "wrong", None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeError):
        return "wrong", None
    return ("ok" if sep and user == USER and password == PASSWORD else "wrong"), user

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def serve(self):
        path, _, query = self.path.partition("?")
        body = self.read_body()
        auth, user = check_auth(self.headers.get("Authorization"))
        record = {"kind": "request", "origin": NAME, "method": self.command, "path": path, "query": query or None,
                  "peer": self.client_address[0], "peerPort": self.client_address[1], "sni": getattr(self.connection, "sni", None),
                  "host": self.headers.get("Host"), "auth": auth, "user": user, "gitProtocol": self.headers.get("Git-Protocol"),
                  "userAgent": self.headers.get("User-Agent")}
        if auth != "ok":
            log(status=401, **record)
            self.reply(401, [("WWW-Authenticate", 'Basic realm="%s"' % REALM), ("Content-Type", "text/plain")], b"authentication required\n")
            return
        if not path.startswith("/%s.git/" % REPO):
            log(status=404, **record)
            self.reply(404, [("Content-Type", "text/plain")], b"no such repository\n")
            return
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": ROOT, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "REQUEST_METHOD": self.command, "QUERY_STRING": query, "REMOTE_USER": user,
               "REMOTE_ADDR": self.client_address[0], "CONTENT_TYPE": self.headers.get("Content-Type") or "",
               "CONTENT_LENGTH": str(len(body))}
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "HTTP_GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers.get(header)
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep, n = out.find(b"\r\n\r\n"), 4
        if sep < 0:
            sep, n = out.find(b"\n\n"), 2
        head, payload = (out[:sep], out[sep + n:]) if sep >= 0 else (b"", out)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.strip().lower() == "status":
                status = int(v.strip().split(" ")[0])
            elif k.strip() and k.strip().lower() != "content-length":
                headers.append((k.strip(), v.strip()))
        log(status=status, **record)
        self.reply(status, headers, payload)

    do_GET = serve
    do_POST = serve

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The handshake here, in the connection's own thread: a slow client holds up no one else.
        request.settimeout(30)
        try:
            tls = CONTEXT.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(kind="tls-error", origin=NAME, peer=client_address[0], error=str(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

def remember_sni(sock, server_name, ctx):
    try:
        sock.sni = server_name
    except AttributeError:
        pass

CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CONTEXT.load_cert_chain(CONF["cert"], CONF["key"])
CONTEXT.set_alpn_protocols(["http/1.1"])
CONTEXT.sni_callback = remember_sni
make_repository()
server = Server(("0.0.0.0", 443), Handler)
log(kind="ready", origin=NAME, ports=[443], repo="/%s.git" % REPO)
server.serve_forever()
`}`;

export const ENVOY_PY = `#!/usr/bin/env python3
# The Envoy stand-in of Clawker's end-to-end suite: see test/e2e/internet-scripts.ts.
${COMMON_PY}${CLIENT_HELLO_PY}${String.raw`
try:
    import yaml
except ImportError:
    yaml = None

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
DIRECT_RESPONSE = "envoy.filters.network.direct_response"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
UDP_PROXY = "envoy.filters.udp_listener.udp_proxy"
LISTENER_FILTERS_TIMEOUT = 15.0  # Envoy's default listener_filters_timeout
POLL = 0.2

def config_path(argv):
    for i, a in enumerate(argv):
        if a in ("-c", "--config-path") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--config-path="):
            return a.split("=", 1)[1]
    return None

CONFIG = config_path(sys.argv[1:])
if not CONFIG:
    log(kind="fatal", error="no -c <config> among the arguments", argv=sys.argv[1:])
    sys.exit(1)
CONFIG_DIR = os.path.dirname(CONFIG)

def load_bootstrap():
    if yaml is None:
        return {}
    with open(CONFIG) as f:
        return yaml.safe_load(f) or {}

def watched_path(bootstrap, key, default):
    try:
        return bootstrap["dynamic_resources"][key]["path_config_source"]["path"]
    except (KeyError, TypeError):
        return os.path.join(CONFIG_DIR, default)

def port_of(listener):
    sa = listener.get("address", {}).get("socket_address", {})
    return int(sa.get("port_value", 0)), sa.get("protocol", "TCP").upper()

# ----------------------------------------------------------------------------------------------
# Filter chain selection, as Envoy's FilterChainManager does it: the most specific server name
# (exact, then *.suffix from the longest suffix, then chains without server_names); within that
# level only, the transport protocol (chains without one match any). No match: the connection is
# closed without a response.
# ----------------------------------------------------------------------------------------------

def select_chain(chains, sni, transport):
    by_name = {}
    for chain in chains:
        names = (chain.get("filter_chain_match") or {}).get("server_names") or [""]
        for n in names:
            key = n.lower()
            if key.startswith("*."):
                key = key[1:]  # ".example.com"
            by_name.setdefault(key, []).append(chain)
    name = (sni or "").lower()
    level = None
    if name in by_name and name != "":
        level = by_name[name]
    else:
        pos = name.find(".", 1)
        while level is None and 0 <= pos < len(name) - 1:
            level = by_name.get(name[pos:])
            pos = name.find(".", pos + 1)
        if level is None:
            level = by_name.get("")
    if not level:
        return None
    exact = [c for c in level if (c.get("filter_chain_match") or {}).get("transport_protocol") == transport]
    anyt = [c for c in level if not (c.get("filter_chain_match") or {}).get("transport_protocol")]
    return (exact or anyt or [None])[0]

def filter_of(chain, name):
    for f in chain.get("filters", []):
        if f.get("name") == name:
            return f.get("typed_config", {})
    return None

# ----------------------------------------------------------------------------------------------
# HTTP: virtual host by Host (exact, *suffix longest first, prefix* longest first, *), then the
# first matching route.
# ----------------------------------------------------------------------------------------------

def select_vhost(vhosts, host):
    host = (host or "").lower()
    for vh in vhosts:
        if host in [d.lower() for d in vh.get("domains", [])]:
            return vh
    best = None
    for vh in vhosts:
        for d in vh.get("domains", []):
            d = d.lower()
            if d != "*" and d.startswith("*") and host.endswith(d[1:]) and len(host) > len(d) - 1:
                if best is None or len(d) > best[0]:
                    best = (len(d), vh)
    if best:
        return best[1]
    for vh in vhosts:
        for d in vh.get("domains", []):
            d = d.lower()
            if d != "*" and d.endswith("*") and host.startswith(d[:-1]) and len(host) > len(d) - 1:
                if best is None or len(d) > best[0]:
                    best = (len(d), vh)
    if best:
        return best[1]
    for vh in vhosts:
        if "*" in vh.get("domains", []):
            return vh
    return None

def string_matches(sm, value):
    if "exact" in sm:
        return value == sm["exact"]
    if "prefix" in sm:
        return value.startswith(sm["prefix"])
    if "safe_regex" in sm:
        return re.fullmatch(sm["safe_regex"]["regex"], value) is not None
    return False

def route_matches(route, method, path):
    m = route.get("match", {})
    p = path.split("?", 1)[0]
    if "prefix" in m:
        ok = p.startswith(m["prefix"])
    elif "path" in m:
        ok = p == m["path"]
    elif "safe_regex" in m:
        ok = re.fullmatch(m["safe_regex"]["regex"], p) is not None
    else:
        ok = False
    for h in m.get("headers", []):
        if h.get("name") == ":method" and not string_matches(h.get("string_match", {}), method):
            ok = False
    return ok

def http_decision(hcm, method, path, host, port):
    """(status, body, vhost, route name, cluster) for one request, as the rendered route configuration
    says. A route to a cluster is answered here (200, envoy:<port>): the stand-in does not proxy."""
    if hcm.get("path_with_escaped_slashes_action") == "REJECT_REQUEST" and re.search(r"%2f|%5c", path, re.I):
        return 400, "Bad Request\n", None, None, None
    if hcm.get("merge_slashes"):
        path = re.sub(r"/{2,}", "/", path)
    vh = select_vhost(hcm.get("route_config", {}).get("virtual_hosts", []), host)
    if vh is None:
        return 404, "", None, None, None
    for route in vh.get("routes", []):
        if route_matches(route, method, path):
            if "direct_response" in route:
                dr = route["direct_response"]
                return int(dr.get("status", 200)), dr.get("body", {}).get("inline_string", ""), vh.get("name"), route.get("name"), None
            return 200, "envoy:%d\n" % port, vh.get("name"), route.get("name"), route.get("route", {}).get("cluster")
    return 404, "", vh.get("name"), None, None

# ----------------------------------------------------------------------------------------------
# Access logs: the json_format of the rendered access_log, with the command operators it uses.
# Typed as Envoy's JSON formatter types them (numbers for codes and byte counts, null when unset).
# Written only where the configuration has an access log (HCM requests, tcp_proxy connections),
# as Envoy does; they carry no "kind", which tells them from the stand-in's own records.
# ----------------------------------------------------------------------------------------------

OPERATOR = re.compile(r"%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::\d+)?%")

def operator_value(name, arg, ctx):
    if name in ("REQ", "REQUEST_HEADER"):
        for h in (arg or "").split("?"):
            v = ctx.get("headers", {}).get(h.strip().lower())
            if v is not None:
                return v
        return None
    return ctx.get(name)

def render_format(template, ctx):
    if isinstance(template, dict):
        return {k: render_format(v, ctx) for k, v in template.items()}
    if not isinstance(template, str):
        return template
    m = OPERATOR.fullmatch(template)
    if m:
        return operator_value(m.group(1), m.group(2), ctx)
    return OPERATOR.sub(lambda m: "-" if operator_value(m.group(1), m.group(2), ctx) is None else str(operator_value(m.group(1), m.group(2), ctx)), template)

def access_log(configs, ctx):
    for al in configs or []:
        fmt = ((al.get("typed_config") or {}).get("log_format") or {}).get("json_format")
        if fmt is None:
            continue
        line = json.dumps(render_format(fmt, ctx))
        with _log_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

def start_time():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)

# ----------------------------------------------------------------------------------------------
# Listeners and the configuration they come from.
# ----------------------------------------------------------------------------------------------

class State:
    clusters = {}
    ssl_contexts = {}

def upstream_of(cluster_name):
    c = State.clusters.get(cluster_name)
    if not c:
        return None
    try:
        sa = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        return "%s:%s" % (sa["address"], sa["port_value"])
    except (KeyError, IndexError, TypeError):
        return None

def ssl_context(chain):
    ts = chain.get("transport_socket") or {}
    certs = ts.get("typed_config", {}).get("common_tls_context", {}).get("tls_certificates", [])
    if not certs:
        return None, "no certificate in the chain"
    cert, key = certs[0]["certificate_chain"]["filename"], certs[0]["private_key"]["filename"]
    try:
        stamp = (os.stat(cert).st_mtime_ns, os.stat(key).st_mtime_ns)
    except OSError as e:
        return None, "certificate files: %s" % e
    cached = State.ssl_contexts.get((cert, key))
    if cached and cached[0] == stamp:
        return cached[1], None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        return None, "certificate files: %s" % e
    alpn = ts.get("typed_config", {}).get("common_tls_context", {}).get("alpn_protocols")
    if alpn:
        ctx.set_alpn_protocols([p for p in alpn if p != "h2"] or alpn)  # we speak HTTP/1.1 only
    State.ssl_contexts[(cert, key)] = (stamp, ctx)
    return ctx, None

def answer_and_close(stream, status, body):
    http_response(stream, status, body)
    if isinstance(stream, ssl.SSLSocket):
        try:
            stream.settimeout(1)
            stream.unwrap()
        except (ssl.SSLError, OSError):
            pass
        stream.close()
    else:
        finish(stream)

# ----------------------------------------------------------------------------------------------
# Forwarding (CLAWKER_STANDIN_FORWARD=1; the image TestInternet.forwardingEnvoyImage builds):
# allowed traffic goes on to the real origin, as Envoy would send it.
#   tcp_proxy   connect to the cluster's endpoint (resolved with CLAWKER_STANDIN_RESOLVER, the
#               stack's upstream resolver, where the cluster is STRICT_DNS/LOGICAL_DNS) and pipe.
#   HTTP route  to a cluster: the dynamic forward proxy clusters (upstream_https / upstream_http) go
#               to the request's Host (its port, else 443 with a TLS transport socket, else 80);
#               a cluster with endpoints to its first endpoint. With an UpstreamTlsContext: TLS with
#               its sni, else the Host when auto_sni; verified against its trusted_ca file (the
#               system bundle, where the image added the test internet's CA), the name checked when
#               auto_san_validation. Then the request bytes already read, then both ways.
#   Only the connection's FIRST request is routed: follow-up requests on a kept-alive connection
#   are piped to the same upstream unexamined (Envoy routes each one; the stand-in does not parse
#   HTTP after the first request). Nor does it rewrite the request (Envoy adds x-forwarded-proto,
#   x-request-id, …) or speak h2 upstream. UDP listeners still answer themselves.
# ----------------------------------------------------------------------------------------------

FORWARD = os.environ.get("CLAWKER_STANDIN_FORWARD") == "1"
RESOLVER = os.environ.get("CLAWKER_STANDIN_RESOLVER") or None
IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
DFP_CLUSTER = "envoy.clusters.dynamic_forward_proxy"
TLS_SOCKET = "envoy.transport_sockets.tls"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
RELAY_IDLE = 300.0

def _skip_name(b, i):
    while True:
        n = b[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n

def resolve(name):
    """An IPv4 address for name: itself if a literal; else an A query to RESOLVER (UDP, 3 tries of
    2 s); without RESOLVER, the container's own resolver. Raises LookupError."""
    if IPV4.match(name):
        return name
    if not RESOLVER:
        try:
            return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        except OSError as e:
            raise LookupError("%s: %s" % (name, e))
    qid = struct.unpack("!H", os.urandom(2))[0]
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    q += b"\x00" + struct.pack("!2H", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        r = None
        for _ in range(3):
            s.sendto(q, (RESOLVER, 53))
            try:
                while True:
                    data = s.recv(4096)
                    if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                        r = data
                        break
                break
            except socket.timeout:
                continue
    finally:
        s.close()
    if r is None:
        raise LookupError("%s: no answer from %s" % (name, RESOLVER))
    flags, qd, an = struct.unpack("!3H", r[2:8])
    if flags & 0xF:
        raise LookupError("%s: rcode %d from %s" % (name, flags & 0xF, RESOLVER))
    i = 12
    for _ in range(qd):
        i = _skip_name(r, i) + 4
    for _ in range(an):
        i = _skip_name(r, i)
        rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", r[i:i + 10])
        i += 10
        if rtype == 1 and rclass == 1 and rdlen == 4:
            return socket.inet_ntoa(r[i:i + 4])
        i += rdlen
    raise LookupError("%s: no A record from %s" % (name, RESOLVER))

def endpoint_of(cluster):
    """(host, port) of a cluster's first endpoint, or None."""
    try:
        sa = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        return sa["address"], int(sa["port_value"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None

def connect_timeout(cluster):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", str((cluster or {}).get("connect_timeout", "")))
    return float(m.group(1)) if m else 5.0

def split_authority(authority, default_port):
    m = re.fullmatch(r"\[?([^\]]*?)\]?(?::(\d+))?", authority or "")
    if not m or not m.group(1):
        return None, default_port
    return m.group(1).lower().rstrip("."), int(m.group(2)) if m.group(2) else default_port

def upstream_tls_config(cluster):
    ts = cluster.get("transport_socket") or {}
    if ts.get("name") != TLS_SOCKET:
        return None
    return ts.get("typed_config") or {}

def upstream_ssl(cluster, tls, host):
    """(SSLContext, server_hostname) for the cluster's UpstreamTlsContext."""
    options = ((cluster.get("typed_extension_protocol_options") or {}).get(HTTP_OPTIONS) or {}).get("upstream_http_protocol_options") or {}
    sni = tls.get("sni") or (host if options.get("auto_sni") else None)
    validation = (tls.get("common_tls_context") or {}).get("validation_context") or {}
    trusted = (validation.get("trusted_ca") or {}).get("filename")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trusted:
        ctx.load_verify_locations(cafile=trusted)
        ctx.verify_mode = ssl.CERT_REQUIRED
        # Envoy checks the certificate's names only when asked (auto_san_validation here).
        ctx.check_hostname = bool(options.get("auto_san_validation")) and sni is not None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # no validation context: Envoy accepts any certificate
    ctx.set_alpn_protocols(["http/1.1"])  # the stand-in speaks HTTP/1.1 only
    return ctx, sni

def relay(down, up, on_first_up=None, idle=RELAY_IDLE):
    """Pipes both ways until both sides are done (TCP: each EOF passed on as a half-close; TLS on
    either side: the first EOF ends both) or nothing moves for idle seconds. on_first_up gets the
    upstream's first bytes before they go on. Returns {down: bytes from down, up: bytes from up}."""
    peer = {down: up, up: down}
    counts = {down: 0, up: 0}
    reading = {down, up}
    for s in peer:
        s.setblocking(False)
    while reading:
        ready = [s for s in reading if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready = select.select(list(reading), [], [], idle)[0]
            if not ready:
                break
        for s in ready:
            if s not in reading:
                continue
            try:
                data = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                continue
            except (ssl.SSLError, OSError):
                reading.clear()
                break
            p = peer[s]
            if not data:
                reading.discard(s)
                if isinstance(s, ssl.SSLSocket) or isinstance(p, ssl.SSLSocket):
                    reading.clear()
                    break
                try:
                    p.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if s is up and on_first_up is not None:
                on_first_up(data)
                on_first_up = None
            try:
                p.settimeout(30)
                p.sendall(data)
                p.setblocking(False)
            except (ssl.SSLError, OSError):
                reading.clear()
                break
            counts[s] += len(data)
    return counts

def close_quietly(*socks):
    for s in socks:
        if s is None:
            continue
        try:
            if isinstance(s, ssl.SSLSocket):
                s.settimeout(0.5)
                s.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        try:
            s.close()
        except OSError:
            pass

def forward_tcp(conn, rec, ctx, tcp):
    cluster = State.clusters.get(tcp.get("cluster")) or {}
    ep = endpoint_of(cluster)
    up = None
    try:
        if ep is None:
            raise LookupError("no endpoint for cluster %s in cds.json" % tcp.get("cluster"))
        rec["upstreamHost"] = "%s:%d" % ep
        ip = resolve(ep[0])
        up = socket.create_connection((ip, ep[1]), timeout=connect_timeout(cluster))
    except (OSError, LookupError, UnicodeError) as e:
        rec["upstreamError"] = str(e)
        log(**rec)
        ctx.update(RESPONSE_FLAGS="UF")
        access_log(tcp.get("access_log"), ctx)
        conn.close()  # Envoy closes the downstream connection when the upstream cannot be had
        return
    rec["forwarded"] = "%s:%d" % (ip, ep[1])
    log(**rec)
    counts = relay(conn, up)
    ctx.update(UPSTREAM_HOST=rec["forwarded"], BYTES_RECEIVED=counts[conn], BYTES_SENT=counts[up])
    access_log(tcp.get("access_log"), ctx)
    close_quietly(conn, up)

def forward_http(stream, rec, ctx, hcm, cluster_name, host, raw):
    cluster = State.clusters.get(cluster_name) or {}
    tls = upstream_tls_config(cluster)
    if (cluster.get("cluster_type") or {}).get("name") == DFP_CLUSTER:
        target = split_authority(host, 443 if tls is not None else 80)
    else:
        target = endpoint_of(cluster) or (None, 0)

    def local_reply(status, flags, details, error):
        rec.update(status=status, upstreamError=error)
        log(**rec)
        body = "upstream connect error or disconnect/reset before headers. reset reason: %s\n" % details
        ctx.update(RESPONSE_CODE=status, RESPONSE_FLAGS=flags, RESPONSE_CODE_DETAILS=details, BYTES_SENT=len(body))
        access_log(hcm.get("access_log"), ctx)
        answer_and_close(stream, status, body)

    if not cluster:
        return local_reply(503, "NC", "cluster_not_found", "no cluster %s in cds.json" % cluster_name)
    if not target[0]:
        return local_reply(503, "UF", "no_host", "no upstream host for Host %r" % host)
    rec["upstreamHost"] = "%s:%d" % target
    try:
        ip = resolve(target[0])
    except (LookupError, UnicodeError) as e:
        return local_reply(503, "DF", "dns_resolution_failure", str(e))
    up = None
    try:
        up = socket.create_connection((ip, target[1]), timeout=connect_timeout(cluster))
        if tls is not None:
            sslctx, sni = upstream_ssl(cluster, tls, target[0])
            rec["upstreamSni"] = sni
            up = sslctx.wrap_socket(up, server_hostname=sni)
        up.settimeout(30)
        up.sendall(raw)
    except (ssl.SSLError, ssl.CertificateError, OSError) as e:
        close_quietly(up)
        return local_reply(503, "UF", "connection_failure", "%s: %s" % ("TLS" if isinstance(e, ssl.SSLError) else "connect", e))
    rec["forwarded"] = "%s:%d" % (ip, target[1])
    first = {}

    def on_first(data):
        parts = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        first["status"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        rec["status"] = first["status"]
        log(**rec)

    counts = relay(stream, up, on_first)
    ctx.update(UPSTREAM_HOST=rec["forwarded"], BYTES_RECEIVED=len(raw) + counts[stream])
    if "status" not in first:
        # Nothing came back: Envoy answers 503 itself (if the client is still there to hear it).
        close_quietly(up)
        try:
            stream.settimeout(2)
            local_reply(503, "UC", "upstream_reset_before_response_started", "the upstream closed without a response")
        except (ssl.SSLError, OSError):
            close_quietly(stream)
        return
    ctx.update(RESPONSE_CODE=first["status"] or 0, RESPONSE_CODE_DETAILS="via_upstream", BYTES_SENT=counts[up])
    access_log(hcm.get("access_log"), ctx)
    close_quietly(stream, up)

class Listener:
    def __init__(self, resource, static=False):
        self.port, self.protocol = port_of(resource)
        self.static = static
        self.update(resource)
        if self.protocol == "UDP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", self.port))
        if self.protocol != "UDP":
            self.sock.listen(1024)
        self.sock.setblocking(False)

    def update(self, resource):
        self.name = resource.get("name", "")
        self.chains = resource.get("filter_chains", [])
        self.inspector = any(f.get("name") == TLS_INSPECTOR for f in resource.get("listener_filters", []))
        self.udp_cluster = None
        for f in resource.get("listener_filters", []):
            if f.get("name") == UDP_PROXY:
                try:
                    self.udp_cluster = f["typed_config"]["matcher"]["on_no_match"]["action"]["typed_config"]["cluster"]
                except (KeyError, TypeError):
                    pass

    def close(self):
        self.sock.close()

def handle_tcp(lst, conn, peer):
    port, name, chains, inspector = lst.port, lst.name, lst.chains, lst.inspector
    local = conn.getsockname()
    rec = {"kind": "conn", "listener": name, "port": port, "peer": peer[0], "peerPort": peer[1], "local": local[0]}
    ctx = {"START_TIME": start_time(), "DOWNSTREAM_REMOTE_ADDRESS": "%s:%d" % peer[:2], "DOWNSTREAM_LOCAL_ADDRESS": "%s:%d" % local[:2],
           "RESPONSE_FLAGS": "-", "BYTES_RECEIVED": 0, "BYTES_SENT": 0, "RESPONSE_CODE": 0, "headers": {}}
    try:
        transport, hello, data = "raw_buffer", None, None
        if inspector:
            data, hello = peek_client_hello(conn, LISTENER_FILTERS_TIMEOUT)
            if data is None or hello == NEED_MORE:
                rec.update(verdict="timeout")
                log(**rec)
                conn.close()
                return
            if data == b"":
                rec.update(verdict="closed")
                log(**rec)
                conn.close()
                return
            if isinstance(hello, dict):
                transport = "tls"
                rec.update(sni=hello["sni"], alpn=hello["alpn"])
                ctx["REQUESTED_SERVER_NAME"] = hello["sni"]
        rec["transport"] = transport
        chain = select_chain(chains, hello["sni"] if hello else None, transport)
        if chain is None:
            rec.update(verdict="reset")
            log(**rec)
            reset(conn)
            return
        rec["chain"] = chain.get("name")
        tcp = filter_of(chain, TCP_PROXY)
        if tcp is not None:
            rec.update(verdict="accepted", cluster=tcp.get("cluster"), upstream=upstream_of(tcp.get("cluster")))
            if FORWARD:
                forward_tcp(conn, rec, ctx, tcp)
                return
            log(**rec)
            banner = ("envoy:%d\n" % port).encode()
            ctx.update(BYTES_SENT=len(banner), UPSTREAM_CLUSTER=tcp.get("cluster"))
            access_log(tcp.get("access_log"), ctx)
            conn.sendall(banner)
            finish(conn)
            return
        if filter_of(chain, DIRECT_RESPONSE) is not None:
            rec.update(verdict="denied")
            log(**rec)
            conn.close()
            return
        hcm = filter_of(chain, HCM)
        if hcm is None:
            rec.update(verdict="accepted", error="no filter the stand-in knows")
            log(**rec)
            conn.close()
            return
        rec["verdict"] = "accepted"
        stream = conn
        if transport == "tls":
            sslctx, why = ssl_context(chain)
            if sslctx is None:
                rec["tlsError"] = why
                log(**rec)
                reset(conn)
                return
            try:
                conn.settimeout(5)
                stream = sslctx.wrap_socket(conn, server_side=True)
                rec["tls"] = "terminated"
            except (ssl.SSLError, OSError) as e:
                rec["tlsError"] = "handshake: %s" % e
                log(**rec)
                conn.close()
                return
        head = read_http_head(stream, 10.0)
        if head is None:
            rec.update(http="no request")
            log(**rec)
            stream.close()
            return
        method, path, headers, raw = head
        host = headers.get("host", "")
        if lst.static and path.split("?", 1)[0] == "/ready":
            status, body, vhost, route, cluster = 200, "LIVE\n", "admin", "ready", None
        else:
            status, body, vhost, route, cluster = http_decision(hcm, method, path, host, port)
        rec.update(method=method, path=path, host=host, vhost=vhost, route=route, cluster=cluster, status=status)
        ctx.update(ROUTE_NAME=route, UPSTREAM_CLUSTER=cluster, headers={":authority": host or None, ":method": method, ":path": path, **headers})
        if FORWARD and cluster and not lst.static:
            forward_http(stream, rec, ctx, hcm, cluster, host, raw)
            return
        if not lst.static:
            log(**rec)
            ctx.update(RESPONSE_CODE=status, BYTES_SENT=len(body.encode()))
            access_log(hcm.get("access_log"), ctx)
        answer_and_close(stream, status, body)
    except OSError as e:
        rec.update(error=str(e))
        log(**rec)
        try:
            conn.close()
        except OSError:
            pass
    except Exception as e:  # a bug of the stand-in: visible in the records, not only on stderr
        log(kind="error", listener=name, port=port, error="%s: %s" % (type(e).__name__, e))
        try:
            conn.close()
        except OSError:
            pass

def handle_udp(lst):
    try:
        data, peer = lst.sock.recvfrom(65535)
    except (BlockingIOError, OSError):
        return
    log(kind="udp", listener=lst.name, port=lst.port, peer=peer[0], peerPort=peer[1], cluster=lst.udp_cluster,
        upstream=upstream_of(lst.udp_cluster), verdict="accepted")
    try:
        lst.sock.sendto(("envoy-udp:%d" % lst.port).encode(), peer)
    except OSError:
        pass

HEALTH_DEFAULT = {
    "name": "health",
    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9902}},
    "filter_chains": [{"filters": [{"name": HCM, "typed_config": {"route_config": {"virtual_hosts": [
        {"name": "health", "domains": ["*"], "routes": [{"match": {"path": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]}]}}}]}],
}

class Watched:
    def __init__(self, path):
        self.path = path
        self.stamp = None

    def changed(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        return True

    def resources(self):
        with open(self.path) as f:
            return json.load(f).get("resources", [])

def main():
    sel = selectors.DefaultSelector()
    try:
        bootstrap = load_bootstrap()
    except Exception as e:
        log(kind="fatal", error="cannot read %s: %s" % (CONFIG, e))
        sys.exit(1)
    lds = Watched(watched_path(bootstrap, "lds_config", "lds.json"))
    cds = Watched(watched_path(bootstrap, "cds_config", "cds.json"))
    statics = (bootstrap.get("static_resources") or {}).get("listeners") or [HEALTH_DEFAULT]
    listeners = {}  # (protocol, port) -> Listener
    for resource in statics:
        lst = Listener(resource, static=True)
        listeners[(lst.protocol, lst.port)] = lst
        sel.register(lst.sock, selectors.EVENT_READ, lst)
    version, ready = 0, False
    while True:
        if cds.changed():
            try:
                State.clusters = {c.get("name"): c for c in cds.resources()}
            except (OSError, ValueError) as e:
                log(kind="config-error", file=cds.path, error=str(e))
        if lds.changed():
            try:
                wanted = {}
                for resource in lds.resources():
                    port, protocol = port_of(resource)
                    wanted[(protocol, port)] = resource
            except (OSError, ValueError) as e:
                log(kind="config-error", file=lds.path, error=str(e))
                wanted = None
            if wanted is not None:
                for key in [k for k, l in listeners.items() if not l.static and k not in wanted]:
                    lst = listeners.pop(key)
                    sel.unregister(lst.sock)
                    lst.close()
                for key, resource in wanted.items():
                    if key in listeners:
                        listeners[key].update(resource)
                        continue
                    try:
                        lst = Listener(resource)
                    except OSError as e:
                        log(kind="bind-error", port=key[1], protocol=key[0], error=str(e))
                        continue
                    listeners[key] = lst
                    sel.register(lst.sock, selectors.EVENT_READ, lst)
                version += 1
                log(kind="listeners", version=version, ports=sorted(k[1] for k, l in listeners.items() if not l.static and k[0] == "TCP"),
                    udp=sorted(k[1] for k, l in listeners.items() if not l.static and k[0] == "UDP"))
                if not ready:
                    ready = True
                    log(kind="ready", config=CONFIG, lds=lds.path)
        deadline = time.monotonic() + POLL
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(timeout=left):
                lst = key.data
                if lst.protocol == "UDP":
                    handle_udp(lst)
                    continue
                try:
                    conn, peer = lst.sock.accept()
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                threading.Thread(target=handle_tcp, args=(lst, conn, peer), daemon=True).start()

main()
`}`;
