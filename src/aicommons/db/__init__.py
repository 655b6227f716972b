"""Metadata database: SQLAlchemy Core tables and the stores that query them.

One implementation serves SQLite and PostgreSQL; dialect differences (search indexes) live in
``search.py`` and the migrations. Nothing above this package sees SQL or a driver exception.
"""
