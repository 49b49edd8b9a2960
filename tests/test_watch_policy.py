"""The watch address policy, URL normalisation and scheduling rules as pure functions (nothing connects)."""

from __future__ import annotations

import ipaddress

import pytest

from deepdetect.watch.policy import AddressPolicy, PolicyRefusal, address_refusal, embedded_ipv4
from deepdetect.watch.schedule import backoff_seconds, next_due, parse_duration
from deepdetect.watch.store import parse_iso
from deepdetect.watch.urls import UrlError, normalise_url, registrable_domain

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "224.0.0.251": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "private",  # reserved (Python files 240/4 under private too)
    "100.64.0.1": "not global",  # shared address space (CGNAT)
    "192.0.2.10": "private",  # documentation
    "::ffff:10.0.0.1": "private",  # IPv4-mapped
    "::ffff:169.254.169.254": "link-local",
    "::ffff:127.0.0.1": "loopback",
    "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of 169.254.169.254
}
ALLOWED = ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.4.4", "93.184.215.14")


@pytest.mark.parametrize("text", sorted(REFUSED))
def test_internal_addresses_are_refused(text: str) -> None:
    why = address_refusal(ipaddress.ip_address(text))
    assert why is not None and REFUSED[text] in why
    with pytest.raises(PolicyRefusal):
        AddressPolicy().check_addresses("h.example", [text])


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_pass(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text)) is None
    assert AddressPolicy().check_addresses("h.example", [text]) == [text]


def test_embedded_ipv4() -> None:
    assert str(embedded_ipv4(ipaddress.ip_address("::ffff:1.2.3.4"))) == "1.2.3.4"
    assert embedded_ipv4(ipaddress.ip_address("1.2.3.4")) is None
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None


def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"mixed.example": ["8.8.8.8", "10.1.1.1"], "public.example": ["8.8.8.8"]}[host]

    policy = AddressPolicy()
    assert policy.addresses_for("public.example", 443, resolver) == ["8.8.8.8"]
    with pytest.raises(PolicyRefusal, match=r"10\.1\.1\.1: private"):
        policy.addresses_for("mixed.example", 443, resolver)
    with pytest.raises(PolicyRefusal, match="no address"):
        policy.addresses_for("empty.example", 80, lambda h, p: [])
    with pytest.raises(PolicyRefusal, match="non-address"):
        policy.addresses_for("odd.example", 80, lambda h, p: ["not-an-ip"])
    with pytest.raises(PolicyRefusal, match="bad host"):
        policy.addresses_for("a/b", 80, resolver)


def test_allow_list_names_addresses_and_networks() -> None:
    policy = AddressPolicy.with_allowed(["127.0.0.1", "Lab.Example.", "10.9.0.0/16", "::1"])
    assert policy.addresses_for("127.0.0.1", 80) == ["127.0.0.1"]
    assert policy.addresses_for("[::1]", 80) == ["::1"]
    assert policy.addresses_for("lab.example", 80, lambda h, p: ["192.168.0.5"]) == ["192.168.0.5"]
    assert policy.addresses_for("10.9.3.4", 80) == ["10.9.3.4"]
    with pytest.raises(PolicyRefusal):
        policy.addresses_for("10.8.0.1", 80)
    with pytest.raises(PolicyRefusal):
        policy.addresses_for("127.0.0.2", 80)
    with pytest.raises(ValueError, match="not a network"):
        AddressPolicy.with_allowed(["10.0.0.0/99"])


def test_url_normalisation_and_domains() -> None:
    assert normalise_url(" HTTP://Example.COM:80/a b?x=%41&y=%26#frag ") == "http://example.com/a%20b?x=A&y=%26"
    assert normalise_url("https://example.com:443") == "https://example.com/"
    assert normalise_url("https://example.com:8443/%7euser") == "https://example.com:8443/~user"
    assert normalise_url("http://bücher.de/") == "http://xn--bcher-kva.de/"
    assert normalise_url("http://[::FFFF:10.0.0.1]/") == "http://[::ffff:a00:1]/"
    for bad in ("ftp://x.org/", "javascript:alert(1)", "http:///path", "http://a.org/\x00", "", "x" * 5000):
        with pytest.raises(UrlError):
            normalise_url(bad)
    assert registrable_domain("https://www.bbc.co.uk/news") == "bbc.co.uk"
    assert registrable_domain("https://user.github.io/") == "github.io"  # ICANN suffixes only
    assert registrable_domain("http://10.1.2.3/") == "10.1.2.3"
    assert registrable_domain("http://a.b.example.com/") == "example.com"


def test_durations_backoff_and_due_times() -> None:
    assert parse_duration("15m") == 900 and parse_duration("90") == 90 and parse_duration("2h") == 7200
    for bad in ("0", "soon", "-5m", "1w"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [backoff_seconds(60, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff_seconds(900, 40) == 86400
    now = "2026-01-01T00:00:00.000000Z"
    gap = {
        s: (parse_iso(next_due(s, now, 900, 3)) - parse_iso(now)).total_seconds()
        for s in ("live", "unreachable", "blocked")
    }
    assert gap == {"live": 900, "unreachable": 3600, "blocked": 86400}


def test_status_rules() -> None:
    from deepdetect.watch.check import decide_status
    from deepdetect.watch.fetch import FetchResult, Hop

    def page(code: int | None, outcome: str = "response") -> FetchResult:
        return FetchResult("http://x.example/", outcome, "why", [Hop("http://x.example/", http_status=code)])

    ok = {"status": "ok", "sha256": "a" * 64}
    other = {"status": "ok", "sha256": "b" * 64}
    timeout = {"status": "error", "reason": "timeout"}
    gone = {"status": "removed"}
    base = (ok,)
    assert decide_status(page(200), [ok], ()) == ("live", None, True)
    assert decide_status(page(200), [], ())[0] == "live"
    assert decide_status(page(200), [gone], ())[0] == "removed"
    assert decide_status(page(200), [ok, other], base)[:2] == ("live", None)
    assert decide_status(page(200), [other], base)[0] == "changed"
    assert decide_status(page(200), [], base)[0] == "removed"
    assert decide_status(page(200), [gone], base)[0] == "removed"
    assert decide_status(page(200), [timeout], base)[0] == "unreachable"  # not evidence of removal
    assert decide_status(page(200), [{**other, "known_ref": "r1"}], ({**ok, "known_ref": "r1"},))[0] == "live"
    for code in (404, 410, 451):
        assert decide_status(page(code), [], base)[0] == "removed"
    for code in (500, 503, 403, 302):
        assert decide_status(page(code), [], base)[0] == "unreachable"
    assert decide_status(page(None, "blocked"), [], base)[0] == "blocked"
    assert decide_status(page(None, "unreachable"), [], base)[0] == "unreachable"
