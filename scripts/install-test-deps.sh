#!/usr/bin/env bash
# What the tests need beyond npm packages: Debian's Jupyter (to execute the
# notebooks with the tslab kernel) and Chromium (to open report.html headless).
# Safe to run again; needs root for apt-get.
set -euo pipefail
if ! command -v jupyter >/dev/null 2>&1 || ! /usr/bin/python3 -c "import nbclient, ipykernel" >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel chromium fonts-dejavu-core
fi
