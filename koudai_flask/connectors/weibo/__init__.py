"""The Weibo open API as far as reputation monitoring needs it (PROTOCOLS §7).

``client.WeiboClient`` reads the brand account's mentions and comments (and, with the
commercial data API, a keyword search) from a ``since_id``; ``settings`` checks
``KOUDAI_WEIBO``. A sandbox that speaks the same protocol is ``connectors.sandbox.weibo``.
"""
