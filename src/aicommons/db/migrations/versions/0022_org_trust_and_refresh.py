"""Organisation-managed SSO group mappings and CI trust policies; refresh tokens for device login.

Revision ID: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_group_roles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("group_name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("org_id", "group_name", name="uq_org_group_roles_group"),
    )
    op.create_table(
        "org_trust_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("audience", sa.String(512)),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("repos", sa.JSON, nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("refresh_hash", sa.String(64)))
        batch.add_column(sa.Column("previous_refresh_hash", sa.String(64)))
        batch.create_index("ix_tokens_refresh_hash", ["refresh_hash"], unique=True)
        batch.create_index("ix_tokens_previous_refresh_hash", ["previous_refresh_hash"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_previous_refresh_hash")
        batch.drop_index("ix_tokens_refresh_hash")
        batch.drop_column("previous_refresh_hash")
        batch.drop_column("refresh_hash")
    op.drop_table("org_trust_policies")
    op.drop_table("org_group_roles")
