from tests.backends import moto_s3, pg_cluster  # noqa: F401 - shared fixtures
