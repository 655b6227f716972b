"""The request id a client sent (``X-Request-Id`` / ``X-Amzn-Trace-Id``, when sane), kept beside the
server's own in the audit log: answers echo the client's id, so an operator finds the event a
client quotes; the event's request id stays the server's (issue 9).

Revision ID: 0034
"""
import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("client_request_id", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("client_request_id")
