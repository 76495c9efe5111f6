"""Management cycle and incidents: learning records, the daily-run marker, cases.incident

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduled_runs',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('last_run_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('learning_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('studied_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Double(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadres.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('learning_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learning_records_cadre_id'), ['cadre_id'], unique=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("incident")
    with op.batch_alter_table("learning_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_records_cadre_id"))
    op.drop_table("learning_records")
    op.drop_table("scheduled_runs")
