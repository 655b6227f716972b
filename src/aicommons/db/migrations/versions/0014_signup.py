"""Self-service sign-up: e-mail verification and approval state, one-time links (verification,
password reset, invites), retired names, sign-up attempts per client address.

Revision ID: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing accounts were made by an admin (the CLI): verified and active.
    op.add_column("accounts", sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.true()))
    op.add_column("accounts", sa.Column("status", sa.String(16), nullable=False, server_default="active"))
    op.create_table(
        "one_time_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
        sa.Column("email", sa.String(256)),
        sa.Column("created_by", sa.String(96)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_one_time_links_account", "one_time_links", ["account_id"])
    op.create_table(
        "retired_names",
        sa.Column("name_lower", sa.String(96), primary_key=True),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("account_id", sa.Integer),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("retired_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "signup_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_signup_attempts_client_at", "signup_attempts", ["client", "at"])


def downgrade() -> None:
    op.drop_table("signup_attempts")
    op.drop_table("retired_names")
    op.drop_table("one_time_links")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("status")
        batch.drop_column("email_verified")
