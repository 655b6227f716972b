"""Upload scan results, one row per file content and name.

Revision ID: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_scans",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("scanned_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_scans")
