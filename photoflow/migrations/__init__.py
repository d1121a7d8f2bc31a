"""Numbered schema migrations, applied in order by `photoflow db upgrade` (peewee's migration runner).

Each file defines `up(migrator, db)`. A migration never imports `photoflow.models`: it declares the
frozen shape it creates, so it means the same thing forever while the models move on.
"""
