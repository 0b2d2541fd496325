{{- define "sockagent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sockagent.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sockagent.labels" -}}
{{ include "sockagent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sockagent.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "sockagent.tlsSecret" -}}
{{ .Values.tls.existingSecret | default (printf "%s-tls" (include "sockagent.fullname" .)) }}
{{- end -}}

{{- define "sockagent.headless" -}}
{{ include "sockagent.fullname" . }}-headless
{{- end -}}

{{/* The agent's container security context: restricted, or with
     networkNamespaces.enabled root with CAP_SYS_ADMIN (setns) and
     CAP_SYS_PTRACE (opening other processes' /proc/PID/ns/net). */}}
{{- define "sockagent.agentSecurityContext" -}}
{{- if .Values.networkNamespaces.enabled -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
capabilities:
  drop: ["ALL"]
  add: ["SYS_ADMIN", "SYS_PTRACE"]
seccompProfile:
  type: RuntimeDefault
{{- else -}}
{{ include "sockagent.containerSecurityContext" . }}
{{- end -}}
{{- end -}}

{{/* Restricted pod security: the same for the agent and the test pod. */}}
{{- define "sockagent.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sockagent.validate" -}}
{{- if and (not .Values.tls.enabled) (not .Values.insecurePlaintext) -}}
{{- fail "tls.enabled is false: the agent refuses plaintext on the pod network; enable TLS or set insecurePlaintext: true (dangerous)" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.insecurePlaintext -}}
{{- fail "insecurePlaintext needs tls.enabled: false" -}}
{{- end -}}
{{- if and .Values.hostNetwork (not (kindIs "invalid" .Values.unprivilegedPortStart)) -}}
{{- fail "unprivilegedPortStart is a pod-network sysctl: not with hostNetwork" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not .Values.tls.certManager.enabled) -}}
{{- fail "tls.enabled is true but no certificate source is set, so the agent pods would wait forever for a Secret nobody creates: set tls.existingSecret=NAME (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt), or tls.certManager.enabled=true with tls.certManager.issuerRef.name=ISSUER, or (dangerous) tls.enabled=false with insecurePlaintext=true" -}}
{{- end -}}
{{- if and .Values.harnessClientCert.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "harnessClientCert.certManager.enabled needs tls.certManager.issuerRef.name (a ClusterIssuer to issue into another namespace), the CA the agents verify clients with" -}}
{{- end -}}
{{- if and .Values.harnessClientCert.certManager.enabled .Values.harnessClientCert.existingSecret -}}
{{- fail "harnessClientCert: set certManager.enabled or existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.networkNamespaces.enabled (not .Values.policy.content) -}}
{{- fail "networkNamespaces.enabled gives callers every pod's network on the node: set policy.content with a rule whose network_namespaces names what harnesses may target (e.g. \"k8s:my-app-*\")" -}}
{{- end -}}
{{- if and .Values.networkNamespaces.enabled .Values.hostNetwork -}}
{{- fail "networkNamespaces.enabled and hostNetwork: pick one (the namespace profile reaches pods from the pod network)" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- end -}}


{{/* The client certificate Secret of harnesses in the release namespace
     (the helm test pod): the harness Secret when the chart has one there,
     else the agents' own (cert-manager issues it with client auth too). */}}
{{- define "sockagent.harnessSecret" -}}
{{- if .Values.harnessClientCert.existingSecret -}}
{{ .Values.harnessClientCert.existingSecret }}
{{- else if and .Values.harnessClientCert.certManager.enabled (eq (include "sockagent.harnessNamespace" .) .Release.Namespace) -}}
{{ include "sockagent.harnessCertSecret" . }}
{{- else -}}
{{ include "sockagent.tlsSecret" . }}
{{- end -}}
{{- end -}}

{{- define "sockagent.harnessNamespace" -}}
{{ .Values.harnessClientCert.certManager.namespace | default .Release.Namespace }}
{{- end -}}

{{- define "sockagent.harnessCertSecret" -}}
{{ .Values.harnessClientCert.certManager.secretName | default (printf "%s-harness-tls" (include "sockagent.fullname" .)) }}
{{- end -}}

{{/* --label flags: node, pod and namespace from the Downward API, then
     agentLabels (sorted by key). Kubernetes expands $(VAR) in args. */}}
{{- define "sockagent.labelArgs" -}}
{{- if .Values.networkNamespaces.enabled }}
- "--allow-network-namespaces"
- "--host-root"
- "/host"
{{- end }}
- "--label"
- "node=$(SOCKAGENT_NODE_NAME)"
- "--label"
- "pod=$(SOCKAGENT_POD_NAME)"
- "--label"
- "namespace=$(SOCKAGENT_POD_NAMESPACE)"
{{- range $key, $value := .Values.agentLabels }}
- "--label"
- {{ printf "%s=%s" $key $value | quote }}
{{- end }}
{{- end -}}
