"""The outbound door refuses targets that are not public, after DNS resolution, unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from aicommons import outbound


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::"])
def test_addresses_that_are_not_public(address):
    assert not outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses(address):
    assert outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["http://localhost:9/", "http://127.0.0.1/", "http://[::1]/", "https://10.0.0.1/x",
                                 "http://169.254.169.254/latest/meta-data", "http://0x7f000001/",
                                 "http://2130706433/"])
def test_private_targets_are_refused_after_resolution(url):
    with pytest.raises(outbound.TargetRefused):
        outbound.resolve(url, allow_private=False)
    assert outbound.resolve(url, allow_private=True)  # an operator may allow them


@pytest.mark.parametrize("url", ["ftp://example.org/", "file:///etc/passwd", "http://user:pw@example.org/",
                                 "https:///nohost", "http://example.org:99999/", "gopher://x/"])
def test_only_plain_http_urls(url):
    with pytest.raises(outbound.TargetRefused):
        outbound.check_url(url)
