#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""edge_certs.py — certificates for the edge tests (python3-cryptography):
a leaf for the edge stand-in (edge_https.py) issued by a CA, good or bad on
purpose, and a CA of its own ("another CA").

  edge_certs.py --ca-cert F --ca-key F --name NAME [--name NAME]...
                [--days N | --expired] --out-cert F --out-key F
      A server certificate for the names (the first is the subject's CN;
      every name is a DNS subjectAltName, an IPv4/IPv6 address an IP one)
      on a new P-256 key, signed by the CA with SHA-256: serverAuth,
      digitalSignature, not a CA, valid from a minute ago for N days
      (default 90); --expired: from 40 days ago to 10 days ago. --out-cert
      gets the chain, leaf then CA (PEM); --out-key the key (PKCS#8 PEM,
      mode 0600).
  edge_certs.py --new-ca [--days N] --out-cert F --out-key F
      A self-signed CA (P-256; CA:TRUE, keyCertSign and cRLSign, default 10
      years) that has nothing to do with the cluster's.

Exit status 2: bad arguments, or a CA certificate or key that cannot be
read.
"""
import argparse
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write(path, data, mode):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def san(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def new_ca(days):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DevOpsLab tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def leaf(ca_cert, ca_key, names, days, expired):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        start, end = now - datetime.timedelta(days=40), now - datetime.timedelta(days=10)
    else:
        start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(days=days)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
         .issuer_name(ca_cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.SubjectAlternativeName([san(n) for n in names]), critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    except x509.ExtensionNotFound:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def main():
    ap = argparse.ArgumentParser(description="certificates for the edge tests")
    ap.add_argument("--new-ca", action="store_true", help="make a self-signed CA")
    ap.add_argument("--ca-cert", help="the issuing CA's certificate (PEM)")
    ap.add_argument("--ca-key", help="the issuing CA's private key (PEM)")
    ap.add_argument("--name", action="append", default=[], help="a name of the leaf (repeat; the first is the CN)")
    ap.add_argument("--days", type=int, help="validity in days (leaf 90, CA 3650)")
    ap.add_argument("--expired", action="store_true", help="a leaf whose validity ended 10 days ago")
    ap.add_argument("--out-cert", required=True)
    ap.add_argument("--out-key", required=True)
    a = ap.parse_args()
    if a.days is not None and a.days < 1:
        ap.error("--days must be 1 or more")
    if a.new_ca:
        if a.ca_cert or a.ca_key or a.name or a.expired:
            ap.error("--new-ca takes only --days, --out-cert and --out-key")
        cert, key = new_ca(a.days or 3650)
        chain = cert.public_bytes(serialization.Encoding.PEM)
    else:
        if not (a.ca_cert and a.ca_key and a.name):
            ap.error("a leaf needs --ca-cert, --ca-key and at least one --name")
        if a.expired and a.days is not None:
            ap.error("--expired and --days exclude each other")
        try:
            with open(a.ca_cert, "rb") as f:
                ca_cert = x509.load_pem_x509_certificate(f.read())
            with open(a.ca_key, "rb") as f:
                ca_key = serialization.load_pem_private_key(f.read(), password=None)
        except (OSError, ValueError, TypeError) as e:
            sys.stderr.write("edge_certs: cannot read the CA (%s, %s): %s\n" % (a.ca_cert, a.ca_key, e))
            return 2
        cert, key = leaf(ca_cert, ca_key, a.name, a.days or 90, a.expired)
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    write(a.out_key, key_pem(key), 0o600)
    write(a.out_cert, chain, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
