"""The domain layer: repos, commits, files, access, cards, search. No HTTP, no SQL strings."""
