#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pve_schema_check.py — check Proxmox VE API requests against the official
API schema (pve-docs api-viewer/apidata.js, as JSON in ../shared/reference).

Used two ways:
  * as a module by pve_sim.py, which validates every request it receives and
    answers a violation the way Proxmox does (HTTP 400 "Parameter
    verification failed." with {"data": null, "errors": {param: message}},
    or 501 "Method 'GET /x' not implemented" for an unknown path/method);
  * as a program that re-checks request records (JSON lines with method,
    path and params, as pve_sim.py writes them into $PVE_SIM_RECORD_DIR):

      pve_schema_check.py --schema FILE RECORD.jsonl...

    It prints every violation and exits 1 if there was one.

The rules follow PVE::JSONSchema (check_prop / check_type / check_format):
unknown parameters are refused unless additionalProperties is set; a missing
non-optional parameter is "property is missing and it is not optional";
booleans are exactly "0" or "1"; integers and numbers by regex; format,
pattern, length, range and enum are checked in that order. Named formats
that matter for our requests are implemented; others are accepted.
"""
import argparse
import ipaddress
import json
import re
import sys
import urllib.parse

MSG_UNKNOWN = ("property is not defined in schema and the schema does not "
               "allow additional properties")
MSG_MISSING = "property is missing and it is not optional"

NODE_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?")
DNS_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
DNS_RE = re.compile(r"(?:%s\.)*%s" % (DNS_LABEL, DNS_LABEL))
URLENC_RE = re.compile(r"[-%a-zA-Z0-9_.!~*'()]*")
USERID_RE = re.compile(r"[^\s:/]+@[A-Za-z][A-Za-z0-9\.\-_]+")
REALM_RE = re.compile(r"[A-Za-z][A-Za-z0-9\.\-_]+")
CONFIGID_RE = re.compile(r"[a-z][a-z0-9_]+")
STORAGEID_RE = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]")
MAC_RE = re.compile(r"(?:[a-fA-F0-9]{2}:){5}[a-fA-F0-9]{2}")
PEM_CERT_RE = re.compile(r"\s*(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+"
                         r"-----END CERTIFICATE-----\s*)+", re.S)
PEM_ANY_RE = re.compile(r"\s*-----BEGIN [A-Z ]+-----\n[A-Za-z0-9+/=\n]+-----END [A-Z ]+-----\s*", re.S)


class FormatError(Exception):
    pass


def _ip(v, version=None):
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        return False
    return version is None or a.version == version


def _cidr(v, version=None):
    try:
        n = ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return "/" in v and (version is None or n.version == version)


def check_named_format(fmt, value):
    """Raise FormatError with Proxmox's wording when value is not of format."""
    if fmt.endswith("-list") and fmt not in ("pve-priv-list",):
        base = fmt[:-5]
        for part in [p for p in re.split(r"[,;\s]+", value) if p]:
            check_named_format(base, part)
        return
    ok = True
    if fmt == "pve-node":
        ok = NODE_RE.fullmatch(value) is not None
        msg = "value does not look like a valid node name"
    elif fmt == "pve-vmid":
        ok = re.fullmatch(r"[1-9][0-9]{2,8}", value) is not None
        msg = "value does not look like a valid VM ID"
    elif fmt == "ip":
        ok, msg = _ip(value), "value does not look like a valid IP address"
    elif fmt == "ipv4":
        ok, msg = _ip(value, 4), "value does not look like a valid IPv4 address"
    elif fmt == "ipv6":
        ok, msg = _ip(value, 6), "value does not look like a valid IPv6 address"
    elif fmt in ("CIDR", "CIDRv4", "CIDRv6"):
        ver = {"CIDRv4": 4, "CIDRv6": 6}.get(fmt)
        ok, msg = _cidr(value, ver), "value does not look like a valid CIDR network"
    elif fmt in ("address", "dns-name"):
        ok = (fmt == "address" and _ip(value)) or DNS_RE.fullmatch(value) is not None
        msg = "value does not look like a valid address: %s" % value
    elif fmt == "urlencoded":
        ok, msg = URLENC_RE.fullmatch(value) is not None, "invalid urlencoded string: %s" % value
    elif fmt == "pve-userid":
        ok, msg = USERID_RE.fullmatch(value) is not None and len(value) < 64, "value '%s' does not look like a valid user name" % value
    elif fmt == "pve-realm":
        ok, msg = REALM_RE.fullmatch(value) is not None, "value '%s' does not look like a valid realm name" % value
    elif fmt == "pve-configid":
        ok, msg = CONFIGID_RE.fullmatch(value) is not None, "invalid configuration ID '%s'" % value
    elif fmt == "pve-storage-id":
        ok, msg = STORAGEID_RE.fullmatch(value) is not None, "storage ID '%s' contains illegal characters" % value
    elif fmt == "mac-addr":
        ok, msg = MAC_RE.fullmatch(value) is not None, "value does not look like a valid MAC address"
    elif fmt == "pem-certificate-chain":
        ok, msg = PEM_CERT_RE.fullmatch(value) is not None, "value does not look like a PEM certificate chain"
    elif fmt == "pem-string":
        ok, msg = PEM_ANY_RE.fullmatch(value) is not None, "value does not look like a PEM string"
    else:
        return  # formats we do not model are accepted (see docs/pve.md)
    if not ok:
        raise FormatError(msg)


