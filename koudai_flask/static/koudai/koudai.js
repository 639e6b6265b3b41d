/* koudai_flask shop: progressive enhancements only; every page works without this file. */
(function () {
  "use strict";

  /* Product page: pick a SKU by its attribute values (colour, size). Combinations with
     no stock are disabled; the radio list underneath stays the source of truth. */
  function skuPicker(form) {
    var variants = JSON.parse(form.getAttribute("data-variants") || "[]");
    var options = JSON.parse(form.getAttribute("data-options") || "[]");
    if (!options.length || !variants.length) return;
    var chosen = {};
    var list = form.querySelector(".kd-skus");
    var price = document.getElementById("price");
    var button = document.getElementById("add-to-cart");
    var checked = form.querySelector('input[name="sku"]:checked');
    if (checked) {
      variants.forEach(function (v) {
        if (v.code === checked.value) chosen = Object.assign({}, v.attributes);
      });
    }
    function matches(v, except) {
      return options.every(function (o) {
        return o === except || !(o in chosen) || String(v.attributes[o]) === chosen[o];
      });
    }
    function render() {
      form.querySelectorAll(".kd-option").forEach(function (set) {
        var option = set.getAttribute("data-option");
        set.hidden = false;
        set.querySelectorAll(".kd-choice").forEach(function (b) {
          var value = b.getAttribute("data-value");
          var possible = variants.some(function (v) {
            return String(v.attributes[option]) === value && v.available > 0 && matches(v, option);
          });
          b.disabled = !possible;
          b.setAttribute("aria-pressed", chosen[option] === value ? "true" : "false");
        });
      });
      var pick = variants.filter(function (v) { return matches(v, null); });
      var exact = Object.keys(chosen).length === options.length && pick.length === 1 ? pick[0] : null;
      if (exact) {
        price.textContent = "¥" + (exact.price / 100).toFixed(2);
        var radio = form.querySelector('input[name="sku"][value="' + exact.code + '"]');
        if (radio && !radio.disabled) radio.checked = true;
        button.disabled = exact.available <= 0;
      } else {
        button.disabled = true;
      }
    }
    form.addEventListener("click", function (event) {
      var b = event.target.closest(".kd-choice");
      if (!b || b.disabled) return;
      var option = b.closest(".kd-option").getAttribute("data-option");
      var value = b.getAttribute("data-value");
      chosen[option] = value;
      render();
    });
    if (list) list.classList.add("kd-enhanced");
    render();
  }

  /* Inside WeChat: hand the signed JSAPI parameters to WeixinJSBridge. */
  function wechatPay(el) {
    var params = JSON.parse(el.getAttribute("data-params"));
    var done = el.getAttribute("data-result");
    function invoke() {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function () {
        window.location.href = done;
      });
    }
    if (window.WeixinJSBridge) invoke();
    else document.addEventListener("WeixinJSBridgeReady", invoke, false);
  }

  /* Checkout: the new address's fields only while "A new address" is chosen; disabled,
     they are not sent, so a saved address is never mixed with half a new one. */
  function addressChoice(book, fields) {
    function sync() {
      var saved = !book.querySelector('input[name="address_id"][value=""]:checked');
      fields.disabled = saved;
      fields.hidden = saved;
    }
    book.addEventListener("change", sync);
    sync();
    /* Where the shipping fee depends on the province, choosing another address reloads
       the page with it, so the fee shown is that address's. */
    if (document.getElementById("shipping-to")) {
      book.addEventListener("change", function (event) {
        var url = new URL(window.location.href);
        url.searchParams.set("address_id", event.target.value);
        window.location.replace(url.toString());
      });
    }
  }

  /* Checkout: a province typed in the new address's form prices the totals for it, so the
     fee shown is the one the order will be charged. Only the newest answer is shown. */
  function followProvince(input, totals) {
    var asked = 0, timer = null;
    function update() {
      var url = new URL(totals.getAttribute("data-src"), window.location.href);
      var coupon = document.querySelector('#checkout-form input[name="coupon_code"]');
      if (coupon && coupon.value) url.searchParams.set("coupon", coupon.value);
      url.searchParams.set("province", input.value);
      var mine = ++asked;
      fetch(url.toString(), { credentials: "same-origin" })
        .then(function (response) {
          return response.ok && !response.redirected ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && mine === asked) totals.innerHTML = html;
        })
        .catch(function () { /* offline: the order is priced when it is placed */ });
    }
    input.addEventListener("change", update);
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 400);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("buy");
    if (form) skuPicker(form);
    var book = document.querySelector(".kd-addresses");
    var fields = document.querySelector(".kd-new-address");
    if (book && fields) addressChoice(book, fields);
    var totals = document.getElementById("checkout-totals");
    var province = fields && fields.querySelector('input[name="province"]');
    if (totals && province && document.getElementById("shipping-to")) {
      followProvince(province, totals);
    }
    var pay = document.getElementById("wechat-pay");
    if (pay) wechatPay(pay);
    /* Packing slips: a print button, shown only where it can work. */
    document.querySelectorAll("[data-kd-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
