# Minimal Alembic environment for the benchmark: online mode only, one
# transaction per migration (as luamig does by default), no metadata.
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

connectable = engine_from_config(
    config.get_section(config.config_ini_section),
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)

with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
