"""Xet upload accounting: per account and hour, the xorb bytes received and the file bytes rebuilt.

Revision ID: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xet_usage",
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("received_bytes", sa.BigInteger, nullable=False),
        sa.Column("rebuilt_bytes", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("xet_usage")
