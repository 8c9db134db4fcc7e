"""A test certificate authority, for TLS receivers whose certificates fail one check each.

``TestCA(directory)`` makes a CA (its PEM at ``ca.cert_path``, to trust through
``WEBHOOK_CA_BUNDLE``); ``ca.issue(names=[...], valid=(start, end))`` signs a server
certificate for those DNS names or IP addresses. A self-signed certificate needs no CA:
``smtp_servers.make_certificate``.
"""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .smtp_servers import Certificate

KEY_USAGE_CA = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False)
KEY_USAGE_SERVER = x509.KeyUsage(
    digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(directory: Path, name: str, cert: x509.Certificate, key) -> Certificate:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return Certificate(cert_path, key_path)


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class TestCA:
    """A CA of its own for one test; nothing trusts it until a test says so."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "Datafi Test CA"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public_key = self.key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(self.subject).issuer_name(self.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=30))
            .not_valid_after(_now() + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(KEY_USAGE_CA, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.certificate = cert
        self.cert_path = directory / f"{name.replace(' ', '-')}.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, *, names: list[str], name: str = "receiver",
              valid: tuple[datetime.timedelta, datetime.timedelta] | None = None
              ) -> Certificate:
        """A server certificate for ``names``; ``valid`` is (start, end) relative to now
        (default: from an hour ago to a day ahead)."""
        start, end = valid or (-datetime.timedelta(hours=1), datetime.timedelta(days=1))
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() + start).not_valid_after(_now() + end)
            .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(KEY_USAGE_SERVER, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _write(self.directory, name, cert, key)
