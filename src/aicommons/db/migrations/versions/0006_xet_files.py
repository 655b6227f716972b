"""Xet uploads: the mapping from Xet file hashes to the LFS objects rebuilt from them.

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xet_files",
        sa.Column("file_hash", sa.String(64), primary_key=True),
        sa.Column("oid", sa.String(64), sa.ForeignKey("lfs_objects.oid", ondelete="CASCADE"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("shard", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_xet_files_oid", "xet_files", ["oid"])


def downgrade() -> None:
    op.drop_index("ix_xet_files_oid", "xet_files")
    op.drop_table("xet_files")
