"""Storage accounting per repo (the storage_accounting job's results) and per-owner quotas.

Revision ID: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_usage",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("git_bytes", sa.BigInteger, nullable=False),
        sa.Column("lfs_bytes", sa.BigInteger, nullable=False),
        sa.Column("pending_bytes", sa.BigInteger, nullable=False),
        sa.Column("physical_bytes", sa.BigInteger, nullable=False),
        sa.Column("lfs_files", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_storage_usage_owner", "storage_usage", ["owner_id"])
    op.create_index("ix_repos_owner", "repos", ["owner_id"])
    op.create_table(
        "storage_quotas",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("quota_bytes", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_repos_owner", "repos")
    op.drop_table("storage_quotas")
    op.drop_index("ix_storage_usage_owner", "storage_usage")
    op.drop_table("storage_usage")
