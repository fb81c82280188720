"""The contract between processes: everything the API, the workers and `realty` exchange
through Redis (key names, typed messages, Celery task names and settings, heartbeats, the active
version pointer).

Changing anything here changes the wire: upgrade the API and the workers together (stop the old
ones, or roll out a version whose workers speak the new wire before switching the API). Adding an
optional field to a message is the exception: receivers ignore fields they do not know.
Plain Python and pydantic only: the API imports this package without the model's libraries.
"""
