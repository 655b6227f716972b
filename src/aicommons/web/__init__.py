"""The web UI: server-rendered pages to browse, search, read cards, manage repos and tokens,
and try models. Calls hub/ only; signs in with a password and a signed session cookie."""
