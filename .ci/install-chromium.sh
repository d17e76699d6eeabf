#!/bin/sh
# Install the system's headless Chromium and its driver for the tests of `flow serve`, unless both
# are already there. Selenium drives /usr/bin/chromium through /usr/bin/chromedriver; nothing
# downloads a browser of its own. Needs root for apt-get.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "install-chromium: chromium and chromedriver already present"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "install-chromium: installed but /usr/bin/chromium or /usr/bin/chromedriver is missing" >&2
    exit 1
fi
