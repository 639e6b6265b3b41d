"""A channel for a chat super-app's mini-shops, as a package of its own (see README.md)."""

from koudai_superapp.connector import SuperAppConnector

__all__ = ["SuperAppConnector"]
