"""Discussions and pull requests.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discussions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("num", sa.Integer, nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("is_pull_request", sa.Boolean, nullable=False),
        sa.Column("target_branch", sa.String(256)),
        sa.Column("merge_commit_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
    )
    op.create_table(
        "discussion_events",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("discussion_id", sa.Integer, sa.ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_discussion_events_discussion", "discussion_events", ["discussion_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_discussion_events_discussion", "discussion_events")
    op.drop_table("discussion_events")
    op.drop_table("discussions")
