"""PostgreSQL access: pool, migrations, and every SQL statement as a named query."""
