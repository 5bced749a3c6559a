// Package widget embeds formguard's small, dependency-free proof-of-work
// browser widget and serves it.
//
// Mount Handler under any prefix, e.g.
//
//	mux.Handle("GET /formguard/", widget.Handler())
//
// and mark forms in the page:
//
//	<form method="post" action="/f/contact" data-formguard-pow="/f/contact/challenge">
//	  ...
//	  <noscript>This form's spam check needs JavaScript. Please enable it, or write to us by email.</noscript>
//	  <button type="submit">Send</button>
//	</form>
//	<script src="/formguard/formguard-pow.js" defer></script>
//
// The script fetches an ALTCHA-format challenge from the data-formguard-pow
// URL (served by captcha.PoW.ChallengeHandler), solves it with Web Crypto
// SHA-256 in a Web Worker (formguard-pow-worker.js, loaded from next to the
// script), fills a hidden "altcha" input and holds back submission until
// the solution is there. Web Crypto needs a secure context: HTTPS, or
// http://localhost.
package widget
