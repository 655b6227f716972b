"""The ``aicommons`` admin command line."""
