"""A test client for the shop that reads the CSRF token off each page, like a browser."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CHECKOUT_TOKEN = re.compile(r'name="token" type="hidden" value="([^"]+)"')


class ShopClient:
    def __init__(self, app: Flask, prefix: str = "/shop", token_page: str = "/account/login"):
        self.client = app.test_client()
        self.prefix = prefix
        self.token_page = token_page  # any page with a form, to read a first token from
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(self.prefix + path, **kwargs)
        found = TOKEN.search(response.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, token: bool = True, **kwargs: Any
    ) -> TestResponse:
        form = dict(data or {})
        if token:
            if not self.csrf:
                self.get(self.token_page)
            form["csrf_token"] = self.csrf
        return self.client.post(self.prefix + path, data=form, **kwargs)

    def text(self, path: str, **kwargs: Any) -> str:
        return self.get(path, **kwargs).get_data(as_text=True)

    def add_to_cart(self, sku: str, quantity: int = 1) -> TestResponse:
        return self.post("/cart/add", {"sku": sku, "quantity": quantity})

    def checkout(self, **address: str) -> TestResponse:
        page = self.text("/checkout")
        form = {
            "token": CHECKOUT_TOKEN.search(page).group(1),  # type: ignore[union-attr]
            "name": "李雷",
            "phone": "13800138000",
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "street": "文三路 100 号",
            "save_address": "y",  # checked by default on the page
            "note": "",
        }
        form.update(address)
        return self.post("/checkout", form)
