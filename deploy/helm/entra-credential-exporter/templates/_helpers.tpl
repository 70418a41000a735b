{{/* The release's full name: the release name, with the chart's unless the release name contains it. */}}
{{- define "ece.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the exporter's pods (stable across upgrades). */}}
{{- define "ece.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ece.labels" -}}
{{ include "ece.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ece.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ece.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The probes' handler. The kubelet sends neither credentials nor a client certificate: with basic auth or
required client certificates it can only open a TCP connection; with TLS alone it speaks HTTPS.
*/}}
{{- define "ece.probe" -}}
{{- $tls := .root.Values.webConfig.tls_server_config | default dict -}}
{{- if or .root.Values.webConfig.basic_auth_users (eq ($tls.client_auth_type | default "") "RequireAndVerifyClientCert") -}}
tcpSocket:
  port: metrics
{{- else -}}
httpGet:
  path: {{ .path }}
  port: metrics
  scheme: {{ ternary "HTTPS" "HTTP" (not (empty $tls)) }}
{{- end -}}
{{- end -}}
