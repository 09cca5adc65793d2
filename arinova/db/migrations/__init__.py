"""SQL migrations: ``baseline.sql`` (the original's end state) and our ``NNNN_name.sql`` files.

See arinova/db/migrate.py for how they are applied and recorded.
"""
