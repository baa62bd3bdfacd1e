#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""technitium_sim.py — one Technitium DNS Server (v15.2 HTTP API,
../shared/reference/technitium-apidocs.md), simulated for the DNS tests:
one process is one server, primary or secondary.

The HTTP API (127.0.0.1:--port, GET or POST form data) answers every call
with HTTP 200 and {"status": "ok"|"error"|"invalid-token", ...}:

  * /api/user/login (user, pass) → a session token; /api/user/logout;
    every other call needs it (Authorization: Bearer, or the `token`
    parameter), else status "invalid-token";
  * /api/zones/list, create (Primary, Secondary, Forwarder; a Primary zone
    gets its SOA and NS as Technitium makes them), delete, resync,
    options/get, options/set (zoneTransfer, zoneTransferNetworkACL,
    zoneTransferTsigKeyNames, notify, notifyNameServers, the secondary's
    primary addresses, protocol and TSIG key);
  * /api/zones/records/add, get, update, delete for A, AAAA, CNAME, TXT,
    MX, NS, PTR, SRV (names are full domain names, a wildcard `*.zone`
    included; `zone` optional: the closest zone; `overwrite`; an exact
    duplicate is refused); every change raises the SOA serial;
  * /api/settings/get, /api/settings/set (dnsServerDomain, forwarders,
    forwarderProtocol, recursion, recursionNetworkACL, tsigKeys, and the
    other documented names kept as given), /api/settings/getTsigKeyNames.
