"""Pull-through mirror: users' linked upstream tokens (encrypted) and the administrators' policy rules.

Revision ID: 0027
"""
import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_links",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("upstream_url", sa.String(500), primary_key=True),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("upstream_user", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "upstream_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("effect", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pattern", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("effect", "kind", "pattern", name="uq_upstream_rules"),
    )


def downgrade() -> None:
    op.drop_table("upstream_rules")
    op.drop_table("upstream_links")
