"""Whole copies of chunk-stored files in the bucket, for presigned download redirects (issue 11,
hub/bucket_copies.py), and the deletions of retired copies waiting for their URLs to expire.

Revision ID: 0033
"""
import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "download_copies",
        sa.Column("oid", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("ready", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_served_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_download_copies_last_served", "download_copies", ["last_served_at"])
    op.create_table(
        "download_copy_deletions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_download_copy_deletions_due", "download_copy_deletions", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_download_copy_deletions_due", "download_copy_deletions")
    op.drop_table("download_copy_deletions")
    op.drop_index("ix_download_copies_last_served", "download_copies")
    op.drop_table("download_copies")
