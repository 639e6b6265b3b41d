"""Connectors: the links to sales channels, ERPs, logistics and payment sandboxes."""
