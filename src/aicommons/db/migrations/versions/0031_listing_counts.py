"""Listing pages at scale (issue 14): the precomputed facet counts of public repos, and each
repo's trending score with its index. Both are filled by ``aicommons listings recount`` and the
listing_counts job (hub/listing_counts.py); the migration fills the facet counts once.

Revision ID: 0031
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Revision 0001 creates ``repos`` from today's tables.py, so a fresh database has the column
    # and its index already; an older one gets them here.
    inspector = sa.inspect(op.get_bind())
    if "trending_score" not in {c["name"] for c in inspector.get_columns("repos")}:
        op.add_column("repos", sa.Column("trending_score", sa.BigInteger, nullable=False, server_default="0"))
    with warnings.catch_warnings():  # "skipped reflection of expression-based index ix_repos_type_author"
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        indexes = {i["name"] for i in inspector.get_indexes("repos")}
    if "ix_repos_type_trending" not in indexes:
        op.create_index("ix_repos_type_trending", "repos", ["type", "trending_score", "id"])
    op.create_table(
        "repo_facet_counts",
        sa.Column("type", sa.String(8), primary_key=True),
        sa.Column("facet", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_index("ix_repo_facet_counts_top", "repo_facet_counts", ["type", "facet", "n"])
    from aicommons.db.repos import rebuild_facet_counts

    rebuild_facet_counts(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_repo_facet_counts_top", "repo_facet_counts")
    op.drop_table("repo_facet_counts")
    op.drop_index("ix_repos_type_trending", "repos")
    op.drop_column("repos", "trending_score")
