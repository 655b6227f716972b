from tests.backends import db_engine, moto_s3, pg_cluster  # noqa: F401 - shared fixtures
