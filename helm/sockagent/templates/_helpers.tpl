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
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- end -}}
