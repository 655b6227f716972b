"""Initial schema: accounts, tokens, repos, tags, redirects, LFS objects, search index.

Revision ID: 0001
"""
from alembic import op

from aicommons.db import search
from aicommons.db.tables import (
    accounts,
    lfs_objects,
    memberships,
    repo_lfs_objects,
    repo_redirects,
    repo_tags,
    repos,
    tokens,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = [accounts, memberships, tokens, repos, repo_tags, repo_redirects, lfs_objects, repo_lfs_objects]


def upgrade() -> None:
    bind = op.get_bind()
    # These definitions have not changed since revision 0001; later changes to them must be made
    # with explicit operations in a new migration (as 0002 does), never by editing these tables.
    for table in TABLES:
        table.create(bind)
    search.create_index(bind)


def downgrade() -> None:
    bind = op.get_bind()
    search.drop_index(bind)
    for table in reversed(TABLES):
        table.drop(bind)
