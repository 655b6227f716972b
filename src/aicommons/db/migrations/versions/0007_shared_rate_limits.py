"""Inference rate limits shared by replicas: token buckets and in-flight leases.

Revision ID: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "inflight_leases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_inflight_leases_key", "inflight_leases", ["key"])


def downgrade() -> None:
    op.drop_index("ix_inflight_leases_key", "inflight_leases")
    op.drop_table("inflight_leases")
    op.drop_table("rate_buckets")
