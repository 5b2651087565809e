"""TLS on https:// targets (issue 12 §3): version, cipher and the certificate in the facts; a
warning under 14 days, ``check --cert-days N`` (and ``cert_days``) failing under N; a self-signed
or misnamed certificate named. Real ``openssl s_server`` peers with certificates the test makes
(valid, 3.5 days left, self-signed, wrong name), trusted through SSL_CERT_FILE = the test CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from netdiag.probes.identify import certs
from tests.conftest import run_netdiag
from tests.support import identify_peers as peers
from tests.support.schemas import netdiag_json
from tests.support.servers import have


@pytest.fixture(scope="module")
def trust(cert_files) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment that makes netdiag trust the test CA (and nothing else)."""
    return {"SSL_CERT_FILE": str(cert_files["valid"].cert.parent / "ca.pem")}


@pytest.fixture
def server(request, cert_files) -> Iterator[peers.Listening]:  # type: ignore[no-untyped-def]
    if not have("openssl"):
        pytest.skip("needs openssl")
    with peers.start_tls_server(cert_files[request.param]) as listening:
        yield listening


def probe(url: str, *args: str, env: dict[str, str]) -> tuple[int, dict]:
    out = run_netdiag("probe", "--json", "--timeout", "5", *args, url, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    (result,) = netdiag_json(out.stdout)["results"]
    return out.returncode, result


def check(*args: str, env: dict[str, str]) -> tuple[int, dict, str]:
    out = run_netdiag("check", "--json", "--timeout", "5", *args, env=env)
    text = run_netdiag("check", "--timeout", "5", *args, env=env)
    assert out.returncode == text.returncode
    (outcome,) = netdiag_json(out.stdout)["checks"]
    return out.returncode, outcome, text.stdout


@pytest.mark.parametrize("server", ["valid"], indirect=True)
def test_valid_certificate_facts(server, trust) -> None:  # type: ignore[no-untyped-def]
    url = f"https://localhost:{server.port}/"
    code, result = probe(url, env=trust)
    assert (code, result["status"], result["warnings"]) == (0, "ok", []), result
    facts = result["facts"]
    assert facts["tls"] is True and facts["tls_version"] == "TLSv1.3"
    assert facts["cipher"].startswith("TLS_") and facts["cipher_bits"] >= 128
    cert = facts["certificate"]
    assert cert["subject"] == "CN=localhost" and cert["subject_cn"] == "localhost"
    assert cert["sans"] == ["localhost", "127.0.0.1"]
    assert cert["issuer"] == "CN=netdiag test CA" and cert["issuer_cn"] == "netdiag test CA"
    assert cert["days_left"] == 89 and not cert["expired"] and not cert["self_signed"]
    assert cert["host"] == "localhost" and cert["name_matches"] is True
    # --insecure reads the same facts from the DER bytes (cryptography) that a verified
    # handshake hands over decoded (ssl.getpeercert): the two readers agree
    code, insecure = probe(url, "--insecure", env={})
    assert code == 0 and insecure["facts"]["certificate"] == cert
    # by address: the certificate's IP SAN is checked
    code, by_ip = probe(f"https://127.0.0.1:{server.port}/", env=trust)
    assert code == 0 and by_ip["facts"]["certificate"]["name_matches"] is True


@pytest.mark.slow
@pytest.mark.parametrize("server", ["expiring"], indirect=True)
def test_expiring_certificate_warns_and_cert_days_fails(server, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"https://localhost:{server.port}/"
    warning = "certificate CN=localhost expires in 3 days"
    code, result = probe(url, env=trust)
    assert (code, result["status"], result["warnings"]) == (0, "ok", [warning]), result
    assert result["detail"].endswith(f"; warning: {warning}")
    # check: a warning passes (exit 0) and says WARN; --cert-days 7 fails it
    code, outcome, text = check(url, env=trust)
    assert code == 0 and outcome["passed"] and outcome["warnings"] == [warning]
    assert text.startswith(f"WARN {url}: ok ")
    code, outcome, text = check("--cert-days", "7", url, env=trust)
    assert code == 1 and not outcome["passed"] and outcome["status"] == "ok"
    assert outcome["problems"] == [f"{warning}, fewer than 7 (cert_days)"]
    assert text.startswith(f"FAIL {url}: ok ") and "fewer than 7" in text
    code, outcome, _ = check("--cert-days", "2", url, env=trust)
    assert code == 0 and outcome["passed"]
    # the checks file's cert_days, the same way
    checks = tmp_path / "checks.toml"
    checks.write_text(f'[checks.web]\ntarget = "{url}"\ncert_days = 7\n')
    code, outcome, _ = check("-f", str(checks), env=trust)
    assert code == 1 and outcome["problems"] == [f"{warning}, fewer than 7 (cert_days)"]


@pytest.mark.slow
@pytest.mark.parametrize("server", ["self_signed"], indirect=True)
def test_self_signed_certificate_is_named(server, trust) -> None:  # type: ignore[no-untyped-def]
    url = f"https://localhost:{server.port}/"
    code, result = probe(url, env=trust)
    assert code == 1 and (result["status"], result["step"]) == ("error", "tls"), result
    assert result["detail"] == "TLS certificate not trusted: self-signed certificate CN=localhost"
    assert result["facts"]["certificate"]["self_signed"] is True
    assert result["facts"]["tls_verify_code"] == 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    code, _, text = check(url, env=trust)
    assert code == 1 and text.rstrip().endswith(result["detail"])
    code, insecure = probe(url, "--insecure", env=trust)
    assert code == 0 and insecure["facts"]["certificate"]["self_signed"] is True


@pytest.mark.slow
@pytest.mark.parametrize("server", ["wrong_name"], indirect=True)
def test_wrong_name_is_named(server, trust) -> None:  # type: ignore[no-untyped-def]
    code, result = probe(f"https://localhost:{server.port}/", env=trust)
    assert code == 1 and result["status"] == "error"
    assert result["detail"] == (
        "TLS certificate not trusted: certificate for wrong.example, not localhost"
    )
    assert result["facts"]["certificate"]["name_matches"] is False
    # without the CA trusted, the issuer comes first and the name second
    code, result = probe(f"https://localhost:{server.port}/", env={"SSL_CERT_FILE": "/dev/null"})
    assert result["detail"] == (
        "TLS certificate not trusted: certificate CN=wrong.example issued by CN=netdiag test "
        "CA, an issuer not trusted here (for wrong.example, not localhost)"
    )


# --- pure: the certificate readers and wordings ----------------------------------------------


def test_both_certificate_readers_agree(cert_files) -> None:  # type: ignore[no-untyped-def]
    """ssl's decoded form (a verified handshake) and cryptography's DER reading give the same
    facts, for every certificate the tests make."""
    for files in cert_files.values():
        decoded = ssl._ssl._test_decode_cert(str(files.cert))  # the dict getpeercert() gives
        der = ssl.PEM_cert_to_DER_cert(files.cert.read_text())
        for host in ("localhost", "127.0.0.1", "other.example"):
            from_der = certs.facts(der, host)
            from_ssl = certs.from_peercert(decoded, host)
            from_ssl.pop("days_left"), from_der.pop("days_left")  # read a moment apart
            assert from_ssl == from_der, (files.cn, host)


def test_untrusted_wording() -> None:
    base = {
        "subject_cn": "db.example",
        "sans": ["db.example"],
        "issuer_cn": "Corp CA",
        "days_left": 40,
        "expired": False,
        "self_signed": False,
        "name_matches": True,
    }
    assert certs.untrusted(base, 20, "", "db.example") == (
        "certificate CN=db.example issued by CN=Corp CA, an issuer not trusted here"
    )
    expired = {**base, "days_left": -2, "expired": True}
    assert certs.untrusted(expired, 10, "", "db.example") == (
        "certificate CN=db.example expired 2 days ago"
    )
    misnamed = {**base, "sans": ["a", "b", "c", "d"], "name_matches": False}
    assert certs.untrusted(misnamed, 62, "", "x") == "certificate for a, b, c (+1), not x"
    assert certs.untrusted(base, 99, "odd", "db.example") == "certificate CN=db.example: odd"
    assert certs.expiry({**base, "days_left": 1}) == "certificate CN=db.example expires in 1 day"
    assert certs.expiry({**base, "days_left": 0}) == (
        "certificate CN=db.example expires within a day"
    )
