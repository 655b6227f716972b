"""Global dedup index of the chunk store: eligible chunk hash -> the xorb holding it and its shard.

Revision ID: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xet_dedup_chunks",
        sa.Column("chunk_hash", sa.String(64), primary_key=True),
        sa.Column("xorb_hash", sa.String(64), nullable=False),
        sa.Column("shard", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_xet_dedup_chunks_xorb", "xet_dedup_chunks", ["xorb_hash"])


def downgrade() -> None:
    op.drop_index("ix_xet_dedup_chunks_xorb", "xet_dedup_chunks")
    op.drop_table("xet_dedup_chunks")