def perl_regex(p):
    # Perl's "(?^:...)" (default flags) is Python's "(?:...)".
    return p.replace("(?^:", "(?:")


def check_scalar(schema, value):
    """Return None or the error message for one parameter value (a string)."""
    t = schema.get("type", "string")
    if t == "boolean" and value not in ("0", "1"):
        return "type check ('boolean') failed - got '%s'" % value
    if t == "integer" and not re.fullmatch(r"[+-]?[0-9]+", value):
        return "type check ('integer') failed - got '%s'" % value
    if t == "number" and not re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", value):
        return "type check ('number') failed - got '%s'" % value
    fmt = schema.get("format")
    if isinstance(fmt, str):
        try:
            check_named_format(fmt, value)
        except FormatError as e:
            return "invalid format - %s" % e
    elif isinstance(fmt, dict):
        err = check_property_string(fmt, value)
        if err:
            return "invalid format - %s" % err
    if "pattern" in schema:
        try:
            if re.fullmatch(perl_regex(schema["pattern"]), value) is None:
                return "value does not match the regex pattern"
        except re.error:
            pass
    if "maxLength" in schema and len(value) > int(schema["maxLength"]):
        return "value may only be %s characters long" % schema["maxLength"]
    if "minLength" in schema and len(value) < int(schema["minLength"]):
        return "value must be at least %s characters long" % schema["minLength"]
    if t in ("integer", "number"):
        v = float(value)
        if "maximum" in schema and v > float(schema["maximum"]):
            return "value must have a maximum value of %s" % schema["maximum"]
        if "minimum" in schema and v < float(schema["minimum"]):
            return "value must have a minimum value of %s" % schema["minimum"]
    if "enum" in schema and value not in [str(e) for e in schema["enum"]]:
        return "value '%s' does not have a value in the enumeration '%s'" % (
            value, ", ".join(str(e) for e in schema["enum"]))
    return None


def check_property_string(fmt, value):
    """A Proxmox property string: "[default_key=]v,key=v,..."."""
    default_key = next((k for k, v in fmt.items() if v.get("default_key")), None)
    seen = {}
    for part in value.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
        elif default_key and default_key not in seen:
            k, v = default_key, part
        else:
            return "value without key, but schema does not define a default key"
        sub = fmt.get(k)
        if sub is None:
            return "%s: %s" % (k, MSG_UNKNOWN)
        if "alias" in sub:
            # A key alias names two properties at once ("virtio=MAC" is
            # model=virtio and macaddr=MAC): parse_property_string.
            if sub.get("keyAlias"):
                if sub["keyAlias"] in seen:
                    return "key alias '%s' is already defined" % sub["keyAlias"]
                seen[sub["keyAlias"]] = k
            k, sub = sub["alias"], fmt.get(sub["alias"], {})
        if k in seen:
            return "duplicate key in comma-separated list property: %s" % k
        seen[k] = v
        err = check_scalar(sub, v)
        if err:
            return "%s: %s" % (k, err)
    for k, sub in fmt.items():
        if k not in seen and not sub.get("optional") and "alias" not in sub and "default" not in sub:
            return "%s: %s" % (k, MSG_MISSING)
    return None


