#!/bin/sh
# Puts the official ALTCHA web component (the version package-lock.json pins)
# where guard/captcha's browser test serves it from. Only its self-contained
# dist/altcha.js is used, so this needs curl, tar and coreutils, not Node.js or npm:
# `make deps` then works whatever nodejs a machine has, or none.
set -eu
dir=guard/captcha/testdata/browser
lock=$dir/package-lock.json
dest=$dir/node_modules/altcha
[ -f "$dest/dist/altcha.js" ] && exit 0

# The "node_modules/altcha" entry of the lock file: its version and integrity.
entry=$(sed -n '/"node_modules\/altcha"/,/}/p' "$lock")
version=$(printf '%s\n' "$entry" | sed -n 's/.*"version": "\([^"]*\)".*/\1/p')
integrity=$(printf '%s\n' "$entry" | sed -n 's/.*"integrity": "sha512-\([^"]*\)".*/\1/p')
[ -n "$version" ] && [ -n "$integrity" ] || { echo "fetch-altcha: no altcha entry in $lock" >&2; exit 1; }

registry=${npm_config_registry:-https://registry.npmjs.org}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching altcha $version from $registry"
curl -fsSL "${registry%/}/altcha/-/altcha-$version.tgz" -o "$tmp/altcha.tgz"
want=$(printf '%s' "$integrity" | base64 -d | od -An -v -tx1 | tr -d ' \n')
got=$(sha512sum "$tmp/altcha.tgz" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	echo "fetch-altcha: altcha-$version.tgz does not match package-lock.json's integrity" >&2
	exit 1
fi
mkdir -p "$dest"
tar -xzf "$tmp/altcha.tgz" -C "$dest" --strip-components=1
