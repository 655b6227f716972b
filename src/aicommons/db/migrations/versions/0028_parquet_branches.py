"""The Parquet conversion of the branches a dataset's owner opts into, besides the default branch
(refs/convert/parquet-branch/<branch>): one row per opted-in branch, with its conversion's state.

Revision ID: 0028
"""
import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parquet_branch_conversions",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("branch", sa.String(255), primary_key=True),
        sa.Column("source_sha", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("converted_sha", sa.String(40), nullable=True),
        sa.Column("partial", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("parquet_branch_conversions")
