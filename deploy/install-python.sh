#!/usr/bin/env bash
# Installs the Python client (package `sockagent`, its generated gRPC stubs,
# and a .dist-info registering the pytest plugin as a pytest11 entry point)
# for Debian's /usr/bin/python3, into /usr/local/lib/python3.X/dist-packages
# (where Debian's Python looks for locally installed packages; pip and PEP 668
# are not involved). Afterwards: /usr/bin/python3 -c 'import sockagent'.
#
#   bash deploy/install-python.sh            # installs (sudo when not root)
#   DESTDIR=/tmp/stage bash deploy/install-python.sh   # staged install
#
# Uninstall: remove sockagent/ and sockagent-*.dist-info/ from that directory
# (build/install_manifest_python.txt lists every file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$build_dir" --target python_stubs
if [[ $(id -u) -ne 0 && -z ${DESTDIR:-} ]]; then sudo=sudo; else sudo=; fi
$sudo cmake --install "$build_dir" --component python
site=$(cmake -L -N "$build_dir" | sed -n 's/^SOCKAGENT_PYTHON_SITE:PATH=//p')
if [[ -z ${DESTDIR:-} ]]; then
  (cd / && /usr/bin/python3 -c 'import sockagent; print("installed sockagent", sockagent.__version__, "in", sockagent.__path__[0])')
else
  echo "staged sockagent in ${DESTDIR}${site}"
fi