class Schema:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tree = json.load(f)
        self.paths = {}
        stack = list(tree)
        while stack:
            n = stack.pop()
            self.paths[n["path"]] = n.get("info", {})
            stack.extend(n.get("children") or [])
        # Segment tries: literal segments win over {param} ones.
        self.templates = [(p, p.strip("/").split("/")) for p in self.paths]

    # Paths whose last parameter takes the rest of the path, slashes and all:
    # pve-storage src/PVE/API2/Storage/Status.pm registers the content
    # subclass with fragmentDelimiter '' ("volume IDs may contain a slash"),
    # which pve-common RESTHandler.pm map_path_to_methods joins back.
    FRAGMENT = ("/nodes/{node}/storage/{storage}/content/{volume}",)

    def match(self, path):
        """Return (template, {param: value}) or (None, None). path is decoded."""
        segs = path.strip("/").split("/") if path.strip("/") else []
        best = None
        for tpl, tsegs in self.templates:
            if tpl in self.FRAGMENT and len(segs) > len(tsegs):
                segs_t = segs[:len(tsegs) - 1] + ["/".join(segs[len(tsegs) - 1:])]
            else:
                segs_t = segs
            if len(tsegs) != len(segs_t) or (tsegs == [""] and segs_t):
                continue
            params, literal = {}, 0
            for t, s in zip(tsegs, segs_t):
                if t.startswith("{") and t.endswith("}"):
                    params[t[1:-1]] = s
                elif t == s:
                    literal += 1
                else:
                    break
            else:
                if best is None or literal > best[2]:
                    best = (tpl, params, literal)
        return (best[0], best[1]) if best else (None, None)

    def method_info(self, tpl, method):
        return self.paths.get(tpl, {}).get(method)

    def validate(self, method, path, params, redacted=()):
        """Validate one request.

        path: the URL path below /api2/json, percent-decoded per segment.
        params: {name: string} (form or query). Returns (status, reason,
        errors, info): status 200 when valid."""
        tpl, path_params = self.match(path)
        info = self.method_info(tpl, method) if tpl else None
        if info is None:
            return 501, "Method '%s %s' not implemented" % (method, path), None, None
        props = (info.get("parameters") or {}).get("properties") or {}
        additional = (info.get("parameters") or {}).get("additionalProperties")
        all_params = dict(params)
        errors = {}
        for k, v in path_params.items():
            if k in all_params and all_params[k] != v:
                errors[k] = "path parameter and request parameter differ"
            all_params[k] = v
        for k, v in all_params.items():
            schema = lookup_param(props, k)
            if schema is None:
                if not additional:
                    errors[k] = MSG_UNKNOWN
                continue
            if k in redacted:
                continue  # a secret the recorder did not keep: present is all we know
            if not isinstance(v, str):
                errors[k] = "type check ('%s') failed" % schema.get("type", "string")
                continue
            if schema.get("type") == "array":
                # JSONSchema.pm: each item against "items"
                err = next(filter(None, (check_scalar(schema.get("items") or {}, x) for x in v.split("\0"))),
                           None)
            elif "\0" in v:
                err = "type check ('%s') failed - got a list" % schema.get("type", "string")
            else:
                err = check_scalar(schema, v)
            if err:
                errors[k] = err
            req = schema.get("requires")
            if isinstance(req, str) and req not in all_params:
                errors[req] = "missing property required by '%s'" % k
        for k, schema in props.items():
            if "[n]" in k or schema.get("optional") or schema.get("alias"):
                continue
            if k not in all_params:
                errors[k] = MSG_MISSING
        if errors:
            return 400, "Parameter verification failed.", errors, info
        return 200, "OK", None, info


INDEXED = re.compile(r"^(.*?)(\d+)$")


def lookup_param(props, name):
    if name in props:
        return props[name]
    m = INDEXED.match(name)
    if m and (m.group(2) == "0" or not m.group(2).startswith("0")) and int(m.group(2)) < 256:
        return props.get(m.group(1) + "[n]")
    return None


def decode_path(raw):
    """Split off /api2/json and percent-decode each segment."""
    p = urllib.parse.urlsplit(raw).path
    for prefix in ("/api2/json", "/api2/extjs"):
        if p.startswith(prefix):
            p = p[len(prefix):]
            break
    return "/".join(urllib.parse.unquote(s) for s in p.split("/")) or "/"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("records", nargs="+")
    a = ap.parse_args(argv)
    schema = Schema(a.schema)
    bad = total = 0
    for f in a.records:
        with open(f, encoding="utf-8") as fh:
            for ln, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                total += 1
                st, reason, errors, _ = schema.validate(rec["method"], decode_path(rec["path"]), rec["params"],
                                                        rec.get("redacted", ()))
                if st != 200:
                    bad += 1
                    print("%s:%d: %s %s: %s %s" % (f, ln, rec["method"], rec["path"], reason,
                                                   json.dumps(errors, sort_keys=True) if errors else ""))
    print("pve_schema_check: %d requests, %d violations" % (total, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
