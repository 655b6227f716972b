"""Blob leases (GC safety for in-flight uploads) and the background-job tables.

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_leases",
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("touched_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "job_queue",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_job_queue_next", "job_queue", ["queue", "priority", "id"])
    op.create_table(
        "job_schedule",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("run_at", sa.DateTime, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_job_schedule_due", "job_schedule", ["queue", "run_at"])
    op.create_table(
        "job_data",
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.DateTime),
    )
    op.create_table(
        "job_counters",
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("job_counters", "job_data", "job_schedule", "job_queue", "blob_leases"):
        op.drop_table(name)
