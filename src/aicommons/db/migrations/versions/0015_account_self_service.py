"""Self-service accounts: suspension, profile fields, avatars, pending e-mail changes.

Revision ID: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("suspended_at", sa.DateTime))
    op.add_column("accounts", sa.Column("bio", sa.Text))
    op.add_column("accounts", sa.Column("homepage", sa.String(512)))
    op.create_table(
        "avatars",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "email_changes",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("new_email", sa.String(256), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_email_changes_user_id", "email_changes", ["user_id"])


def downgrade() -> None:
    op.drop_table("email_changes")
    op.drop_table("avatars")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("homepage")
        batch.drop_column("bio")
        batch.drop_column("suspended_at")
