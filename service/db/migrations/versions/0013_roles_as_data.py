"""Roles and who may start each process become data an admin manages

Revision ID: 0013
Revises: 0010

The tables start empty: until they are first filled (by `cadreflow init-db`, or by an admin's first change),
the service takes the roles and starters from settings (ROLES, START_ROLES) exactly as before, so an existing
install behaves the same after the upgrade, whatever its configuration says.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("head_role", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["head_role"], ["roles.code"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "process_starters",
        sa.Column("process_key", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["role"], ["roles.code"]),
        sa.PrimaryKeyConstraint("process_key", "role"),
    )


def downgrade() -> None:
    op.drop_table("process_starters")
    op.drop_table("roles")
