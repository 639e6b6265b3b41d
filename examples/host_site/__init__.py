"""Camellia Store: a small merchant site that existed before it embedded koudai_flask.

It has its own users, login pages, blueprints and database object, and mounts the koudai
shop and back office with one line in :func:`examples.host_site.app.create_app`.
"""
