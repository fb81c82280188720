"""The record of estimates: every answered estimate kept in PostgreSQL, with the sale prices fed
back against them.

Workers never wait for the database: they push each model call's records into a bounded Redis
buffer with their answers (worker/records.py), and the recorder (`recorder.py`, a thread of each
worker pool) writes that buffer to PostgreSQL in batches. The API reads the record
(`GET /v1/estimates/{id}`), the operator exports and purges it (`realty estimates`), and
`realty db upgrade` migrates its schema (`migrate.py`, Alembic).
"""
