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

{{/*
A rolling update's surge, in percent of the replicas (Kubernetes rounds it up): the Deployment's
strategy and the connection budget both read it here, so they cannot disagree.
*/}}
{{- define "inkwell.maxSurgePercent" -}}
25
{{- end }}

{{/*
The database's connection budget and the pool each service process gets from it, as JSON (read it
with fromJson). The most pods that can exist at once are the HPA's maximum (or the fixed replica
count) plus a rolling update's surge beside them; each runs `workers` processes, each with a pool of
dbPoolSize connections and up to dbMaxOverflow more. The migration holds one connection (Alembic on
a NullPool engine, service/migrations/env.py), whether the hook Job or `inkwell-ops migrate` runs
it; reservedConnections are everyone else's. Pool sizes left unset share what remains equally among
the processes, half kept and half overflow, at most the service's own defaults of 10 + 10 (one event
loop has no use for more). Sizes that cannot fit fail the render, with the numbers.
*/}}
{{- define "inkwell.connectionBudget" -}}
{{- $maxConnections := int .Values.database.maxConnections }}
{{- $reserved := int .Values.database.reservedConnections }}
{{- $migration := 1 }}
{{- $replicasFrom := ternary "autoscaling.maxReplicas" "replicaCount" .Values.autoscaling.enabled }}
{{- $replicas := int (ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled) }}
{{- $surge := div (add (mul $replicas (include "inkwell.maxSurgePercent" . | int)) 99) 100 }}
{{- $pods := add $replicas $surge }}
{{- $workers := int .Values.workers }}
{{- $processes := mul $pods $workers }}
{{- $budget := sub (sub $maxConnections $reserved) $migration }}
{{- $share := div (max $budget 0) $processes }}
{{- $poolSet := not (kindIs "invalid" .Values.config.dbPoolSize) }}
{{- $overflowSet := not (kindIs "invalid" .Values.config.dbMaxOverflow) }}
{{- $pool := 0 }}
{{- if $poolSet }}
{{- $pool = int .Values.config.dbPoolSize }}
{{- else }}
{{- $overflowShare := ternary (int .Values.config.dbMaxOverflow) (div $share 2) $overflowSet }}
{{- $pool = max 1 (min 10 (sub $share $overflowShare)) }}
{{- end }}
{{- $overflow := 0 }}
{{- if $overflowSet }}
{{- $overflow = int .Values.config.dbMaxOverflow }}
{{- else }}
{{- $overflow = max 0 (min 10 (sub $share $pool)) }}
{{- end }}
{{- $perProcess := add $pool $overflow }}
{{- $needed := add (mul $processes $perProcess) $migration $reserved }}
{{- if gt $needed $maxConnections }}
{{- $advice := printf "Even one connection per process does not fit: lower %s or workers, or raise database.maxConnections (the database's max_connections, with its owners)." $replicasFrom }}
{{- if ge $share 1 }}
{{- $advice = printf "Lower config.dbPoolSize and config.dbMaxOverflow (or leave them unset to size them from the budget: %d connections per process here), lower %s or workers, or raise database.maxConnections (the database's max_connections, with its owners) to at least %d." $share $replicasFrom $needed }}
{{- end }}
{{- fail (printf "the release needs more database connections than database.maxConnections allows: %d pods (%s %d + a rolling update's surge of %d) x %d worker(s) x (config.dbPoolSize %d + config.dbMaxOverflow %d) = %d connections, + %d for the migration + %d reserved (database.reservedConnections) = %d, more than database.maxConnections %d. %s" $pods $replicasFrom $replicas $surge $workers $pool $overflow (mul $processes $perProcess) $migration $reserved $needed $maxConnections $advice) }}
{{- end }}
{{- dict "replicas" $replicas "replicasFrom" $replicasFrom "surge" $surge "pods" $pods "workers" $workers "pool" $pool "overflow" $overflow "connections" (mul $processes $perProcess) "budget" $budget "migration" $migration "reserved" $reserved "maxConnections" $maxConnections | toJson }}
{{- end }}
