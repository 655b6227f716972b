"""Collections (ordered items with notes) and webhooks (watches and the delivery log).

Revision ID: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("theme", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_collections_owner", "collections", ["owner_id", "position"])
    op.create_table(
        "collection_items",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("collection_id", sa.String(24), sa.ForeignKey("collections.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("item_type", sa.String(16), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE")),
        sa.Column("paper_id", sa.String(32)),
        sa.Column("target_id", sa.String(24), sa.ForeignKey("collections.id", ondelete="CASCADE")),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("collection_id", "item_key", name="uq_collection_items_key"),
    )
    op.create_index("ix_collection_items_repo", "collection_items", ["repo_id"])
    op.create_index("ix_collection_items_target", "collection_items", ["target_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(256)),
        sa.Column("domains", sa.JSON, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_webhooks_owner", "webhooks", ["owner_id"])
    op.create_table(
        "webhook_watches",
        sa.Column("webhook_id", sa.String(24), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name_lower", sa.String(193), primary_key=True),
        sa.Column("name", sa.String(193), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_webhook_watches_target", "webhook_watches", ["kind", "name_lower"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("webhook_id", sa.String(24), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("response_status", sa.Integer),
        sa.Column("response_body", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_watches")
    op.drop_table("webhooks")
    op.drop_table("collection_items")
    op.drop_table("collections")
