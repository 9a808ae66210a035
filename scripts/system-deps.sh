#!/bin/sh
# Install the Debian packages the toolkit can use offline: real Fashion-MNIST and a headless
# Chromium for the report's browser test. Best effort: without apt (or root) it says so and
# the features that need them fall back (torchvision download) or their tests skip.
pkgs=""
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || pkgs="$pkgs dataset-fashion-mnist"
command -v chromium >/dev/null 2>&1 || pkgs="$pkgs chromium"
[ -z "$pkgs" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get here; skipping:$pkgs" >&2; exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get install -y -q $pkgs >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q $pkgs >/dev/null 2>&1; }; then
  echo "system-deps: installed$pkgs"
else
  echo "system-deps: could not install$pkgs (continuing without them)" >&2
fi
exit 0
