"""The site's own blueprints: ``main`` (home page) and ``auth`` (login, logout).

The package is called ``blueprints``, as in many Flask sites; koudai's live inside
``koudai_flask.blueprints``, so the two never shadow each other.
"""
