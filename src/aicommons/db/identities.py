"""Single sign-on identities: (issuer, subject) -> the account it signs in as."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from aicommons.db.tables import identities


class IdentityStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def user_id(self, issuer: str, subject: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(identities.c.user_id).where(
                identities.c.issuer == issuer, identities.c.subject == subject)).scalar()

    def link(self, issuer: str, subject: str, user_id: int, now: datetime) -> bool:
        """False if the identity is already linked (to anyone): the first link wins."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(identities).values(issuer=issuer, subject=subject, user_id=user_id,
                                                       created_at=now))
        except IntegrityError:
            return False
        return True
