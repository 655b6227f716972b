"""Quota reservations for uploads in flight (hub/storage_usage.py): parallel uploads of one owner
cannot together pass its quota.

Revision ID: 0029
"""
import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_reservations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_storage_reservations_owner", "storage_reservations", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_storage_reservations_owner", "storage_reservations")
    op.drop_table("storage_reservations")
