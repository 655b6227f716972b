"""Listing facets (issue 14): a model's languages, a dataset's size and format. Datasets get their
``size_categories:`` and ``format:`` tags (db/repos.py, ``dataset_tags``: from the card stored on
the row and the files stored with its head), as every later commit gives them; then the facet
counts are rebuilt, models' languages included.

Revision ID: 0032
"""
import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from aicommons.db.repos import dataset_tags, rebuild_facet_counts
    from aicommons.db.tables import repo_heads, repo_tags, repos
    from aicommons.db.upsert import insert_ignore

    conn = op.get_bind()
    query = (sa.select(repos.c.id, repos.c.tags, repos.c.card_data, repo_heads.c.siblings)
             .outerjoin(repo_heads, repo_heads.c.repo_id == repos.c.id).where(repos.c.type == "dataset"))
    for row in conn.execute(query).all():
        tags = list(row.tags or [])
        added = [t for t in dataset_tags(row.card_data, (str(s[0]) for s in row.siblings or [])) if t not in tags]
        if added:
            conn.execute(sa.update(repos).where(repos.c.id == row.id).values(tags=tags + added))
            insert_ignore(conn, repo_tags, [{"repo_id": row.id, "tag": t} for t in added])
    rebuild_facet_counts(conn)


def downgrade() -> None:
    pass
