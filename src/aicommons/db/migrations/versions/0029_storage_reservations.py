"""Quota reservations for uploads in flight (hub/storage_usage.py): parallel uploads of one owner
cannot together pass its quota. Xorbs verified lately by any replica (xet/service.py).

Revision ID: 0029
"""
import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
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
    op.create_table(
        "xet_verified_xorbs",
        sa.Column("xorb_hash", sa.String(64), primary_key=True),
        sa.Column("verified_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_xet_verified_xorbs_verified_at", "xet_verified_xorbs", ["verified_at"])


def downgrade() -> None:
    op.drop_index("ix_xet_verified_xorbs_verified_at", "xet_verified_xorbs")
    op.drop_table("xet_verified_xorbs")
    op.drop_index("ix_storage_reservations_owner", "storage_reservations")
    op.drop_table("storage_reservations")
