"""Usernames are unique whatever their letter case: a unique index on lower(username)

The service refuses `bob` while `Bob` exists (users.py), but two admins creating them at the same moment both
passed that check; only the database sees both. A database already holding such a pair cannot take the index:
the upgrade then refuses, naming the names, and changes nothing, so an administrator decides which account
keeps its name (docs/operations.md).

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

from service.db.schema import MigrationRefused

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

CLASHES = sa.text("SELECT lower(username) AS folded, username FROM users WHERE lower(username) IN "
                  "(SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1) "
                  "ORDER BY lower(username), username")


def upgrade() -> None:
    clashes: dict[str, list[str]] = {}
    for folded, username in op.get_bind().execute(CLASHES):
        clashes.setdefault(folded, []).append(username)
    if clashes:
        names = "; ".join(" / ".join(group) for group in clashes.values())
        raise MigrationRefused(
            f"usernames differing only in letter case: {names}. Rename or remove one of each pair, then upgrade "
            f"again; nothing was changed (以下用户名仅大小写不同：{names}。请先改名或删除其中之一再升级，数据库未作任何修改)")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_username_lower", table_name="users")
