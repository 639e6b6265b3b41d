"""ERP adapters: the wire protocols of the ERPs a shop keeps in sync with our stock ledger.

``tryton`` is the reference, open-source ERP (PROTOCOLS §6.7): a real JSON-RPC server that the
test suite starts on loopback. Each adapter speaks its protocol and nothing else: it returns
plain dataclasses and raises the typed errors of ``koudai_flask.connectors.errors``; the sync
services decide what to write to our database.
"""