Missing or invalid parameters give status "error" with Technitium's
messages ("Parameter 'zone' missing.", .NET's "Requested value 'X' was not
found." for a bad enum, ...).

Real DNS: every zone the server holds is served by a real knotd (Debian's
Knot DNS) on 127.0.0.1:--dns-port, a child of this process (stopped with
it). Primary zones are exported as RFC 1035 zone files under
STATE/zones/ and knotd reloaded after each change (knotc reload), which
also sends NOTIFY to the zone's notify targets. A Secondary zone is a Knot
secondary of its primaryNameServerAddresses ("127.0.0.1:PORT", the
primary's DNS port): a real AXFR, TSIG-signed with tsigKeyName when set;
its serial in /api/zones/list is the one the secondary's knotd serves.
Zone transfer access (zoneTransfer, its ACL and TSIG key names) and notify
targets become knotd ACLs and `notify:`; "zone name servers" stand for the
addresses given with --peer (NS names resolve nowhere here).

Installed into a guest (--install-dir I): the server the DNS step installs
through the guest agent (pve_sim_guests.py technitium_install publishes it
into I with pve_sim.py --technitium-dir). The HTTP port is bound at once
but not listened on (connections are refused, as by a guest where nothing
runs yet: "bound on 127.0.0.1:P"). Once I/installed appears (and its
"time", when the service starts, has come) the server starts as Technitium
does from its systemd unit's environment (I/technitium.env): with a new
state it takes the admin password from the file DNS_SERVER_ADMIN_PASSWORD_FILE
names, dnsServerDomain from DNS_SERVER_DOMAIN and the HTTPS web service
settings (DNS_SERVER_WEB_SERVICE_ENABLE_HTTPS, _HTTPS_PORT,
_TLS_CERTIFICATE_PATH, _TLS_CERTIFICATE_PASSWORD, _HTTP_TO_TLS_REDIRECT);
with an existing state it keeps what it has, as Technitium reads these
variables only when its config file does not exist (the state is written
at the first start even when the web service then fails). A guest path is read
from I by its base name (I/admin.pw, I/web.pfx). It then serves the API
over HTTPS on the same port with the PKCS#12's certificate and key
(converted with openssl's CLI into STATE/web-tls.pem): "listening on
https://127.0.0.1:P". A PKCS#12 openssl cannot open (a wrong password) or
HTTPS not enabled: logged, and the simulator exits 1 (Technitium's web
service does not start).

Usage: technitium_sim.py --port P --dns-port D --state DIR
       [--admin-password-file F | --install-dir I] [--name SERVER]
       [--latency-ms N] [--peer 127.0.0.1:PORT]... [--address-map-file F]
--address-map-file F: lines IP=127.0.0.1:PORT saying where this server's
knotd reaches another server's address (a zone's primaries, its NOTIFY
targets); a mapped address in a transfer ACL stands for that loopback
address. Read whenever knot.conf is written, and knot.conf written anew
when the file changes (a server restarted on new ports is the same address:
the others' knotd follow it, as they would a VM that came back).
State: DIR/technitium.json (zones, records, settings; installed: the admin
password's PBKDF2 hash and the certificate's password), DIR/zones/*.zone,
DIR/knot/ (knot.conf, control socket, knotd's storage), DIR/web-tls.pem.
Every request is recorded (sim_record.py: $TECHNITIUM_SIM_RECORD_DIR/NAME.jsonl
and the suite's technitium-NAME.jsonl) with its authentication but never a
password, token or TSIG secret.
"""
import argparse
import atexit
import base64
import binascii
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_record  # noqa: E402
from envfile import env_file  # noqa: E402

SECRET_PARAMS = ("pass", "newPass", "token", "tsigKeys", "proxyPassword", "sharedSecret",
                 "webServiceTlsCertificatePassword", "dnsTlsCertificatePassword")
TSIG_ALGS = ("hmac-md5.sig-alg.reg.int", "hmac-sha1", "hmac-sha256", "hmac-sha256-128",
             "hmac-sha384", "hmac-sha384-192", "hmac-sha512", "hmac-sha512-256")
KNOT_ALG = {"hmac-md5.sig-alg.reg.int": "hmac-md5", "hmac-sha1": "hmac-sha1",
            "hmac-sha256": "hmac-sha256", "hmac-sha384": "hmac-sha384",
            "hmac-sha512": "hmac-sha512", "hmac-sha256-128": "hmac-sha256",
            "hmac-sha384-192": "hmac-sha384", "hmac-sha512-256": "hmac-sha512"}
ZONE_TYPES = ("Primary", "Secondary", "Stub", "Forwarder", "SecondaryForwarder", "Catalog",
              "SecondaryCatalog")
SIM_ZONE_TYPES = ("Primary", "Secondary", "Forwarder")
FWD_PROTOCOLS = ("Udp", "Tcp", "Tls", "Https", "Quic")
RECURSION = ("Deny", "Allow", "AllowOnlyForPrivateNetworks", "UseSpecifiedNetworkACL")
ZONE_TRANSFER = ("Deny", "Allow", "AllowOnlyZoneNameServers", "UseSpecifiedNetworkACL",
                 "AllowZoneNameServersAndUseSpecifiedNetworkACL")
NOTIFY = ("None", "ZoneNameServers", "SpecifiedNameServers", "BothZoneAndSpecifiedNameServers",
          "SeparateNameServersForCatalogAndMemberZones")
XFR_PROTOCOLS = ("Tcp", "Tls", "Quic")
LABEL_RE = re.compile(r"(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)")


class ApiError(Exception):
    pass


class InvalidToken(Exception):
    pass


class InstallError(Exception):
    """The installed server's web service cannot start."""


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def enum(value, allowed):
    # Technitium parses enums with Enum.Parse(ignoreCase: true)
    for a in allowed:
        if a.lower() == value.lower():
            return a
    raise ApiError("Requested value '%s' was not found." % value)


def boolean(value, name):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError("String '%s' was not recognized as a valid Boolean." % value)


def integer(value, lo=0, hi=2 ** 31 - 1):
    try:
        n = int(value)
    except ValueError:
        raise ApiError("The input string '%s' was not in a correct format." % value)
    if not lo <= n <= hi:
        raise ApiError("Value was either too large or too small for an Int32.")
    return n


def domain_name(value):
    d = value.strip().rstrip(".").lower()
    if not d or len(d) > 253 or not all(LABEL_RE.fullmatch(lab) for lab in d.split(".")):
        raise ApiError("Invalid domain name: %s" % value)
    if "*" in d.split(".")[1:]:
        raise ApiError("Invalid domain name: %s" % value)
    return d


def network_acl(value):
    if value.lower() == "false":
        return []
    out = []
    for v in [x.strip() for x in value.split(",") if x.strip()]:
        try:
            ipaddress.ip_network(v.lstrip("!"), strict=False)
        except ValueError:
            raise ApiError("Invalid network address: %s" % v)
        out.append(v)
    return out


def name_server_address(value, protocol):
    """Technitium's name server address format (the docs' "Name Server
    Address Format"); the forwarder protocol must fit it."""
    v = value.strip()
    m = re.fullmatch(r"(\S+?)(?:\s+\((\S+)\))?", v)
    if not m:
        raise ApiError("Invalid name server address: %s" % value)
    host = m.group(1)
    if host.startswith(("https://", "http://")):
        u = urllib.parse.urlsplit(host)
        if not u.hostname:
            raise ApiError("Invalid name server address: %s" % value)
        if protocol not in ("Https",):
            raise ApiError("Forwarder protocol '%s' cannot be used with the DNS-over-HTTPS "
                           "address: %s" % (protocol, value))
        return v
    if protocol == "Https":
        raise ApiError("Forwarder protocol 'Https' requires a DNS-over-HTTPS URL: %s" % value)
    h = host
    mm = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", h)
    if mm:
        ipaddress.IPv6Address(mm.group(1))
        return v
    if h.count(":") > 1:
        try:
            ipaddress.IPv6Address(h)
            return v
        except ValueError:
            raise ApiError("Invalid name server address: %s" % value)
    hp = h.rsplit(":", 1)
    if len(hp) == 2:
        integer(hp[1], 1, 65535)
    try:
        ipaddress.IPv4Address(hp[0])
    except ValueError:
        domain_name(hp[0])
    return v


def split_addr(a):
    """'127.0.0.1:5300' or '127.0.0.1' → (ip, port)."""
    a = a.strip()
    m = re.fullmatch(r"\[?([0-9A-Fa-f:.]+?)\]?(?::(\d+))?", a) if a.count(":") <= 1 or a.startswith("[") \
        else None
    if m:
        ip, port = m.group(1), int(m.group(2) or 53)
    else:
        ip, port = a, 53
    ipaddress.ip_address(ip)
    return ip, port


def password_hash(pw, salt, rounds=10000):
    return hashlib.pbkdf2_hmac("sha256", pw.encode("utf-8"), bytes.fromhex(salt), rounds).hex()


def wait_installed(d):
    """I/installed (JSON), then its "time": when the guest's service starts."""
    marker = os.path.join(d, "installed")
    while True:
        try:
            with open(marker) as f:
                m = json.load(f)
            if isinstance(m, dict):
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    try:
        wait = float(m.get("time") or 0) - time.time()
    except (TypeError, ValueError):
        wait = 0
    if wait > 0:
        time.sleep(min(wait, 60))
    return m


def pkcs12_pem(pfx, password, out):
    """The PKCS#12 file's certificate, chain and key as one PEM file (mode
    0600) for ssl: openssl's CLI, the certificate with the key first (the
    one whose bag has a localKeyID), then the CA certificates."""
    env = dict(os.environ, TECHNITIUM_SIM_PFX_PASS=password)
    pem = b""
    for opts in (["-clcerts", "-nodes"], ["-cacerts", "-nokeys"]):
        cmd = ["openssl", "pkcs12", "-in", pfx, "-passin", "env:TECHNITIUM_SIM_PFX_PASS"] + opts
        r = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0 and b"unsupported" in r.stderr:  # RC2/3DES: OpenSSL 3 wants -legacy
            r = subprocess.run(cmd + ["-legacy"], capture_output=True, env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise InstallError("openssl pkcs12 -in %s %s: %s" % (pfx, " ".join(opts),
                                                                r.stderr.decode("utf-8", "replace").strip()))
        pem += r.stdout
    tmp = out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, out)
    return out


def default_settings(name):
    return {
        "version": "15.2",
        "uptimestamp": now_iso(),
        "dnsServerDomain": name,
        "dnsServerLocalEndPoints": ["0.0.0.0:53", "[::]:53"],
        "defaultRecordTtl": 3600,
        "defaultNsRecordTtl": 14400,
        "defaultSoaRecordTtl": 900,
        "dnsAppsEnableAutomaticUpdate": True,
        "preferIPv6": False,
        "udpPayloadSize": 1232,
        "dnssecValidation": True,
        "enableBlocking": True,
        "tsigKeys": [],
        "recursion": "AllowOnlyForPrivateNetworks",
        "recursionNetworkACL": [],
        "randomizeName": False,
        "qnameMinimization": True,
        "forwarders": None,
        "forwarderProtocol": "Udp",
        "concurrentForwarding": True,
        "forwarderRetries": 3,
        "forwarderTimeout": 2000,
        "forwarderConcurrency": 2,
        "loggingType": "File",
        "logQueries": False,
    }


def rdata_text(rtype, rd):
    if rtype in ("A", "AAAA"):
        return rd["ipAddress"]
    if rtype == "CNAME":
        return rd["cname"] + "."
    if rtype == "NS":
        return rd["nameServer"] + "."
    if rtype == "PTR":
        return rd["ptrName"] + "."
    if rtype == "MX":
        return "%d %s." % (rd["preference"], rd["exchange"])
    if rtype == "SRV":
        return "%d %d %d %s." % (rd["priority"], rd["weight"], rd["port"], rd["target"])
    if rtype == "TXT":
        t = rd["text"]
        parts = t.split("\n") if rd.get("splitText") else [t]
        out = []
        for p in parts:
            b = p.encode("utf-8")
            chunks = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
            for c in chunks:
                s = "".join(ch if 0x20 <= ord(ch) < 0x7f and ch not in '"\\' else
                            ("\\" + ch if ch in '"\\' else "\\%03d" % ord(ch))
                            for ch in c.decode("latin-1"))
                out.append('"%s"' % s)
        return " ".join(out)
    if rtype == "SOA":
        return "%s. %s. %d %d %d %d %d" % (rd["primaryNameServer"], rd["responsiblePerson"], rd["serial"],
                                          rd["refresh"], rd["retry"], rd["expire"], rd["minimum"])
    raise ValueError(rtype)


def _die_with_parent():
    """knotd gets SIGKILL when the simulator dies, even by kill -9
    (prctl PR_SET_PDEATHSIG, tied to the starting thread: only for a knotd
    started by the main thread); SIGTERM and exit stop it through Knot.stop."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


class Knot:
    """knotd, a child of the simulator, serving STATE's zones on 127.0.0.1."""

    def __init__(self, state, dns_port):
        self.dir = os.path.join(state, "knot")
        self.port = dns_port
        os.makedirs(os.path.join(self.dir, "storage"), exist_ok=True)
        self.conf = os.path.join(self.dir, "knot.conf")
        self.sock = os.path.join(self.dir, "knot.sock")
        self.proc = None
        self.log = None

    def write_conf(self, text):
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        subprocess.run(["knotc", "-c", tmp, "conf-check"], check=True, capture_output=True)
        os.replace(tmp, self.conf)

    def start(self):
        self.log = open(os.path.join(self.dir, "knotd.log"), "ab")
        self.proc = subprocess.Popen(["knotd", "-c", self.conf], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread()
                                     else None)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("knotd exited with %s (see %s/knotd.log)" % (self.proc.returncode, self.dir))
            if self.ctl("status", check=False) == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("knotd did not start")

    def ctl(self, *args, check=True):
        r = subprocess.run(["knotc", "-s", self.sock, "-t", "5"] + list(args), capture_output=True)
        if check and r.returncode != 0:
            sys.stderr.write("technitium_sim: knotc %s: %s%s" % (" ".join(args), r.stdout.decode(),
                                                                r.stderr.decode()))
        return r.returncode

    def stop(self):
        p, self.proc = self.proc, None
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def serial(self, zone):
        r = subprocess.run(["kdig", "@127.0.0.1", "-p", str(self.port), "+tcp", "+time=1", "+retry=0",
                            "+short", zone + ".", "SOA"], capture_output=True, text=True)
        f = r.stdout.split()
        return int(f[2]) if r.returncode == 0 and len(f) >= 7 and f[2].isdigit() else None


class Sim:
    def __init__(self, a):
        self.a = a
        self.lock = threading.RLock()
        self.path = os.path.join(a.state, "technitium.json")
        self.zonedir = os.path.join(a.state, "zones")
        os.makedirs(self.zonedir, exist_ok=True)
        self.new_state = not os.path.exists(self.path)
        if not self.new_state:
            with open(self.path) as f:
                self.st = json.load(f)
        else:
            self.st = {"settings": default_settings(a.name), "zones": {}}
        self.password = "admin"
        if a.admin_password_file:
            with open(a.admin_password_file) as f:
                self.password = f.read().rstrip("\n")
        self.sessions = {}
        self.rec = sim_record.Recorder("technitium", a.name,
                                       local_dir=os.environ.get("TECHNITIUM_SIM_RECORD_DIR"))
        self.knot = Knot(a.state, a.dns_port)

    def check_password(self, pw):
        """admin's password: the installed server's (its state keeps a hash), else
        --admin-password-file's (or Technitium's default, admin)."""
        h = self.st.get("admin")
        if h:
            return secrets.compare_digest(password_hash(pw, h["salt"], h["rounds"]), h["hash"])
        return secrets.compare_digest(pw.encode(), self.password.encode())

    # ---- installed into a guest (--install-dir) ----
    def install(self, d):
        """Start as the installed server does (see the module's docstring);
        returns the server side SSLContext for the web service."""
        st = self.st["settings"]
        if self.new_state:
            try:
                with open(os.path.join(d, "technitium.env"), encoding="utf-8") as f:
                    env = env_file(f.read())
            except OSError as e:
                raise InstallError("the environment file: %s" % e)
            pwfile = env.get("DNS_SERVER_ADMIN_PASSWORD_FILE")
            if pwfile:
                try:
                    with open(os.path.join(d, os.path.basename(pwfile)), "rb") as f:
                        pw = f.read().decode("utf-8").rstrip("\r\n")
                except (OSError, UnicodeDecodeError) as e:
                    raise InstallError("DNS_SERVER_ADMIN_PASSWORD_FILE=%s: %s" % (pwfile, e))
                salt = secrets.token_hex(16)
                self.st["admin"] = {"salt": salt, "rounds": 10000, "hash": password_hash(pw, salt)}
            if env.get("DNS_SERVER_DOMAIN"):
                try:
                    st["dnsServerDomain"] = domain_name(env["DNS_SERVER_DOMAIN"])
                except ApiError as e:
                    raise InstallError("DNS_SERVER_DOMAIN: %s" % e)
            w = "DNS_SERVER_WEB_SERVICE_"
            st["webServiceEnableTls"] = env.get(w + "ENABLE_HTTPS", "false").lower() == "true"
            st["webServiceHttpToTlsRedirect"] = env.get(w + "HTTP_TO_TLS_REDIRECT", "false").lower() == "true"
            st["webServiceUseSelfSignedTlsCertificate"] = False
            try:
                st["webServiceTlsPort"] = integer(env.get(w + "HTTPS_PORT") or "53443", 1, 65535)
            except ApiError as e:
                raise InstallError("%sHTTPS_PORT: %s" % (w, e))
            st["webServiceTlsCertificatePath"] = env.get(w + "TLS_CERTIFICATE_PATH") or None
            self.st["webTlsPassword"] = env.get(w + "TLS_CERTIFICATE_PASSWORD", "")
            st["webServiceTlsCertificatePassword"] = "************" if self.st["webTlsPassword"] else None
            self.save()
        if not st.get("webServiceEnableTls"):
            raise InstallError("the HTTPS web service is not enabled (DNS_SERVER_WEB_SERVICE_ENABLE_HTTPS)")
        path = st.get("webServiceTlsCertificatePath")
        if not path:
            raise InstallError("no TLS certificate (DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PATH)")
        pem = pkcs12_pem(os.path.join(d, os.path.basename(path)), self.st.get("webTlsPassword", ""),
                         os.path.join(self.a.state, "web-tls.pem"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(pem)
        except (ssl.SSLError, OSError) as e:
            raise InstallError("the TLS certificate %s: %s" % (path, e))
        return ctx

    # ---- persistence and knotd ----
    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.st, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def zone_file(self, name):
        return os.path.join(self.zonedir, "%s.zone" % (name or "root"))

    def export(self, name, z):
        lines = ["$ORIGIN %s." % name, "; exported by technitium_sim.py"]
        recs = sorted(z["records"].items(), key=lambda kv: (kv[0] != name, kv[0]))
        for owner, rs in recs:
            for r in sorted(rs, key=lambda r: r["type"] != "SOA"):
                if r.get("disabled"):
                    continue
                lines.append("%s. %d IN %s %s" % (owner, r["ttl"], r["type"], rdata_text(r["type"], r["rData"])))
        tmp = self.zone_file(name) + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.zone_file(name))

    def peers(self):
        return [split_addr(p) for p in self.a.peer]

    def address_map(self):
        """--address-map-file: lines IP=127.0.0.1:PORT, the DNS VMs'
        addresses as knotd reaches the other servers here (read at each
        knot.conf, so a test may write it after the servers started)."""
        m = {}
        if self.a.address_map_file and os.path.exists(self.a.address_map_file):
            for line in open(self.a.address_map_file):
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    m[k.strip()] = split_addr(v)
        return m

    def reach(self, addr):
        """(ip, port) knotd uses for an address the API was given."""
        ip, port = split_addr(addr)
        return self.address_map().get(ip, (ip, port))

    def knot_conf(self):
        s = self.st["settings"]
        kd = self.knot.dir
        out = ["server:", "    listen: 127.0.0.1@%d" % self.a.dns_port, "    rundir: %s" % kd,
               "    pidfile: %s/knotd.pid" % kd, "    udp-workers: 1", "    tcp-workers: 1",
               "    background-workers: 1", "", "log:", "  - target: stderr", "    any: info", "",
               "control:", "    listen: %s" % self.knot.sock, "",
               "database:", "    storage: %s/storage" % kd, ""]
        keys = {k["keyName"]: k for k in s.get("tsigKeys", [])}
        if keys:
            out.append("key:")
            for k in keys.values():
                out += ["  - id: %s" % k["keyName"], "    algorithm: %s" % KNOT_ALG[k["algorithmName"]],
                        "    secret: %s" % k["sharedSecret"]]
            out.append("")
        remotes, acls, zones = [], [], []
        for name, z in sorted(self.st["zones"].items()):
            zid = re.sub(r"[^a-z0-9]", "_", name)
            if z.get("disabled") or z["type"] not in ("Primary", "Secondary", "Forwarder"):
                continue
            o = z["options"]
            zacl, notify = [], []
            # zone transfer access
            nets = []
            if o["zoneTransfer"] == "Allow":
                nets = ["0.0.0.0/0", "::/0"]
            if o["zoneTransfer"] in ("AllowOnlyZoneNameServers", "AllowZoneNameServersAndUseSpecifiedNetworkACL"):
                nets += sorted({ip for ip, _ in self.peers()} | ({"127.0.0.1"} if z["type"] == "Secondary" else set()))
                if z["type"] == "Secondary":
                    nets += sorted({split_addr(x)[0] for x in o.get("primaryNameServerAddresses", [])})
            if o["zoneTransfer"] in ("UseSpecifiedNetworkACL", "AllowZoneNameServersAndUseSpecifiedNetworkACL"):
                amap = self.address_map()
                nets += [amap[n][0] if n in amap else n for n in o["zoneTransferNetworkACL"]
                         if not n.startswith("!")]
            tkeys = [k for k in o.get("zoneTransferTsigKeyNames", []) if k in keys]
            if nets and o["zoneTransfer"] != "Deny":
                for i, k in enumerate(tkeys or [None]):
                    aid = "%s_xfr%d" % (zid, i)
                    acls += ["  - id: %s" % aid, "    address: [%s]" % ", ".join(nets), "    action: transfer"]
                    if k:
                        acls.append("    key: %s" % k)
                    zacl.append(aid)
            # notify targets
            targets = []
            if o["notify"] in ("ZoneNameServers", "BothZoneAndSpecifiedNameServers"):
                targets += self.peers()
            if o["notify"] in ("SpecifiedNameServers", "BothZoneAndSpecifiedNameServers"):
                targets += [self.reach(x) for x in o["notifyNameServers"]]
            for i, (ip, port) in enumerate(dict.fromkeys(targets)):
                rid = "%s_notify%d" % (zid, i)
                remotes += ["  - id: %s" % rid, "    address: %s@%d" % (ip, port)]
                notify.append(rid)
            zl = ["  - domain: %s." % name]
            if z["type"] == "Secondary":
                masters = []
                key = o.get("primaryZoneTransferTsigKeyName") or None
                for i, addr in enumerate(o["primaryNameServerAddresses"]):
                    ip, port = self.reach(addr)
                    rid = "%s_primary%d" % (zid, i)
                    remotes += ["  - id: %s" % rid, "    address: %s@%d" % (ip, port)]
                    if key and key in keys:
                        remotes.append("    key: %s" % key)
                    masters.append(rid)
                    aid = "%s_fromprimary%d" % (zid, i)
                    # Technitium's NOTIFY is not TSIG-signed: accepted from the primary's address
                    acls += ["  - id: %s" % aid, "    address: %s" % ip, "    action: notify"]
                    zacl.append(aid)
                zl += ["    master: [%s]" % ", ".join(masters),
                       "    file: %s/storage/%s.secondary.zone" % (kd, zid),
                       "    zonefile-sync: 0"]
            else:
                zl += ["    file: %s" % self.zone_file(name), "    zonefile-sync: -1",
                       "    zonefile-load: whole", "    journal-content: none"]
            if zacl:
                zl.append("    acl: [%s]" % ", ".join(zacl))
            if notify:
                zl.append("    notify: [%s]" % ", ".join(notify))
            zones += zl
        if remotes:
            out += ["remote:"] + remotes + [""]
        if acls:
            out += ["acl:"] + acls + [""]
        if zones:
            out += ["zone:"] + zones + [""]
        return "\n".join(out) + "\n"

    def sync(self, restart=False):
        """Export the zones, rewrite knot.conf and reload (or start) knotd."""
        for name, z in self.st["zones"].items():
            if z["type"] in ("Primary", "Forwarder"):
                self.export(name, z)
        for f in os.listdir(self.zonedir):
            if f.endswith(".zone") and f[:-5] not in self.st["zones"] and f != "root.zone":
                os.unlink(os.path.join(self.zonedir, f))
        self.knot.write_conf(self.knot_conf())
        if restart or self.knot.proc is None or self.knot.proc.poll() is not None:
            self.knot.stop()
            self.knot.start()
        else:
            self.knot.ctl("reload")

    # ---- helpers over zones and records ----
    def find_zone(self, domain, zone=None):
        zones = self.st["zones"]
        if zone is not None:
            zn = domain_name(zone)
            if zn not in zones:
                raise ApiError("No such zone was found: %s" % zn)
            if domain != zn and not domain.endswith("." + zn):
                raise ApiError("The domain name does not belong to the zone: %s" % domain)
            return zn, zones[zn]
        labels = domain.split(".")
        for i in range(len(labels)):
            cand = ".".join(labels[i:])
            if cand in zones:
                return cand, zones[cand]
        raise ApiError("No authoritative zone was found for the domain: %s" % domain)

    def zone_info(self, name, z, full=False):
        info = {"name": name, "type": z["type"], "internal": False, "dnssecStatus": "Unsigned",
                "disabled": z.get("disabled", False)}
        if full:
            info["soaSerial"] = self.serial_of(name, z)
            info["lastModified"] = z["lastModified"]
            if z["type"] == "Primary":
                info["notifyFailed"] = False
                info["notifyFailedFor"] = []
            if z["type"] == "Secondary":
                s = info["soaSerial"]
                info.update({"expiry": z.get("expiry"), "isExpired": False, "syncFailed": s is None})
        return info

    def serial_of(self, name, z):
        if z["type"] == "Secondary":
            return self.knot.serial(name)
        return z["records"][name][0]["rData"]["serial"] if z["type"] != "Forwarder" else \
            z["records"][name][0]["rData"]["serial"]

    def bump(self, name, z):
        z["records"][name][0]["rData"]["serial"] = (z["records"][name][0]["rData"]["serial"] + 1) % (1 << 32)
        z["lastModified"] = now_iso()

    @staticmethod
    def record_json(owner, r):
        out = {"disabled": r.get("disabled", False), "name": owner, "type": r["type"], "ttl": r["ttl"],
               "rData": r["rData"], "dnssecStatus": "Unknown", "lastUsedOn": "0001-01-01T00:00:00"}
        if r.get("comments"):
            out["comments"] = r["comments"]
        return out


def rdata_from(p, rtype, new=False, required=True):
    """The type-specific parameters of records/add (new=False), or the
    current value (update/delete) — or, with new=True, update's new* ones."""
    def need(k):
        if k not in p or p[k] == "":
            raise ApiError("Parameter '%s' missing." % k)
        return p[k]
    if rtype in ("A", "AAAA"):
        v = need("ipAddress") if not new else p.get("newIpAddress") or need("ipAddress")
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            raise ApiError("An invalid IP address was specified.")
        if (rtype == "A") != (ip.version == 4):
            raise ApiError("Invalid IP address for %s record: %s" % (rtype, v))
        return {"ipAddress": str(ip)}
    if rtype == "CNAME":
        return {"cname": domain_name(need("cname"))}
    if rtype == "NS":
        v = need("nameServer") if not new else p.get("newNameServer") or need("nameServer")
        return {"nameServer": domain_name(v)}
    if rtype == "PTR":
        v = need("ptrName") if not new else p.get("newPtrName") or need("ptrName")
        return {"ptrName": domain_name(v)}
    if rtype == "MX":
        if new:
            return {"preference": integer(p.get("newPreference") or p.get("preference") or "1", 0, 65535),
                    "exchange": domain_name(p.get("newExchange") or need("exchange"))}
        return {"preference": integer(need("preference"), 0, 65535), "exchange": domain_name(need("exchange"))}
    if rtype == "TXT":
        v = need("text") if not new else p.get("newText") or need("text")
        rd = {"text": v}
        if p.get("splitText", "false").lower() == "true":
            rd["splitText"] = True
        return rd
    if rtype == "SRV":
        pre = "new" if new else ""
        def g(k):
            kk = pre + k[0].upper() + k[1:] if new else k
            return p.get(kk) or need(k)
        return {"priority": integer(g("priority"), 0, 65535), "weight": integer(g("weight"), 0, 65535),
                "port": integer(g("port"), 0, 65535), "target": domain_name(g("target"))}
    raise ApiError("Record type is not supported by the simulator: %s" % rtype)


RECORD_TYPES = ("A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SRV")
KNOWN_TYPES = RECORD_TYPES + ("DNAME", "DS", "SSHFP", "TLSA", "SVCB", "HTTPS", "URI", "CAA", "ANAME", "FWD",
                              "APP", "SOA", "NAPTR", "RP")


class Api:
    def __init__(self, sim):
        self.sim = sim

    def call(self, path, p, token):
        s = self.sim
        routes = {
            "/api/user/login": (self.login, False), "/api/login": (self.login, False),
            "/api/user/logout": (self.logout, True),
            "/api/user/session/get": (self.session_get, True),
            "/api/zones/list": (self.zones_list, True), "/api/zone/list": (self.zones_list, True),
            "/api/zones/create": (self.zones_create, True),
            "/api/zones/delete": (self.zones_delete, True),
            "/api/zones/resync": (self.zones_resync, True),
            "/api/zones/enable": (self.zones_enable, True),
            "/api/zones/disable": (self.zones_disable, True),
            "/api/zones/options/get": (self.options_get, True),
            "/api/zones/options/set": (self.options_set, True),
            "/api/zones/records/add": (self.records_add, True),
            "/api/zones/records/get": (self.records_get, True),
            "/api/zones/records/update": (self.records_update, True),
            "/api/zones/records/delete": (self.records_delete, True),
            "/api/settings/get": (self.settings_get, True),
            "/api/settings/set": (self.settings_set, True),
            "/api/settings/getTsigKeyNames": (self.tsig_names, True),
        }
        if path not in routes:
            raise LookupError(path)
        fn, auth = routes[path]
        user = None
        if auth:
            if not token or token not in s.sessions:
                raise InvalidToken()
            user = s.sessions[token]
        with s.lock:
            return fn(p, token), user

    @staticmethod
    def need(p, k):
        if k not in p or p[k] == "":
            raise ApiError("Parameter '%s' missing." % k)
        return p[k]

    # ---- user ----
    def login(self, p, _):
        user = self.need(p, "user").lower()
        pw = self.need(p, "pass")
        if user != "admin" or not self.sim.check_password(pw):
            raise ApiError("Invalid username or password for user: %s" % user)
        tok = secrets.token_hex(32)
        self.sim.sessions[tok] = "admin"
        r = {"displayName": "Administrator", "username": "admin", "isSsoUser": False, "totpEnabled": False,
             "token": tok}
        if p.get("includeInfo", "false").lower() == "true":
            st = self.sim.st["settings"]
            r["info"] = {"version": st["version"], "dnsServerDomain": st["dnsServerDomain"],
                         "defaultRecordTtl": st["defaultRecordTtl"],
                         "defaultNsRecordTtl": st["defaultNsRecordTtl"],
                         "defaultSoaRecordTtl": st["defaultSoaRecordTtl"]}
        return r, True

    def logout(self, p, token):
        self.sim.sessions.pop(token, None)
        return None, False

    def session_get(self, p, token):
        return {"displayName": "Administrator", "username": "admin", "token": token}, True

    # ---- zones ----
    def zones_list(self, p, _):
        s = self.sim
        zs = [s.zone_info(n, z, full=True) for n, z in sorted(s.st["zones"].items())]
        if "pageNumber" in p:
            page = integer(p["pageNumber"], 1)
            per = integer(p.get("zonesPerPage") or "10", 1)
            total = max(1, -(-len(zs) // per))
            return {"pageNumber": page, "totalPages": total, "totalZones": len(zs),
                    "zones": zs[(page - 1) * per:page * per]}, False
        return {"zones": zs}, False

    def zones_create(self, p, _):
        s = self.sim
        raw = self.need(p, "zone")
        try:
            net = ipaddress.ip_network(raw, strict=False)
            rev = net.network_address.reverse_pointer.split(".")
            keep = (32 - net.prefixlen) // 8 if net.version == 4 else (128 - net.prefixlen) // 4
            name = ".".join(rev[keep:])
        except ValueError:
            name = domain_name(raw)
            if "*" in name.split("."):
                raise ApiError("Invalid domain name: %s" % raw)
        ztype = enum(self.need(p, "type"), ZONE_TYPES)
        if ztype not in SIM_ZONE_TYPES:
            raise ApiError("Zone type is not supported by the simulator: %s" % ztype)
        if name in s.st["zones"]:
            raise ApiError("Zone already exists: %s" % name)
        st = s.st["settings"]
        z = {"type": ztype, "disabled": False, "lastModified": now_iso(), "records": {},
             "options": {"queryAccess": "Allow", "queryAccessNetworkACL": [],
                         "zoneTransfer": "AllowOnlyZoneNameServers" if ztype == "Primary" else "Deny",
                         "zoneTransferNetworkACL": [], "zoneTransferTsigKeyNames": [],
                         "notify": "ZoneNameServers" if ztype == "Primary" else "None",
                         "notifyNameServers": [], "update": "Deny", "updateNetworkACL": []}}
        if ztype == "Secondary":
            addrs = [x.strip() for x in self.need(p, "primaryNameServerAddresses").split(",") if x.strip()]
            for x in addrs:
                try:
                    split_addr(x)
                except ValueError:
                    raise ApiError("The simulator needs the primary as an IP address (with :port): %s" % x)
            proto = enum(p.get("zoneTransferProtocol") or "Tcp", XFR_PROTOCOLS)
            if proto != "Tcp":
                raise ApiError("Zone transfer protocol is not supported by the simulator: %s" % proto)
            key = p.get("tsigKeyName") or ""
            if key and key not in {k["keyName"] for k in st["tsigKeys"]}:
                raise ApiError("No such TSIG key was found: %s" % key)
            z["options"].update({"primaryNameServerAddresses": addrs, "primaryZoneTransferProtocol": proto,
                                 "primaryZoneTransferTsigKeyName": key or None, "validateZone": False})
            z["expiry"] = now_iso()
        else:
            useDate = p.get("useSoaSerialDateScheme", "false")
            serial = 1
            if boolean(useDate, "useSoaSerialDateScheme"):
                serial = int(datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")) * 100 + 1
            ns = st["dnsServerDomain"]
            z["records"][name] = [
                {"type": "SOA", "ttl": st["defaultSoaRecordTtl"],
                 "rData": {"primaryNameServer": ns, "responsiblePerson": "hostadmin." + name, "serial": serial,
                           "refresh": 900, "retry": 300, "expire": 604800, "minimum": 900,
                           "useSerialDateScheme": useDate.lower() == "true"}},
            ]
            if ztype == "Primary":
                z["records"][name].append({"type": "NS", "ttl": st["defaultNsRecordTtl"],
                                           "rData": {"nameServer": ns}})
            else:
                fwd = p.get("forwarder")
                if p.get("initializeForwarder", "true").lower() == "true":
                    if not fwd:
                        raise ApiError("Parameter 'forwarder' missing.")
                    proto = enum(p.get("protocol") or "Udp", FWD_PROTOCOLS)
                    if fwd != "this-server":
                        name_server_address(fwd, proto)
                    z["fwd"] = {"forwarder": fwd, "protocol": proto}
        s.st["zones"][name] = z
        s.save()
        s.sync()
        return {"domain": name}, False

    def zone_arg(self, p):
        name = domain_name(self.need(p, "zone"))
        if name not in self.sim.st["zones"]:
            raise ApiError("No such zone was found: %s" % name)
        return name, self.sim.st["zones"][name]

    def zones_delete(self, p, _):
        name, _z = self.zone_arg(p)
        del self.sim.st["zones"][name]
        self.sim.save()
        self.sim.sync()
        return None, False

    def zones_enable(self, p, _):
        name, z = self.zone_arg(p)
        z["disabled"] = False
        self.sim.save()
        self.sim.sync()
        return None, False

    def zones_disable(self, p, _):
        name, z = self.zone_arg(p)
        z["disabled"] = True
        self.sim.save()
        self.sim.sync()
        return None, False

    def zones_resync(self, p, _):
        name, z = self.zone_arg(p)
        if z["type"] not in ("Secondary", "SecondaryForwarder", "SecondaryCatalog", "Stub"):
            raise ApiError("Only Secondary, Secondary Forwarder, Secondary Catalog, and Stub zones "
                           "support resync.")
        self.sim.knot.ctl("zone-retransfer", name + ".")
        return None, False

    def options_get(self, p, _):
        s = self.sim
        name, z = self.zone_arg(p)
        r = s.zone_info(name, z)
        o = z["options"]
        r.update({"notifyFailed": False, "notifyFailedFor": [], "queryAccess": o["queryAccess"],
                  "queryAccessNetworkACL": o["queryAccessNetworkACL"]})
        if z["type"] in ("Primary", "Secondary", "Forwarder"):
            r.update({"zoneTransfer": o["zoneTransfer"], "zoneTransferNetworkACL": o["zoneTransferNetworkACL"],
                      "zoneTransferTsigKeyNames": o["zoneTransferTsigKeyNames"], "notify": o["notify"],
                      "notifyNameServers": o["notifyNameServers"], "update": o["update"],
                      "updateNetworkACL": o["updateNetworkACL"]})
        if z["type"] == "Secondary":
            r.update({"primaryNameServerAddresses": o["primaryNameServerAddresses"],
                      "primaryZoneTransferProtocol": o["primaryZoneTransferProtocol"],
                      "primaryZoneTransferTsigKeyName": o["primaryZoneTransferTsigKeyName"],
                      "validateZone": o.get("validateZone", False)})
        if p.get("includeAvailableTsigKeyNames", "false").lower() == "true":
            r["availableTsigKeyNames"] = [k["keyName"] for k in s.st["settings"]["tsigKeys"]]
        if p.get("includeAvailableCatalogZoneNames", "false").lower() == "true":
            r["availableCatalogZoneNames"] = []
        return r, False

    def options_set(self, p, _):
        s = self.sim
        name, z = self.zone_arg(p)
        o = dict(z["options"])
        t = z["type"]
        if "disabled" in p:
            z["disabled"] = boolean(p["disabled"], "disabled")
        if "queryAccess" in p:
            o["queryAccess"] = enum(p["queryAccess"], ("Deny", "Allow", "AllowOnlyPrivateNetworks",
                                                       "AllowOnlyZoneNameServers", "UseSpecifiedNetworkACL",
                                                       "AllowZoneNameServersAndUseSpecifiedNetworkACL"))
        if "queryAccessNetworkACL" in p:
            o["queryAccessNetworkACL"] = network_acl(p["queryAccessNetworkACL"])
        if "zoneTransfer" in p:
            if t not in ("Primary", "Secondary"):
                raise ApiError("Zone transfer option is valid only for Primary and Secondary zones.")
            o["zoneTransfer"] = enum(p["zoneTransfer"], ZONE_TRANSFER)
        if "zoneTransferNetworkACL" in p:
            o["zoneTransferNetworkACL"] = network_acl(p["zoneTransferNetworkACL"])
        if "zoneTransferTsigKeyNames" in p:
            v = p["zoneTransferTsigKeyNames"]
            names = [] if v.lower() == "false" else [x.strip() for x in v.split(",") if x.strip()]
            known = {k["keyName"] for k in s.st["settings"]["tsigKeys"]}
            for n in names:
                if n not in known:
                    raise ApiError("No such TSIG key was found: %s" % n)
            o["zoneTransferTsigKeyNames"] = names
        if "notify" in p:
            v = enum(p["notify"], NOTIFY)
            if v == "SeparateNameServersForCatalogAndMemberZones" or \
                    (t == "Forwarder" and v not in ("None", "SpecifiedNameServers")):
                raise ApiError("The notify option is invalid for %s zones: %s" % (t, v))
            o["notify"] = v
        if "notifyNameServers" in p:
            v = p["notifyNameServers"]
            lst = [] if v.lower() == "false" else [x.strip() for x in v.split(",") if x.strip()]
            for x in lst:
                try:
                    split_addr(x)
                except ValueError:
                    raise ApiError("An invalid IP address was specified: %s" % x)
            o["notifyNameServers"] = lst
        if "update" in p:
            o["update"] = enum(p["update"], ZONE_TRANSFER)
        if "updateNetworkACL" in p:
            o["updateNetworkACL"] = network_acl(p["updateNetworkACL"])
        if t == "Secondary":
            if p.get("primaryNameServerAddresses"):
                addrs = [x.strip() for x in p["primaryNameServerAddresses"].split(",") if x.strip()]
                for x in addrs:
                    try:
                        split_addr(x)
                    except ValueError:
                        raise ApiError("An invalid IP address was specified: %s" % x)
                o["primaryNameServerAddresses"] = addrs
            if p.get("primaryZoneTransferProtocol"):
                v = enum(p["primaryZoneTransferProtocol"], XFR_PROTOCOLS)
                if v != "Tcp":
                    raise ApiError("Zone transfer protocol is not supported by the simulator: %s" % v)
                o["primaryZoneTransferProtocol"] = v
            if "primaryZoneTransferTsigKeyName" in p:
                v = p["primaryZoneTransferTsigKeyName"]
                if v and v not in {k["keyName"] for k in s.st["settings"]["tsigKeys"]}:
                    raise ApiError("No such TSIG key was found: %s" % v)
                o["primaryZoneTransferTsigKeyName"] = v or None
        z["options"] = o
        s.save()
        s.sync()
        return None, False

    # ---- records ----
    def rec_target(self, p):
        s = self.sim
        domain = domain_name(self.need(p, "domain"))
        zname, z = s.find_zone(domain, p.get("zone") or None)
        return domain, zname, z

    def records_add(self, p, _):
        s = self.sim
        domain, zname, z = self.rec_target(p)
        if z["type"] not in ("Primary", "Forwarder"):
            raise ApiError("Cannot add record: zone '%s' is a %s zone." % (zname, z["type"]))
        rtype = self.need(p, "type").upper()
        if rtype not in KNOWN_TYPES:
            raise ApiError("Requested value '%s' was not found." % p["type"])
        if rtype == "SOA":
            raise ApiError("Cannot add SOA record: use the update record call.")
        ttl = integer(p["ttl"], 0) if p.get("ttl") else s.st["settings"]["defaultRecordTtl"]
        overwrite = boolean(p.get("overwrite") or "false", "overwrite")
        rd = rdata_from(p, rtype)
        rs = z["records"].setdefault(domain, [])
        if rtype == "CNAME":
            if domain == zname:
                raise ApiError("Cannot add CNAME record to zone root.")
            if any(r["type"] != "CNAME" for r in rs):
                raise ApiError("Cannot add CNAME record: other records exist for the domain name: %s" % domain)
        elif any(r["type"] == "CNAME" for r in rs):
            raise ApiError("Cannot add record: a CNAME record exists for the domain name: %s" % domain)
        same = [r for r in rs if r["type"] == rtype]
        if overwrite or rtype == "CNAME":
            for r in same:
                rs.remove(r)
        elif any(r["rData"] == rd for r in same):
            raise ApiError("Cannot add record: record already exists.")
        new = {"type": rtype, "ttl": ttl, "rData": rd, "disabled": False}
        if p.get("comments"):
            new["comments"] = p["comments"]
        # Technitium keeps one TTL per RRset
        for r in rs:
            if r["type"] == rtype:
                r["ttl"] = ttl
        rs.append(new)
        s.bump(zname, z)
        s.save()
        s.sync()
        return {"zone": s.zone_info(zname, z), "addedRecord": s.record_json(domain, new)}, False

    def records_get(self, p, _):
        s = self.sim
        domain, zname, z = self.rec_target(p)
        list_zone = boolean(p.get("listZone") or "false", "listZone")
        out = []
        if z["type"] == "Secondary":
            serial = s.knot.serial(zname)
            if serial is not None and domain == zname:
                out.append({"disabled": False, "name": zname, "type": "SOA", "ttl": 900,
                            "rData": {"serial": serial}, "dnssecStatus": "Unknown"})
            return {"zone": s.zone_info(zname, z), "records": out}, False
        for owner, rs in sorted(z["records"].items()):
            if owner == domain or (list_zone and (owner == zname or owner.endswith("." + zname))):
                out += [s.record_json(owner, r) for r in rs]
        return {"zone": s.zone_info(zname, z), "records": out}, False

    def records_update(self, p, _):
        s = self.sim
        domain, zname, z = self.rec_target(p)
        if z["type"] not in ("Primary", "Forwarder"):
            raise ApiError("Cannot update record: zone '%s' is a %s zone." % (zname, z["type"]))
        rtype = self.need(p, "type").upper()
        rs = z["records"].get(domain, [])
        if rtype == "SOA":
            soa = rs[0]
            rd = dict(soa["rData"])
            for k in ("primaryNameServer", "responsiblePerson"):
                rd[k] = domain_name(self.need(p, k))
            for k in ("serial", "refresh", "retry", "expire", "minimum"):
                rd[k] = integer(self.need(p, k), 0, 2 ** 32 - 1)
            soa["rData"] = rd
            if p.get("ttl"):
                soa["ttl"] = integer(p["ttl"], 0)
            z["lastModified"] = now_iso()
            s.save()
            s.sync()
            return {"zone": s.zone_info(zname, z), "updatedRecord": s.record_json(domain, soa)}, False
        if rtype not in RECORD_TYPES:
            raise ApiError("Record type is not supported by the simulator: %s" % rtype)
        if rtype == "CNAME":
            cur = [r for r in rs if r["type"] == "CNAME"]
        else:
            old = rdata_from(p, rtype)
            cur = [r for r in rs if r["type"] == rtype and r["rData"] == old]
        if not cur:
            raise ApiError("Cannot update record: no such record exists.")
        r = cur[0]
        newd = domain_name(p["newDomain"]) if p.get("newDomain") else domain
        if newd != domain and newd != zname and not newd.endswith("." + zname):
            raise ApiError("The domain name does not belong to the zone: %s" % newd)
        rd = rdata_from(p, rtype, new=True)
        target = z["records"].setdefault(newd, [])
        if any(x is not r and x["type"] == rtype and x["rData"] == rd for x in target):
            raise ApiError("Cannot update record: the new record already exists.")
        r["rData"] = rd
        r["ttl"] = integer(p["ttl"], 0) if p.get("ttl") else 3600
        r["disabled"] = boolean(p.get("disable") or "false", "disable")
        if "comments" in p:
            r["comments"] = p["comments"]
        if newd != domain:
            rs.remove(r)
            target.append(r)
            if not rs:
                del z["records"][domain]
        s.bump(zname, z)
        s.save()
        s.sync()
        return {"zone": s.zone_info(zname, z), "updatedRecord": s.record_json(newd, r)}, False

    def records_delete(self, p, _):
        s = self.sim
        domain, zname, z = self.rec_target(p)
        if z["type"] not in ("Primary", "Forwarder"):
            raise ApiError("Cannot delete record: zone '%s' is a %s zone." % (zname, z["type"]))
        rtype = self.need(p, "type").upper()
        if rtype == "SOA":
            raise ApiError("Cannot delete SOA record.")
        rs = z["records"].get(domain, [])
        if rtype == "CNAME":
            gone = [r for r in rs if r["type"] == "CNAME"]
        else:
            if rtype not in RECORD_TYPES:
                raise ApiError("Record type is not supported by the simulator: %s" % rtype)
            # Technitium deletes A/AAAA by ipAddress (or the obsolete `value`)
            if rtype in ("A", "AAAA") and "ipAddress" not in p and p.get("value"):
                p = dict(p, ipAddress=p["value"])
            old = rdata_from(p, rtype)
            gone = [r for r in rs if r["type"] == rtype and
                    {k: v for k, v in r["rData"].items() if k != "splitText"} ==
                    {k: v for k, v in old.items() if k != "splitText"}]
        if not gone:
            raise ApiError("Cannot delete record: no such record exists.")
        for r in gone:
            rs.remove(r)
        if not rs and domain != zname:
            del z["records"][domain]
        s.bump(zname, z)
        s.save()
        s.sync()
        return None, False

    # ---- settings ----
    def settings_get(self, p, _):
        return dict(self.sim.st["settings"]), False

    def tsig_names(self, p, _):
        return {"tsigKeyNames": [k["keyName"] for k in self.sim.st["settings"]["tsigKeys"]]}, False

    def settings_set(self, p, _):
        s = self.sim
        st = dict(s.st["settings"])
        if "dnsServerDomain" in p:
            st["dnsServerDomain"] = domain_name(self.need(p, "dnsServerDomain"))
        proto = enum(p["forwarderProtocol"], FWD_PROTOCOLS) if "forwarderProtocol" in p else st["forwarderProtocol"]
        st["forwarderProtocol"] = proto
        if "forwarders" in p:
            v = p["forwarders"].strip()
            if v.lower() == "false" or v == "":
                st["forwarders"] = None
            else:
                st["forwarders"] = [name_server_address(x, proto) for x in v.split(",") if x.strip()]
        elif st.get("forwarders"):
            for x in st["forwarders"]:
                name_server_address(x, proto)
        if "recursion" in p:
            st["recursion"] = enum(p["recursion"], RECURSION)
        if "recursionNetworkACL" in p:
            st["recursionNetworkACL"] = network_acl(p["recursionNetworkACL"])
        for k in ("defaultRecordTtl", "defaultNsRecordTtl", "defaultSoaRecordTtl", "forwarderRetries",
                  "forwarderTimeout", "forwarderConcurrency"):
            if k in p:
                st[k] = integer(p[k], 0)
        for k in ("preferIPv6", "dnssecValidation", "enableBlocking", "randomizeName", "qnameMinimization",
                  "concurrentForwarding", "logQueries"):
            if k in p:
                st[k] = boolean(p[k], k)
        if "tsigKeys" in p:
            v = p["tsigKeys"]
            keys = []
            if v.lower() != "false" and v != "":
                f = v.split("|")
                if len(f) % 3:
                    raise ApiError("Parameter 'tsigKeys' has an invalid number of values.")
                for i in range(0, len(f), 3):
                    kname = domain_name(f[i]) if f[i] else None
                    if not kname:
                        raise ApiError("TSIG key name cannot be empty.")
                    secret = f[i + 1] or base64.b64encode(secrets.token_bytes(32)).decode()
                    try:
                        base64.b64decode(secret, validate=True)
                    except (binascii.Error, ValueError):
                        raise ApiError("The input is not a valid Base-64 string: %s" % kname)
                    alg = f[i + 2].lower()
                    if alg not in TSIG_ALGS:
                        raise ApiError("TSIG algorithm is not supported: %s" % f[i + 2])
                    keys.append({"keyName": kname, "sharedSecret": secret, "algorithmName": alg})
            st["tsigKeys"] = keys
        # other documented settings are kept as given
        for k, v in p.items():
            if k not in st and k not in ("token", "node") and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", k):
                st[k] = v
        s.st["settings"] = st
        s.save()
        s.sync()
        return dict(st), False


class Handler(http.server.BaseHTTPRequestHandler):
    sim = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.handle_api()

    def do_POST(self):
        self.handle_api()

    def handle_api(self):
        s = self.sim
        u = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            body = self.rfile.read(n)
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            elif ctype.startswith("application/json") and u.path == "/api/settings/set":
                try:
                    for k, v in json.loads(body).items():
                        if isinstance(v, list):
                            v = ",".join(v) if k != "tsigKeys" else "|".join(
                                "%s|%s|%s" % (x["keyName"], x["sharedSecret"], x["algorithmName"]) for x in v)
                        elif isinstance(v, bool):
                            v = "true" if v else "false"
                        elif v is None:
                            v = "false"
                        params[k] = str(v)
                except (ValueError, AttributeError, KeyError, TypeError):
                    pass
        token = None
        a = self.headers.get("Authorization", "")
        if a.startswith("Bearer "):
            token = a[7:].strip()
        token = token or params.get("token")
        if s.a.latency_ms:
            time.sleep(s.a.latency_ms / 1000.0)
        code, auth, login = 200, "none", None
        if u.path in ("/api/user/login", "/api/login"):
            login = "password"
        try:
            resp, user = Api(s).call(u.path, params, token)
            if user:
                auth = "session:%s" % user
            out = {"status": "ok"}
            if resp[0] is not None:
                out["response"] = resp[0]
            if login and resp[1]:
                # Technitium returns the login fields at the top level
                out = dict(resp[0], status="ok")
        except InvalidToken:
            out = {"status": "invalid-token", "errorMessage": "Invalid token or session expired."}
        except ApiError as e:
            out = {"status": "error", "errorMessage": str(e),
                   "stackTrace": "   at DnsServerCore.WebServiceZonesApi (simulated)"}
            if token and token in s.sessions:
                auth = "session:%s" % s.sessions[token]
        except LookupError:
            code, out = 404, None
        except Exception as e:  # a simulator bug: still an HTTP 200 error, as Technitium's catch-all
            import traceback
            traceback.print_exc()
            out = {"status": "error", "errorMessage": "%s: %s" % (type(e).__name__, e)}
        if out is None:
            body = b"<h1>404 Not Found</h1>"
            ctype = "text/html"
        else:
            body = json.dumps(out).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        red = sorted(k for k in params if k in SECRET_PARAMS)
        s.rec.record({"node": s.a.name, "method": self.command, "path": u.path,
                      "params": {k: ("<redacted>" if k in SECRET_PARAMS else v) for k, v in params.items()},
                      "redacted": red, "status": code, "auth": auth, "login": login,
                      "api_status": out["status"] if out else None, "time": time.time()})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_ctx = None  # the installed server's HTTPS

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_ctx is None:
            return sock, addr
        # the handshake happens in the request's thread, on its first read
        sock.settimeout(30)
        try:
            return self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise

    def handle_error(self, request, client_address):
        if self.ssl_ctx is not None and isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return  # a client that refused the certificate, or went away
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="Technitium DNS Server API simulator (tests only)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dns-port", type=int, required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--name", default="dns1")
    ap.add_argument("--admin-password-file")
    ap.add_argument("--install-dir",
                    help="installed into a guest: serve HTTPS once DIR/installed appears (see above)")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--address-map-file",
                    help="lines IP=127.0.0.1:PORT: where knotd reaches a DNS VM's address (transfers, NOTIFY)")
    ap.add_argument("--peer", action="append", default=[],
                    help="IP:PORT of another server's DNS port, standing for the zones' name servers")
    a = ap.parse_args()
    # knotd resolves its paths from its own working directory
    for k in ("state", "install_dir", "address_map_file", "admin_password_file"):
        if getattr(a, k, None):
            setattr(a, k, os.path.abspath(getattr(a, k)))
    os.makedirs(a.state, exist_ok=True)
    if a.install_dir:
        return main_installed(a)
    sim = Sim(a)

    def bye(*_):
        sim.knot.stop()
        os._exit(0)
    atexit.register(sim.knot.stop)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    with sim.lock:
        sim.sync(restart=True)
    Handler.sim = sim
    follow_address_map(sim)
    srv = Server(("127.0.0.1", a.port), Handler)
    print("technitium_sim: %s listening on http://127.0.0.1:%d dns 127.0.0.1:%d knotd pid %d"
          % (a.name, a.port, a.dns_port, sim.knot.proc.pid), flush=True)
    srv.serve_forever()


def main_installed(a):
    """--install-dir: the port bound (not listened on) until the install."""
    knot = []

    def bye(*_):
        for k in knot:
            k.stop()
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    # Without SO_REUSEADDR: no other socket can bind the port meanwhile
    # (Linux lets two SO_REUSEADDR sockets share a port none listens on).
    srv = Server(("127.0.0.1", a.port), Handler, bind_and_activate=False)
    srv.allow_reuse_address = False
    srv.server_bind()
    print("technitium_sim: %s bound on 127.0.0.1:%d (not listening until %s/installed)"
          % (a.name, a.port, a.install_dir), flush=True)
    m = wait_installed(a.install_dir)
    sim = Sim(a)
    knot.append(sim.knot)
    atexit.register(sim.knot.stop)
    try:
        srv.ssl_ctx = sim.install(a.install_dir)
    except InstallError as e:
        print("technitium_sim: %s: the web service did not start: %s" % (a.name, e), file=sys.stderr, flush=True)
        sys.exit(1)
    with sim.lock:
        sim.sync(restart=True)
    Handler.sim = sim
    follow_address_map(sim)
    srv.server_activate()
    print("technitium_sim: %s listening on https://127.0.0.1:%d dns 127.0.0.1:%d knotd pid %d "
          "(installed in VM %s on %s, dnsServerDomain %s)"
          % (a.name, a.port, a.dns_port, sim.knot.proc.pid, m.get("vmid"), m.get("node"),
             sim.st["settings"]["dnsServerDomain"]), flush=True)
    srv.serve_forever()


def follow_address_map(sim):
    """--address-map-file changed: knot.conf anew (a daemon thread)."""
    path = sim.a.address_map_file
    if not path:
        return

    def stamp():
        try:
            st = os.stat(path)
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def watch():
        seen = stamp()
        while True:
            time.sleep(0.2)
            now = stamp()
            if now != seen:
                seen = now
                with sim.lock:
                    sim.sync()
    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    main()
