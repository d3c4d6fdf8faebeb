"""MLLP over TLS (mllp.py rule 6; HL7 MLLP, Appendix C, carried over TLS as IHE ITI TF-2 3.2 ATNA
secure node expects): a self-signed CA, a server certificate, a client certificate for mutual
TLS; real sockets, and a real ``careweave mllp --tls-cert --tls-key`` process."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from careweave.gateway import Peer, send_messages, serve_mllp, server_tls
from tests.gateway.conftest import corpus, msa
from tests.support import free_port

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


Key = ec.EllipticCurvePrivateKey


def _issue(
    directory: Path, stem: str, subject: str, issuer: tuple[x509.Name, Key] | None, *, ca: bool = False,
    server: bool = False,
) -> tuple[Path, Path, x509.Name, Key]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, _name(subject), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_cert, _, ca_name, ca_key = _issue(directory, "ca", "careweave test CA", None, ca=True)
    server_cert, server_key, _, _ = _issue(directory, "server", "localhost", (ca_name, ca_key), server=True)
    client_cert, client_key, _, _ = _issue(directory, "client", "PAS RJ1", (ca_name, ca_key))
    return Pki(ca_cert, server_cert, server_key, client_cert, client_key)


def _client(pki: Pki, *, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_certificate:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


async def _ack(payload: bytes, peer: Peer) -> bytes:
    from careweave.hl7v2 import ACCEPTED, build_ack, parse

    seen.append(peer)
    return build_ack(parse(payload), ACCEPTED, timestamp=datetime.datetime(2024, 1, 1), control_id="T1")


seen: list[Peer] = []


async def test_tls_carries_mllp_and_plain_tcp_gets_nothing(pki: Pki) -> None:
    server = await serve_mllp(
        "127.0.0.1", 0, _ack, ssl_context=server_tls(str(pki.server_cert), str(pki.server_key))
    )
    port = server.sockets[0].getsockname()[1]
    try:
        [ack] = await send_messages(
            "127.0.0.1", port, [corpus("adt_a01.hl7")], ssl_context=_client(pki, with_certificate=False)
        )
        assert msa(ack) == ("AA", "RJ1-A01-0001")
        with pytest.raises((ConnectionError, TimeoutError, OSError)):
            await send_messages("127.0.0.1", port, [corpus("adt_a01.hl7")], timeout=2.0)
    finally:
        server.close()


async def test_mutual_tls_refuses_a_client_without_a_certificate(pki: Pki) -> None:
    context = server_tls(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    server = await serve_mllp("127.0.0.1", 0, _ack, ssl_context=context)
    port = server.sockets[0].getsockname()[1]
    seen.clear()
    try:
        with pytest.raises((ConnectionError, OSError)):  # ssl.SSLError is an OSError
            await send_messages(
                "127.0.0.1",
                port,
                [corpus("adt_a01.hl7")],
                ssl_context=_client(pki, with_certificate=False),
                timeout=5.0,
            )
        [ack] = await send_messages(
            "127.0.0.1", port, [corpus("adt_a01.hl7")], ssl_context=_client(pki, with_certificate=True)
        )
        assert msa(ack)[0] == "AA"
        [peer] = seen
        assert peer.tls and peer.certificate is not None
        assert peer.certificate["subject"] == ((("commonName", "PAS RJ1"),),)
    finally:
        server.close()


async def test_careweave_mllp_with_tls_cert_and_key(pki: Pki, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "mllp.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from careweave.cli import main; main()", "mllp", "--port", str(port),
         "--data", str(tmp_path / "data"), "--tls-cert", str(pki.server_cert),
         "--tls-key", str(pki.server_key)],
        cwd=ROOT, env={**os.environ, "CAREWEAVE_LOG_LEVEL": "warning"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                [ack] = await send_messages(
                    "127.0.0.1",
                    port,
                    [corpus("adt_a01.hl7")],
                    ssl_context=_client(pki, with_certificate=False),
                )
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "mllp.log").read_text()
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("careweave mllp did not start")
        assert msa(ack) == ("AA", "RJ1-A01-0001")
    finally:
        process.terminate()
        process.wait(20)
        log.close()
    assert b"HL7 v2 MLLP (TLS) on" in (tmp_path / "mllp.log").read_bytes()
