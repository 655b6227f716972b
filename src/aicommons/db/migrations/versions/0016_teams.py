"""Teams: fine-grained and expiring tokens, OAuth device login, organisation roles, invitations and
join requests, follows, single sign-on identities; who created each repo (the "contributor" org
role writes to those).

Revision ID: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None


NEW_COLUMNS = {
    "tokens": [sa.Column("fine_grained", sa.JSON), sa.Column("expires_at", sa.DateTime),
               sa.Column("origin", sa.String(16))],
    "repos": [sa.Column("created_by", sa.Integer)],
}


def upgrade() -> None:
    # Revision 0001 creates its tables from today's tables.py, so a fresh database has these
    # columns already; an older one gets them here.
    inspector = sa.inspect(op.get_bind())
    for table, columns in NEW_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in present:
                op.add_column(table, column)
    op.create_table(
        "device_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code", sa.String(16), nullable=False, unique=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("client_name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(16)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("last_poll_at", sa.DateTime),
    )
    op.create_table(
        "org_invitations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(256)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_org_invitations_org_id", "org_invitations", ["org_id"])
    op.create_table(
        "org_join_requests",
        sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("followee_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_follows_followee_id", "follows", ["followee_id"])
    op.create_table(
        "identities",
        sa.Column("issuer", sa.String(512), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identities")
    op.drop_table("follows")
    op.drop_table("org_join_requests")
    op.drop_table("org_invitations")
    op.drop_table("device_codes")
    with op.batch_alter_table("repos") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("origin")
        batch.drop_column("expires_at")
        batch.drop_column("fine_grained")
