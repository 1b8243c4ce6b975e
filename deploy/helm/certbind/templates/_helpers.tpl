{{/* The chart name, or nameOverride. */}}
{{- define "certbind.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object of the release: fullnameOverride, else the release name plus the chart name. */}}
{{- define "certbind.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "certbind.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the pods: never change them in an upgrade (selectors are immutable). */}}
{{- define "certbind.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certbind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "certbind.labels" -}}
helm.sh/chart: {{ include "certbind.chart" . }}
{{ include "certbind.selectorLabels" . }}
app.kubernetes.io/component: ext-authz
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "certbind.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "certbind.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "certbind.configMapName" -}}
{{- default (printf "%s-config" (include "certbind.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}

{{- define "certbind.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "certbind.fullname" .)) .Values.tls.secret.name }}
{{- end }}

{{- define "certbind.pkiSecretName" -}}
{{- default (printf "%s-pki" (include "certbind.fullname" .)) .Values.pki.secret.name }}
{{- end }}

{{- define "certbind.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* PromQL label matchers selecting this release's series, for the PrometheusRule. */}}
{{- define "certbind.ruleSelector" -}}
{{- if .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "certbind.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}
