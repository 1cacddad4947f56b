#!/usr/bin/env bash
# Evaluates ptft's flake without network: nixpkgs is replaced by a local stub
# (tests/nix/stub-nixpkgs) that provides only the attributes the flake uses.
# The real `nix flake check --no-build` needs network once, to fetch nixpkgs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Copy the stub so the flake lock does not point into the repository.
cp -r "$root/tests/nix/stub-nixpkgs" "$tmp/stub"
nix --extra-experimental-features 'nix-command flakes' flake check --no-build \
  --no-write-lock-file --override-input nixpkgs "path:$tmp/stub" "path:$root"
echo "flake check (offline, stub nixpkgs): ok"
