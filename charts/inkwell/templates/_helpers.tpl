{{/* Names, as `helm create` makes them: truncated to 63 characters for DNS. */}}
{{- define "inkwell.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inkwell.fullname" -}}
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

{{- define "inkwell.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: only name and instance, so they never change across upgrades. */}}
{{- define "inkwell.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inkwell.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inkwell.labels" -}}
helm.sh/chart: {{ include "inkwell.chart" . }}
{{ include "inkwell.selectorLabels" . }}
app.kubernetes.io/version: {{ include "inkwell.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inkwell
{{- end }}

{{- define "inkwell.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "inkwell.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "inkwell.imageTag" .) }}
{{- end }}

{{- define "inkwell.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inkwell.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "inkwell.secretName" -}}
{{- .Values.secret.existingSecret | default (include "inkwell.fullname" .) }}
{{- end }}

{{/* The container environment, shared by the Deployment and the migration Job. */}}
{{- define "inkwell.env" -}}
- name: INKWELL_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ include "inkwell.secretName" . }}, key: {{ .Values.secret.keys.secretKey }}}}
- name: INKWELL_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "inkwell.secretName" . }}, key: {{ .Values.secret.keys.databaseUrl }}}}
{{- if or .Values.secret.sentryDsn .Values.secret.existingSecret }}
- name: INKWELL_SENTRY_DSN
  valueFrom: {secretKeyRef: {name: {{ include "inkwell.secretName" . }}, key: {{ .Values.secret.keys.sentryDsn }}, optional: true}}
{{- end }}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: K8S_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: K8S_NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the release's run-once pods (the migration Job's, helm test's): not the selector labels,
so neither the Service nor the disruption budget picks them up.
*/}}
{{- define "inkwell.runOnceLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: inkwell
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
