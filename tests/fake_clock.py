"""A clock that moves only when a test moves it (``clock.now += 1.5``), for code that takes a
``clock=`` callable (token buckets, TTL caches, admission)."""


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
