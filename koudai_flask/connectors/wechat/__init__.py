"""The WeChat Official Account server side (PROTOCOLS §3.1) and its customer-service API.

``oa_crypto`` signs and decrypts pushes, ``oa_messages`` reads them and writes passive
replies, ``client`` sends customer-service messages, ``oa_views`` is the endpoint
``<hooks prefix>/wechat/oa``. The access token is shared with the template messages of
:mod:`koudai_flask.notifications.wechat`.
"""
