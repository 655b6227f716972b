"""The HTTP edge: Hub-compatible endpoints, LFS, and the error mapping. Calls hub/, never SQL."""
