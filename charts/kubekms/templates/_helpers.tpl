{{- define "kubekms.fullname" -}}
{{- if contains "kubekms" .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-kubekms" .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "kubekms.labels" -}}
app.kubernetes.io/name: kubekms
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubekms.selector" -}}
app.kubernetes.io/name: kubekms
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubekms.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kubekms.operatorName" -}}{{ include "kubekms.fullname" . }}-operator{{- end -}}
{{- define "kubekms.serverName" -}}{{ include "kubekms.fullname" . }}-server{{- end -}}

{{- define "kubekms.rootKeySecret" -}}
{{- .Values.server.rootKey.existingSecret | default (printf "%s-root-key" (include "kubekms.serverName" .)) -}}
{{- end -}}

{{- define "kubekms.principalsSecret" -}}
{{- .Values.server.principals.existingSecret | default (printf "%s-principals" (include "kubekms.serverName" .)) -}}
{{- end -}}

{{- define "kubekms.serverEndpoint" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" (ne .Values.server.tls.secretName "")) (include "kubekms.serverName" .) .Release.Namespace (int .Values.server.port) -}}
{{- end -}}

{{/* Secrets in the release namespace the operator may get: operator.credentialSecrets and the default
backend's. Empty without the chart's server: any Secret there (get only). Never any beside the server:
its root key and principals live there. */}}
{{- define "kubekms.credentialSecretNames" -}}
{{- $names := .Values.operator.credentialSecrets -}}
{{- if .Values.defaultBackend.enabled -}}
{{- $names = append $names .Values.defaultBackend.credentialsSecret -}}
{{- if .Values.server.tls.secretName }}{{ $names = append $names (.Values.server.tls.caSecretName | default .Values.server.tls.secretName) }}{{ end -}}
{{- end -}}
{{- toJson (uniq $names) -}}
{{- end -}}

{{- define "kubekms.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kubekms.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What the operator does to its kubekms.io objects: reconcile them (finalizers, kopf's
annotations) and write their status. Never create or delete them. */}}
{{- define "kubekms.operatorRules" -}}
- apiGroups: ["kubekms.io"]
  resources: {{ toJson .resources }}
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["kubekms.io"]
  resources:
    {{- range .resources }}
    - {{ printf "%s/status" . }}
    {{- end }}
  verbs: ["get", "patch", "update"]
{{- end -}}
