"""One file per schema revision, oldest first; never edited once released: a change is a new
revision (its `down_revision` the newest one here)."""
