"""The words of each refusal a service names in one word (``KoudaiError.reason``), in
English as gettext's message ids; :mod:`koudai_flask.blueprints.refusals` says them in the
reader's language with the refusal's figures (``%(code)s``) filled in.
"""

from __future__ import annotations

from koudai_flask.i18n import lazy_gettext

# What a refusal with a known ``reason`` says, in the reader's language.
REASONS = {
    "account_exists": lazy_gettext(
        "This email or phone number already has an account; sign in instead."
    ),
    "reset_expired": lazy_gettext("This reset link has expired; ask for a new one."),
    "reset_invalid": lazy_gettext("This reset link is not valid; ask for a new one."),
    "reset_used": lazy_gettext("This reset link was already used; ask for a new one."),
    "password_short": lazy_gettext("A password needs at least 8 characters."),
    "not_on_sale": lazy_gettext("This item is no longer on sale."),
    "cart_unavailable": lazy_gettext(
        "An item in your cart is sold out or no longer on sale; check your cart."
    ),
    "not_an_amount": lazy_gettext("%(text)s is not an amount in yuan, such as 129.00."),
    "too_many_options": lazy_gettext("A product has at most %(most)s options."),
    "option_names": lazy_gettext(
        "Option names must differ from each other and have at most 40 characters."
    ),
    "option_empty": lazy_gettext("Option %(option)s has no values."),
    "option_value_long": lazy_gettext("An option value has at most 40 characters."),
    "too_many_skus": lazy_gettext("A product has at most %(most)s SKUs."),
    "sku_rows_stale": lazy_gettext(
        "The SKU rows no longer match the options: generate the SKUs again."
    ),
    "sku_codes_repeated": lazy_gettext("Each SKU of a product needs a code of its own."),
    "sku_code_taken": lazy_gettext("The SKU code %(code)s is already used by another SKU."),
    "slug_taken": lazy_gettext("The address name %(slug)s is already used by another product."),
    "category_taken": lazy_gettext("A category named %(slug)s already exists."),
    "adjust_reason": lazy_gettext("Give a reason for the adjustment, at most 300 characters."),
    "low_stock_threshold": lazy_gettext("The low-stock threshold is a whole number from 0."),
    "refund_too_much": lazy_gettext("At most %(refundable)s can still be refunded."),
    "refund_refused": lazy_gettext(
        "%(provider)s refused the refund; try again later or refund at the provider."
    ),
    "note_length": lazy_gettext("A note has 1 to 2000 characters."),
    "staff_email_taken": lazy_gettext("%(email)s is already another staff member's login."),
    "role_taken": lazy_gettext("A role named %(role)s already exists or is built in."),
    "shipment_incomplete": lazy_gettext("Choose a carrier and enter the tracking number."),
    "tracking_taken": lazy_gettext(
        "Tracking number %(tracking_number)s of this carrier is already on another parcel."
    ),
    "tracking_format": lazy_gettext(
        "The tracking number %(tracking_number)s is not one a carrier prints: 4 to 64 letters, "
        "digits or -."
    ),
    "nothing_to_ship": lazy_gettext("Choose at least one line to ship."),
    "ship_quantity": lazy_gettext("The quantity of %(sku)s must be a whole number."),
    "ship_too_many": lazy_gettext("Only %(left)s of %(sku)s are left to ship."),
    "tag_name": lazy_gettext("A tag name has 1 to 40 characters."),
    "segment_empty": lazy_gettext("A segment needs at least one filter or a rule."),
    "segment_name": lazy_gettext("A segment name has 1 to 80 characters."),
    "segment_taken": lazy_gettext("A segment named %(name)s already exists."),
    "identity_taken": lazy_gettext("This is already another customer's."),
    "unknown_order": lazy_gettext("There is no order %(number)s."),
    "unknown_sku": lazy_gettext("There is no SKU with the code %(sku)s."),
    "restock_partial": lazy_gettext(
        "Goods go back on the shelf with a full refund only; for part of them, choose the "
        'items under "Refund only some items".'
    ),
    "rule_not_text": lazy_gettext("A rule is text."),
    "rule_too_long": lazy_gettext("A rule has at most %(most)s characters."),
    "rule_control": lazy_gettext(
        "A text value cannot hold control characters (at character %(position)s)."
    ),
    "rule_unclosed": lazy_gettext("A text value is never closed (at character %(position)s)."),
    "rule_character": lazy_gettext("Unexpected character %(char)s (at character %(position)s)."),
    "rule_number": lazy_gettext("The number %(number)s is too large (at character %(position)s)."),
    "rule_text_long": lazy_gettext(
        "A text value has at most 200 characters (at character %(position)s)."
    ),
    "rule_ends_early": lazy_gettext("The rule ends too early: %(expected)s should follow."),
    "rule_expected": lazy_gettext(
        "Expected %(expected)s but found %(found)s (at character %(position)s)."
    ),
    "rule_empty": lazy_gettext("The rule is empty."),
    "rule_depth": lazy_gettext("A rule nests at most %(most)s deep (at character %(position)s)."),
    "rule_field": lazy_gettext(
        "There is no field %(field)s (at character %(position)s); the fields are in the help below."
    ),
    "rule_set_operator": lazy_gettext(
        "%(field)s takes only ==, !=, in and not in (at character %(position)s)."
    ),
    "rule_wants_number": lazy_gettext(
        "%(field)s is compared with a whole number (at character %(position)s)."
    ),
    "rule_days": lazy_gettext("A number of days is at most %(most)s (at character %(position)s)."),
    "rule_wants_text": lazy_gettext(
        "%(field)s is compared with text in quotes (at character %(position)s)."
    ),
    "rule_wants_date": lazy_gettext(
        '%(field)s takes a date as "YYYY-MM-DD" (at character %(position)s).'
    ),
    "rule_date_range": lazy_gettext(
        "A date is between the years 1900 and 2200 (at character %(position)s)."
    ),
    "role_name": lazy_gettext("A role name has 1 to 40 characters."),
    "decline_reason": lazy_gettext("Tell the buyer why, in 1 to 200 characters."),
    "two_addresses": lazy_gettext(
        "You chose a saved address and also typed a new one: choose “A new address” to use "
        "the one you typed, or clear it."
    ),
    "role_rank": lazy_gettext("A custom role's rank is a whole number from 1 to 99."),
    "key_name": lazy_gettext("Give the key a name of 1 to 120 characters."),
    "key_scopes": lazy_gettext("Choose at least one scope for the key."),
    "key_scope_lacking": lazy_gettext(
        "The key's owner does not hold %(permissions)s; a key gets only what its owner holds."
    ),
    "tag_taken": lazy_gettext("A tag named %(name)s already exists."),
    "url_required": lazy_gettext("Enter the address that receives the webhooks."),
    "url_long": lazy_gettext("The address has at most %(most)s characters."),
    "url_spaces": lazy_gettext("The address may not contain spaces."),
    "url_invalid": lazy_gettext("This is not a web address, such as https://example.com/hooks."),
    "url_scheme": lazy_gettext("The address starts with https:// or http://."),
    "url_credentials": lazy_gettext(
        "The address may not carry a user name or password: the deliveries are signed instead."
    ),
    "url_fragment": lazy_gettext("The address may not end in a #fragment."),
    "url_unresolvable": lazy_gettext("The host %(host)s cannot be found."),
    "url_not_public": lazy_gettext(
        "%(host)s is at %(address)s, which is not a public address; webhooks go only to "
        "public addresses."
    ),
    "webhook_secret": lazy_gettext(
        "A webhook secret has 16 to 200 letters, digits or punctuation, without spaces."
    ),
    "webhook_events": lazy_gettext("Choose at least one event."),
    "description_long": lazy_gettext("A description has at most 200 characters."),
    "webhook_disabled": lazy_gettext("This webhook is turned off: turn it on first."),
    "link_target": lazy_gettext(
        "The link goes to a page of the shop: a path such as /products/oxford-shirt."
    ),
    "campaign_name": lazy_gettext("Give the campaign a name of at most 120 characters."),
    "campaign_channel": lazy_gettext("Choose how the campaign is sent."),
    "campaign_template_id": lazy_gettext(
        "A WeChat campaign needs the template id registered in the Official Account."
    ),
    "campaign_rate": lazy_gettext("Send 1 to %(most)s messages a minute."),
    "unknown_segment": lazy_gettext("That segment no longer exists; choose another."),
    "campaign_channel_off": lazy_gettext(
        "This channel is not set up (%(setting)s); nothing was sent."
    ),
    "campaign_no_segment": lazy_gettext("This campaign has no segment to send to."),
    "template_long": lazy_gettext("%(field)s has at most %(most)s characters."),
    "template_unusable": lazy_gettext(
        "%(field)s cannot be used (%(problem)s); it may use %(variables)s."
    ),
    "template_output_long": lazy_gettext(
        "%(field)s would be longer than %(most)s characters once filled in."
    ),
    "template_id": lazy_gettext(
        "A template id is for WeChat only: letters, digits, - and _, as the Official Account "
        "shows it."
    ),
    "wechat_line": lazy_gettext(
        "Line %(line)s must read field: text, such as keyword1: {{ order_number }}."
    ),
    "wechat_field_twice": lazy_gettext("The field %(name)s appears twice (line %(line)s)."),
    "wechat_no_fields": lazy_gettext("Write at least one line as field: text."),
    "filter_number": lazy_gettext("%(field)s must be a whole number."),
    "filter_date": lazy_gettext("%(field)s must be a date."),
    "filter_long": lazy_gettext("%(field)s has at most 100 characters."),
    "logo_url": lazy_gettext(
        "The logo is an address starting with https://, http:// or /, of at most 300 characters."
    ),
    "theme_colour": lazy_gettext("Write the colour as #rrggbb, such as #c0392b."),
    "shop_name": lazy_gettext("The shop name has 1 to 120 characters."),
    "return_address": lazy_gettext(
        "A return address needs a recipient, a phone and an address, or none of the three."
    ),
    "return_address_phone": lazy_gettext(
        "Write the return address's phone with digits, such as 0571-88886666 or 13800138000."
    ),
    "refund_provider_missing": lazy_gettext(
        "%(provider)s is not set up in this shop any more: refund at %(provider)s by hand."
    ),
    "refund_quantity": lazy_gettext("%(sku)s: write how many items as a whole number."),
    "refund_unknown_line": lazy_gettext("This order has no item %(sku)s."),
    "refund_too_many_units": lazy_gettext("%(sku)s: only %(left)s can be refunded."),
    "refund_no_lines": lazy_gettext("Choose at least one item to refund."),
    "refund_everything": lazy_gettext(
        "These are all the order's items and none has shipped: refund all of it (leave the "
        "amount empty)."
    ),
    "return_unshipped": lazy_gettext("Nothing has shipped yet, so nothing can be sent back."),
    "unknown_carrier": lazy_gettext("Choose the carrier from the list."),
    "no_return_asked": lazy_gettext("This order waits on no return of goods."),
    "no_return_address": lazy_gettext(
        "Enter where the buyer sends the goods: a recipient, a phone and an address (the "
        "shop's return address, set with its profile, fills them in)."
    ),
    "return_not_agreed": lazy_gettext(
        "The seller has not agreed to the return yet: the address to send the goods to shows "
        "on this page once they do."
    ),
    "return_arrived": lazy_gettext(
        "The goods you sent back have arrived at the shop, which answers the request now."
    ),
    "return_waybill_ours": lazy_gettext(
        "%(tracking_number)s is the waybill of the parcel the shop sent you: enter the one of "
        "the parcel you sent back."
    ),
    "not_your_request": lazy_gettext("Only the one who asked can take the request back."),
    "template_id_setting": lazy_gettext(
        "The WeChat template id of back-in-stock messages is a setting: "
        "KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE."
    ),
    "alert_in_stock": lazy_gettext("It is in stock now: you can buy it straight away."),
    "alert_unreachable": lazy_gettext(
        "We have no way to reach you: add a phone number or an e-mail address to your account."
    ),
    "alert_limit": lazy_gettext("At most %(most)s alerts can wait at a time: remove some first."),
    "review_not_received": lazy_gettext(
        "Order %(number)s has not arrived yet: review it once you have it."
    ),
    "review_exists": lazy_gettext("You have reviewed %(item)s of this order already."),
    "review_rating": lazy_gettext("Choose from one to five stars."),
    "review_too_long": lazy_gettext("A review is at most %(most)s characters."),
    "address_packing": lazy_gettext(
        "The shop is packing this order: ask them to send it to the new address."
    ),
    "address_shipped": lazy_gettext(
        "Part of this order has shipped to the address it has: it can no longer change."
    ),
    "address_on_channel": lazy_gettext(
        "This order came from %(channel)s: the buyer changes its address there."
    ),
    "address_in_erp": lazy_gettext(
        "This order went to %(channel)s, which ships it: change the address there."
    ),
    "favourite_limit": lazy_gettext(
        "You keep %(most)s products in your favourites already: take some off first."
    ),
    "memo": lazy_gettext("The memo must be text."),
    "memo_long": lazy_gettext("A memo is at most %(limit)s characters."),
    "memo_flag": lazy_gettext("Choose a flag: none, red, yellow, green, blue or purple."),
    "memo_none_chosen": lazy_gettext("Tick at least one order to flag."),
    "refund_on_channel": lazy_gettext(
        "This order was paid on %(channel)s: refund or refuse there, and this order follows."
    ),
    "staff_self": lazy_gettext("You cannot change your own role, channels or access."),
    "staff_manage": lazy_gettext("Your role may not manage staff."),
    "grant_above": lazy_gettext(
        "You may grant only roles below your own; %(role)s is not below yours."
    ),
    "grant_lacking": lazy_gettext(
        "You may give only permissions you hold yourself; you lack: %(permissions)s."
    ),
    "staff_outranks": lazy_gettext("%(member)s is not below you: you cannot change them."),
    "grant_channels": lazy_gettext("You may grant only within your own channels."),
    "role_rank_above": lazy_gettext(
        "A role you create ranks below your own: a rank of %(most)s at most."
    ),
    "reply_length": lazy_gettext("A reply has 1 to %(most)s characters."),
    "wechat_off": lazy_gettext(
        "The WeChat Official Account is not set up: replies cannot be sent."
    ),
    "never_wrote": lazy_gettext("This customer has not written to the Official Account."),
    "reply_window": lazy_gettext(
        "WeChat lets you reply only within 48 hours of the buyer's last message."
    ),
    "channel_name": lazy_gettext("A channel name has 1 to 64 characters."),
    "channel_taken": lazy_gettext("A channel named %(name)s already exists."),
    "item_bound": lazy_gettext(
        "Item %(item)s (SKU %(external_sku)s) is already bound to %(sku)s: unlink it first."
    ),
    "sku_bound": lazy_gettext("%(sku)s is already bound on %(channel)s: unlink it first."),
    "rule_tag_by_hand": lazy_gettext(
        "The tag %(name)s is given by its rule: change the rule instead."
    ),
    "merge_self": lazy_gettext("A customer cannot be merged with itself."),
    "merge_done": lazy_gettext("One of these customers was already merged into another."),
    "merged_customer": lazy_gettext(
        "Customer #%(id)s was merged into another one: merge with that one instead."
    ),
    "unknown_customer": lazy_gettext("There is no customer #%(id)s."),
    "split_later_first": lazy_gettext("Undo the later merge of this customer first."),
    "only_identity": lazy_gettext("A customer's only identity cannot be split off."),
    "not_dead": lazy_gettext(
        "This event was already sent again, handled or discarded; the list is up to date now."
    ),
    "sku_not_bound": lazy_gettext("%(sku)s is not bound on %(channel)s (any more)."),
    "too_many_slips": lazy_gettext("At most %(most)s orders at a time: print them in parts."),
    "nothing_to_pack": lazy_gettext(
        "None of these orders is paid with items left to send: nothing to print."
    ),
    "count_quantity": lazy_gettext("A count is a whole number from 0 to %(most)s."),
    "count_moved": lazy_gettext(
        "The book for %(sku)s went from %(seen)s to %(now)s while you counted (an order was "
        "shipped or stock came in): count it again."
    ),
    "count_below_reserved": lazy_gettext(
        "%(reserved)s of %(sku)s are held for open orders: the count cannot be below that. "
        "Ship or cancel those orders first."
    ),
    "nothing_to_settle": lazy_gettext(
        "Order %(number)s has no refund request open: there is nothing to settle."
    ),
    "tag_description": lazy_gettext("A description has at most %(most)s characters."),
    "weibo_uid": lazy_gettext(
        "A Weibo user ID is a number (the digits in the address of their Weibo page)."
    ),
    "channel_paused": lazy_gettext(
        "The channel %(channel)s is paused: resume it before importing its items."
    ),
    "import_taobao_only": lazy_gettext(
        "%(channel)s is not a Taobao shop: only a Taobao shop's items can be imported."
    ),
    "carrier_unknown": lazy_gettext(
        "%(text)s is not a carrier koudai knows: write its name, such as 顺丰 or 中通."
    ),
    "carrier_ambiguous": lazy_gettext(
        "%(text)s could be %(names)s: write the carrier's full name."
    ),
    "not_delivered": lazy_gettext(
        "%(titles)s cannot be delivered to %(province)s; choose another address or take them "
        "out of the cart."
    ),
    "unknown_province": lazy_gettext(
        "%(name)s is not a province: write provinces as 浙江, 新疆 or 内蒙古, separated by commas."
    ),
    "province_twice": lazy_gettext(
        "%(name)s is named twice: a province belongs to one area at most, and not also to the "
        "provinces not delivered to."
    ),
    "area_without_provinces": lazy_gettext(
        "An area with its own figures needs at least one province."
    ),
    "template_name": lazy_gettext("A shipping template needs a name of at most 40 characters."),
    "template_basis": lazy_gettext("Choose whether shipping is charged by the piece or by weight."),
    "template_figure": lazy_gettext(
        "Shipping figures: the first and each further step are whole numbers from 1 (pieces or "
        "grams), the fees amounts in yuan up to ¥100,000.00."
    ),
    "template_areas": lazy_gettext("A shipping template has at most %(most)s areas."),
    "template_name_taken": lazy_gettext("A shipping template named %(name)s already exists."),
    "template_in_use": lazy_gettext(
        "%(count)s products use the shipping template %(name)s: give them another one first."
    ),
    "products_to_assign": lazy_gettext("Tick 1 to %(most)s products first."),
    "unknown_template": lazy_gettext("This shipping template no longer exists."),
    "template_unknown": lazy_gettext("There is no shipping template named %(name)s."),
    "address_book_full": lazy_gettext(
        "Your address book is full (%(most)s addresses): delete one first."
    ),
    "scan_ambiguous": lazy_gettext(
        "%(count)s orders carry the channel order id %(id)s: choose one."
    ),
}
