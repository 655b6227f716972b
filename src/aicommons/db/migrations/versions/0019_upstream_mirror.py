"""Pull-through mirror: repos and namespaces pulled from an upstream hub.

Revision ID: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_repos",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("upstream_url", sa.String(500), nullable=False),
        sa.Column("upstream_id", sa.String(200), nullable=False),
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("revisions", sa.JSON, nullable=True),
    )
    op.create_table(
        "upstream_namespaces",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("upstream_url", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upstream_namespaces")
    op.drop_table("upstream_repos")
