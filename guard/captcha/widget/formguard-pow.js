/*!
 * formguard proof-of-work widget. No dependencies.
 *
 * Usage: <form method="post" action="/f/contact" data-formguard-pow="/f/contact/challenge">
 *        <script src="/formguard/formguard-pow.js" defer></script>
 *
 * For every form carrying data-formguard-pow, fetch an ALTCHA-format
 * challenge from that URL, solve it with Web Crypto SHA-256 in a Web Worker
 * (formguard-pow-worker.js, next to this script), put the base64 solution
 * into a hidden input named "altcha" (data-formguard-pow-field renames it)
 * and hold back submission until it is there. The form gets
 * data-formguard-pow-state = loading | solving | solved | error, and a
 * status element with a progress bar (class "formguard-pow").
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var workerURL = new URL("formguard-pow-worker.js", script ? script.src : location.href);
  var workerSource = null; // Blob URL when the script is served from another origin

  function newWorker() {
    if (workerURL.origin === location.origin) {
      return Promise.resolve(new Worker(workerURL.href));
    }
    // Workers must be same-origin with the page: load the code and start it from a Blob.
    if (!workerSource) {
      workerSource = fetch(workerURL.href, { credentials: "omit" })
        .then(function (r) {
          if (!r.ok) throw new Error("worker script: HTTP " + r.status);
          return r.blob();
        })
        .then(function (b) {
          return URL.createObjectURL(new Blob([b], { type: "text/javascript" }));
        });
    }
    return workerSource.then(function (u) { return new Worker(u); });
  }

  function saltExpires(salt) {
    var q = salt.indexOf("?");
    if (q < 0) return 0;
    var e = new URLSearchParams(salt.slice(q + 1)).get("expires");
    return e ? Number(e) : 0;
  }

  function init(form) {
    var url = form.getAttribute("data-formguard-pow");
    var name = form.getAttribute("data-formguard-pow-field") || "altcha";
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }

    var box = document.createElement("div");
    box.className = "formguard-pow";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var text = document.createElement("span");
    box.appendChild(bar);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(text);
    var anchor = form.querySelector('[type="submit"]'); // may sit deep inside the form
    if (anchor) anchor.parentNode.insertBefore(box, anchor);
    else form.appendChild(box);

    var expires = 0;
    var running = null;
    var submitWhenDone = false;
    var submitter = null; // the button that was clicked, to resubmit with it
    var spent = false; // a solution is good for one submission

    function show(state, message, percent) {
      form.setAttribute("data-formguard-pow-state", state);
      text.textContent = message;
      if (percent !== undefined) bar.value = percent;
    }

    function fresh() {
      return !spent && input.value !== "" && Date.now() / 1000 < expires - 5;
    }

    function solve() {
      if (running) return running;
      input.value = "";
      show("loading", "Checking your browser\u2026", 0);
      var started = Date.now();
      running = fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) throw new Error("challenge: HTTP " + r.status);
          return r.json();
        })
        .then(function (ch) {
          show("solving", "Checking your browser\u2026", 0);
          return newWorker().then(function (w) {
            return new Promise(function (resolve, reject) {
              w.onmessage = function (e) {
                var m = e.data;
                if (m.progress !== undefined) {
                  show("solving", "Checking your browser\u2026 " + Math.round(m.progress * 100) + "%", m.progress * 100);
                  return;
                }
                w.terminate();
                if (m.error) reject(new Error(m.error));
                else resolve({ ch: ch, number: m.number });
              };
              w.onerror = function (e) {
                w.terminate();
                reject(new Error(e.message || "worker failed"));
              };
              w.postMessage(ch);
            });
          });
        })
        .then(function (r) {
          var took = Date.now() - started;
          expires = saltExpires(r.ch.salt) || Infinity;
          input.value = btoa(JSON.stringify({
            algorithm: r.ch.algorithm,
            challenge: r.ch.challenge,
            number: r.number,
            salt: r.ch.salt,
            signature: r.ch.signature,
            took: took
          }));
          spent = false;
          form.setAttribute("data-formguard-pow-took", String(took));
          show("solved", "Verified.", 100);
          running = null;
          if (submitWhenDone) {
            submitWhenDone = false;
            if (form.requestSubmit) form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
            else form.submit();
          }
        })
        .catch(function (err) {
          running = null;
          submitWhenDone = false;
          show("error", "The spam check failed; please reload the page. (" + err.message + ")", 0);
        });
      return running;
    }

    // Capture phase: run before any other submit handler on the form.
    // A form sent by script (fetch) stays on the page; its next submission
    // needs a new solution, since the server accepts each one once.
    form.addEventListener("submit", function (e) {
      if (fresh()) {
        spent = true;
        return;
      }
      e.preventDefault();
      e.stopImmediatePropagation();
      submitWhenDone = true;
      submitter = e.submitter || null;
      solve();
    }, true);

    solve();
  }

  function start() {
    var forms = document.querySelectorAll("form[data-formguard-pow]");
    for (var i = 0; i < forms.length; i++) init(forms[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
