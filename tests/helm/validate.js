// Validates `helm template` output against Kubernetes schemas
// (kubernetes-models, cert-manager and prometheus-operator models) and
// asserts the chart's security settings.
//   node validate.js RENDERED.yaml PROFILE
// PROFILE: default | deployment | hostnetwork | certmanager | harness | metrics |
// plaintext
// Exits 1 with every problem listed.
"use strict";
const fs = require("fs");
const yaml = require("js-yaml");

const [file, profile] = process.argv.slice(2);
const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d);
const problems = [];
const fail = (msg) => problems.push(msg);

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/")
    ? apiVersion.split("/")
    : ["", apiVersion];
  const candidates = [];
  if (group === "cert-manager.io") {
    candidates.push(`@kubernetes-models/cert-manager/${group}/${version}/${kind}`);
  } else if (group === "monitoring.coreos.com") {
    candidates.push(`@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`);
  } else {
    candidates.push(`kubernetes-models/${group ? group + "/" : ""}${version}/${kind}`);
  }
  for (const c of candidates) {
    try {
      return require(c)[kind];
    } catch (e) {
      // try the next one
    }
  }
  return null;
}

// 1. Every object against its schema.
const byKind = {};
for (const doc of docs) {
  const Model = modelFor(doc.apiVersion, doc.kind);
  const name = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
  (byKind[doc.kind] = byKind[doc.kind] || []).push(doc);
  if (!Model) {
    fail(`${name}: no schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    fail(`${name}: schema: ${e.message}`);
  }
}

// 2. Security and operational settings.
const kind = profile === "deployment" ? "Deployment" : "DaemonSet";
const workloads = byKind[kind] || [];
if (workloads.length !== 1) fail(`expected one ${kind}, got ${workloads.length}`);
const other = kind === "Deployment" ? "DaemonSet" : "Deployment";
if (byKind[other]) fail(`unexpected ${other}`);

function checkPod(name, pod, isAgent) {
  const sc = pod.securityContext || {};
  const rootOk = isAgent && profile === "netns";
  if (sc.runAsNonRoot !== !rootOk)
    fail(`${name}: pod runAsNonRoot must be ${!rootOk}`);
  if (!sc.seccompProfile || sc.seccompProfile.type !== "RuntimeDefault")
    fail(`${name}: pod seccompProfile must be RuntimeDefault`);
  if (pod.automountServiceAccountToken !== false)
    fail(`${name}: automountServiceAccountToken must be false`);
  const wantHost = isAgent && profile === "hostnetwork";
  if (Boolean(pod.hostNetwork) !== wantHost)
    fail(`${name}: hostNetwork is ${pod.hostNetwork}, expected ${wantHost}`);
  // The netns profile's agent is privileged by design, and exactly so:
  // hostPID, root, CAP_SYS_ADMIN + CAP_SYS_PTRACE, read-only hostPaths.
  const privileged = isAgent && profile === "netns";
  if (Boolean(pod.hostPID) !== privileged)
    fail(`${name}: hostPID is ${pod.hostPID}, expected ${privileged}`);
  if (pod.hostIPC) fail(`${name}: hostIPC set`);
  if (privileged) {
    const c = pod.containers[0];
    const caps = ((c.securityContext || {}).capabilities || {});
    if (JSON.stringify(caps.add) !== JSON.stringify(["SYS_ADMIN", "SYS_PTRACE"]))
      fail(`${name}: netns profile adds ${caps.add}, expected SYS_ADMIN, SYS_PTRACE`);
    if (!(c.args || []).includes("--allow-network-namespaces"))
      fail(`${name}: netns profile without --allow-network-namespaces`);
    for (const m of c.volumeMounts || [])
      if (m.mountPath.startsWith("/host/") && m.readOnly !== true)
        fail(`${name}: ${m.mountPath} must be read-only`);
    for (const check of ["allowPrivilegeEscalation", "readOnlyRootFilesystem"]) {
      const want = check === "readOnlyRootFilesystem";
      if (c.securityContext[check] !== want) fail(`${name}: ${check} must be ${want}`);
    }
    if (!(caps.drop || []).includes("ALL")) fail(`${name}: capabilities must drop ALL`);
    return;
  }
  for (const c of pod.containers || []) {
    const csc = c.securityContext || {};
    const cname = `${name}/${c.name}`;
    if (csc.allowPrivilegeEscalation !== false) fail(`${cname}: allowPrivilegeEscalation must be false`);
    if (csc.readOnlyRootFilesystem !== true) fail(`${cname}: readOnlyRootFilesystem must be true`);
    if (csc.privileged) fail(`${cname}: privileged`);
    if (csc.runAsNonRoot !== true) fail(`${cname}: runAsNonRoot must be true`);
    const caps = csc.capabilities || {};
    if (!(caps.drop || []).includes("ALL")) fail(`${cname}: capabilities must drop ALL`);
    if ((caps.add || []).length) fail(`${cname}: adds capabilities ${caps.add}`);
    if (!csc.seccompProfile || csc.seccompProfile.type !== "RuntimeDefault")
      fail(`${cname}: seccompProfile must be RuntimeDefault`);
    if (!c.resources || !c.resources.requests || !c.resources.limits)
      fail(`${cname}: resources requests and limits`);
  }
}

for (const w of workloads) {
  const pod = w.spec.template.spec;
  checkPod(`${w.kind}/${w.metadata.name}`, pod, true);
  const strategy = w.kind === "Deployment" ? w.spec.strategy : w.spec.updateStrategy;
  if (!strategy || strategy.type !== "RollingUpdate" || strategy.rollingUpdate.maxUnavailable !== 1)
    fail(`${w.kind}: rolling update with maxUnavailable 1`);
  const c = pod.containers[0];
  const cmText = ((byKind.ConfigMap || [])[0] || {data: {}}).data["sockagentd.textproto"] || "";
  const hm = /health_listen: "0\.0\.0\.0:(\d+)"/.exec(cmText);
  const healthPort = hm && Number(hm[1]);
  if (!healthPort) fail("ConfigMap: health_listen missing");
  if (!(c.ports || []).some((p) => p.name === "health" && p.containerPort === healthPort))
    fail("container: health port not declared");
  for (const probe of ["livenessProbe", "readinessProbe"]) {
    const p = c[probe];
    if (!p) fail(`${probe} missing`);
    else if (!p.grpc) fail(`${probe}: native gRPC probe expected`);
    else if (!healthPort || p.grpc.port !== healthPort)
      fail(`${probe}: must probe the health-only port (${healthPort}), got ${p.grpc.port}`);
  }
  // The grace period must exceed the drain deadline in the ConfigMap.
  const cm = (byKind.ConfigMap || [])[0];
  const m = cm && /drain_timeout: "(\d+)s"/.exec(cm.data["sockagentd.textproto"]);
  if (!m) fail("ConfigMap: drain_timeout in seconds not found");
  else if (!(pod.terminationGracePeriodSeconds > Number(m[1])))
    fail(`terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= drain ${m[1]}s`);
  if (profile === "certmanager") {
    const sysctls = (pod.securityContext.sysctls || []).map((s) => s.name);
    if (!sysctls.includes("net.ipv4.ip_unprivileged_port_start"))
      fail("privileged ports: net.ipv4.ip_unprivileged_port_start sysctl expected");
  }
}
const tests = (byKind.Pod || []).filter(
  (p) => (p.metadata.annotations || {})["helm.sh/hook"] === "test");
if (tests.length !== 1) fail(`expected one helm test Pod, got ${tests.length}`);
for (const t of tests) checkPod(`Pod/${t.metadata.name}`, t.spec, false);

const svc = (byKind.Service || [])[0];
if (!svc || svc.spec.clusterIP !== "None") fail("headless Service (clusterIP None) expected");
if (!byKind.NetworkPolicy) fail("NetworkPolicy expected");
if ((profile === "deployment") !== Boolean(byKind.PodDisruptionBudget))
  fail("PodDisruptionBudget exactly in the deployment profile");
if ((profile === "metrics") !== Boolean(byKind.ServiceMonitor))
  fail("ServiceMonitor exactly in the metrics profile");
const certificates = byKind.Certificate || [];
const wantCertificates = {certmanager: 1, harness: 2}[profile] || 0;
if (certificates.length !== wantCertificates)
  fail(`${wantCertificates} Certificate(s) expected, got ${certificates.length}`);
if (profile === "harness") {
  const harness = certificates.find((c) => c.metadata.name.endsWith("-harness"));
  if (!harness) fail("harness: no harness Certificate");
  else {
    if (harness.metadata.namespace !== "my-harness")
      fail(`harness Certificate in ${harness.metadata.namespace}, expected my-harness`);
    const usages = harness.spec.usages || [];
    if (!usages.includes("client auth") || usages.includes("server auth"))
      fail(`harness Certificate usages ${usages}: client auth only`);
  }
}

// 3. Every agent reports node, pod and namespace labels from the Downward API.
for (const w of workloads) {
  const c = w.spec.template.spec.containers[0];
  const args = (c.args || []).join(" ");
  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
  for (const [label, variable, field] of [
    ["node", "SOCKAGENT_NODE_NAME", "spec.nodeName"],
    ["pod", "SOCKAGENT_POD_NAME", "metadata.name"],
    ["namespace", "SOCKAGENT_POD_NAMESPACE", "metadata.namespace"]]) {
    if (!args.includes(`--label ${label}=$(${variable})`))
      fail(`args: --label ${label}=$(${variable}) missing`);
    const e = env[variable];
    if (!e || !e.valueFrom || !e.valueFrom.fieldRef || e.valueFrom.fieldRef.fieldPath !== field)
      fail(`env ${variable}: fieldRef ${field} expected`);
  }
  if (profile === "harness" && !args.includes("--label zone=eu-west-1a"))
    fail("agentLabels: --label zone=eu-west-1a missing");
}

if (problems.length) {
  console.error(`${profile}: ${problems.length} problem(s):\n  ` + problems.join("\n  "));
  process.exit(1);
}
console.log(`ok: ${profile}: ${docs.length} objects valid, security settings hold`);
