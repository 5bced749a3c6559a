/*!
 * formguard form tokens. No dependencies.
 *
 * Usage: <form method="post" action="/f/contact" data-formguard-token="/f/contact/token">
 *        <script src="/assets/formguard-token.js" defer></script>
 *
 * For every form carrying data-formguard-token, fetch a signed single-use
 * token from that URL ({"field": "_fg_token", "token": "..."}) and put it in
 * a hidden input. The form gets data-formguard-token-state = ready | error.
 * The server refuses a post sent sooner than the form's min_fill after the
 * token was issued, so fetching it on page load is what a person needs.
 */
(function () {
  "use strict";

  function fill(form) {
    var url = form.getAttribute("data-formguard-token");
    fetch(url, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (t) {
        var input = form.querySelector('input[name="' + t.field + '"]');
        if (!input) {
          input = document.createElement("input");
          input.type = "hidden";
          input.name = t.field;
          form.appendChild(input);
        }
        input.value = t.token;
        form.setAttribute("data-formguard-token-state", "ready");
      })
      .catch(function (e) {
        form.setAttribute("data-formguard-token-state", "error");
        console.warn("formguard token: " + e.message);
      });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-formguard-token]");
    for (var i = 0; i < forms.length; i++) fill(forms[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
