/*!
 * formguard proof-of-work worker. Receives an ALTCHA-format challenge
 * {algorithm, challenge, maxnumber, salt, signature} and finds the number n
 * in [0, maxnumber] with hex(SHA-256(salt + n)) == challenge, using Web
 * Crypto. Posts {progress: 0..1} now and then, then {number} or {error}.
 */
"use strict";

var BATCH = 500; // digests in flight at once: Web Crypto is asynchronous

function hexToBytes(hex) {
  var out = new Uint8Array(hex.length / 2);
  for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function same(buf, want) {
  var a = new Uint8Array(buf);
  if (a.length !== want.length) return false;
  for (var i = 0; i < a.length; i++) if (a[i] !== want[i]) return false;
  return true;
}

self.onmessage = async function (e) {
  var ch = e.data;
  if (ch.algorithm !== "SHA-256" || !/^[0-9a-f]{64}$/.test(ch.challenge)) {
    self.postMessage({ error: "unsupported challenge" });
    return;
  }
  var want = hexToBytes(ch.challenge);
  var max = Number(ch.maxnumber);
  var enc = new TextEncoder();
  var lastReport = 0;
  for (var n = 0; n <= max; n += BATCH) {
    var end = Math.min(n + BATCH - 1, max);
    var pending = [];
    for (var i = n; i <= end; i++) {
      pending.push(crypto.subtle.digest("SHA-256", enc.encode(ch.salt + i)));
    }
    var sums = await Promise.all(pending);
    for (var j = 0; j < sums.length; j++) {
      if (same(sums[j], want)) {
        self.postMessage({ number: n + j });
        return;
      }
    }
    var now = Date.now();
    if (now - lastReport > 100) {
      lastReport = now;
      self.postMessage({ progress: end / max });
    }
  }
  self.postMessage({ error: "no solution" });
};
