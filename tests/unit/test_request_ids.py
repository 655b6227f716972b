"""Which client request id the answer echoes (api/middleware.client_request_id); the live-server
side is in tests/api/test_wire.py, where the HTTP parser refuses CR/LF before the app sees them."""

from aicommons.api.middleware import client_request_id


def test_sane_ids_are_taken_x_request_id_first():
    assert client_request_id([(b"x-request-id", b"custom-id")]) == "custom-id"
    assert client_request_id([(b"x-amzn-trace-id", b"Root=1-a;Parent=b/c+d:e.f")]) == "Root=1-a;Parent=b/c+d:e.f"
    both = [(b"x-amzn-trace-id", b"trace"), (b"x-request-id", b"mine")]
    assert client_request_id(both) == "mine"
    assert client_request_id([(b"x-request-id", b"first"), (b"x-request-id", b"second")]) == "first"
    assert client_request_id([(b"x-request-id", b"x" * 128)]) == "x" * 128
    assert client_request_id([(b"accept", b"*/*")]) is None


def test_anything_else_is_ignored():
    for bad in (b"", b"x" * 129, b"a b", b"a\rb", b"a\nb", b"a\r\nX-Injected: 1", b"a\tb", b"caf\xc3\xa9",
                b"a\x00b", b"<script>", b'"quoted"', b"a,b"):
        assert client_request_id([(b"x-request-id", bad)]) is None, bad
        assert client_request_id([(b"x-amzn-trace-id", bad)]) is None, bad
        assert client_request_id([(b"x-request-id", bad), (b"x-amzn-trace-id", b"ok")]) == "ok", bad
