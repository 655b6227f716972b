"""The admin dashboard's rollups and per-day download counts.

``stat_rollups``: small, pre-aggregated figures (requests per minute by status class, inference per
model, storage, the largest and fastest-growing repos and owners, job backlog and failures, scan
verdicts, sign-ups), written by a periodic job and by each server's metrics recorder, so that the
dashboard never scans a big table. ``repo_downloads_daily``: downloads of each repo per UTC day,
written with the batched download counts.

Revision ID: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stat_rollups",
        sa.Column("series", sa.String(48), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("at", sa.DateTime, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index("ix_stat_rollups_series_at", "stat_rollups", ["series", "at"])
    op.create_table(
        "repo_downloads_daily",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("downloads", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("repo_downloads_daily")
    op.drop_index("ix_stat_rollups_series_at", "stat_rollups")
    op.drop_table("stat_rollups")
