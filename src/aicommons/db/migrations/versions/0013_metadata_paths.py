"""Metadata paths that scale (issue 10): per-sort listing indexes, a case-insensitive author index,
and the stored head of each repo's default branch (``repo_heads``).

``repo_heads`` starts empty: a repo's row is written the next time its default branch moves, or the
first time a listing or ``model_info`` needs it (``hub/repos.py``), so the migration walks no git.

Revision ID: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0014"
branch_labels = None
depends_on = None

SORT_INDEXES = {"ix_repos_type_downloads": "downloads", "ix_repos_type_likes": "likes",
                "ix_repos_type_last_modified": "last_modified", "ix_repos_type_created_at": "created_at"}


def upgrade() -> None:
    for name, column in SORT_INDEXES.items():
        op.create_index(name, "repos", ["type", column, "id"])
    op.create_index("ix_repos_type_author", "repos", ["type", sa.text("lower(namespace)"), "created_at", "id"])
    op.create_table(
        "repo_heads",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha", sa.String(40), nullable=False),
        sa.Column("siblings", sa.JSON, nullable=False),
        sa.Column("used_storage", sa.BigInteger, nullable=False),
        sa.Column("git_bytes", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("repo_heads")
    op.drop_index("ix_repos_type_author", "repos")
    for name in SORT_INDEXES:
        op.drop_index(name, "repos")
