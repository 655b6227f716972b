"""Initial schema: accounts, tokens, repos, tags, redirects, LFS objects, search index.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

from aicommons.db import search
from aicommons.db.tables import lfs_objects, memberships, repo_lfs_objects, repo_redirects, repo_tags, repos

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = [memberships, repos, repo_tags, repo_redirects, lfs_objects, repo_lfs_objects]
# Indexes declared on these tables in tables.py but created by a later migration.
LATER_INDEXES = {"ix_repos_type_downloads", "ix_repos_type_likes", "ix_repos_type_last_modified",
                 "ix_repos_type_created_at", "ix_repos_type_author",  # 0013
                 "ix_repos_owner"}  # 0025


def upgrade() -> None:
    bind = op.get_bind()
    # ``accounts`` as it was at revision 0001 (later migrations add columns: 0014, 0015), written out
    # here so that a column added to tables.py is not also created by this revision.
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("name_lower", sa.String(96), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("fullname", sa.String(256), nullable=False),
        sa.Column("email", sa.String(256)),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    # ``tokens`` as it was at revision 0001 (0016 and 0022 add columns).
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime),
    )
    # These definitions have not changed since revision 0001; later changes to them must be made
    # with explicit operations in a new migration (as 0002 does), never by editing these tables.
    for table in TABLES:
        bind.execute(CreateTable(table))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in LATER_INDEXES:
                bind.execute(CreateIndex(index))
    search.create_index(bind)


def downgrade() -> None:
    bind = op.get_bind()
    search.drop_index(bind)
    for table in reversed(TABLES):
        table.drop(bind)
    op.drop_table("tokens")
    op.drop_table("accounts")
