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

{{/*
The container environment from the Secret, shared by the Deployment and the migration Job: call it
with (dict "root" . "migration" true) for the Job. Through PgBouncer the migration goes straight to
PostgreSQL (secret.directDatabaseUrl): it holds locks and long transactions, and opens its one
connection without the pooler's statement settings (docs/connections.md). It needs neither the
replica nor Redis, so the Job gets neither.
*/}}
{{- define "inkwell.env" -}}
{{- $ := .root }}
{{- $secret := include "inkwell.secretName" $ }}
{{- $keys := $.Values.secret.keys }}
- name: INKWELL_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.secretKey }}}}
{{- $databaseUrlKey := $keys.databaseUrl }}
{{- if and .migration (eq $.Values.database.pooler "pgbouncer") }}
{{- $databaseUrlKey = $keys.directDatabaseUrl }}
{{- end }}
- name: INKWELL_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $databaseUrlKey }}}}
{{- if not .migration }}
{{- if $.Values.database.replica.enabled }}
- name: INKWELL_DATABASE_READ_URL
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.databaseReadUrl }}}}
{{- end }}
{{- if $.Values.redis.enabled }}
- name: INKWELL_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.redisUrl }}}}
{{- end }}
{{- end }}
{{- if or $.Values.secret.sentryDsn $.Values.secret.existingSecret }}
- name: INKWELL_SENTRY_DSN
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.sentryDsn }}, optional: true}}
{{- end }}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: K8S_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: K8S_NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
{{- with $.Values.extraEnv }}
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
dbPoolSize connections and up to dbMaxOverflow more, and with a replica (database.replica) a second
pool of the same size to it. Pool sizes left unset share the budget equally among the pools, half
kept and half overflow, at most the service's own defaults of 10 + 10 (one event loop has no use for
more). Sizes that cannot fit fail the render, with the numbers.

Straight to PostgreSQL (database.pooler none), the budget is max_connections less the migration's
one connection (Alembic on a NullPool engine, service/migrations/env.py, whether the hook Job or
`inkwell-ops migrate` runs it) and reservedConnections, everyone else's; the replica's pools must fit
its own max_connections less its reserve. Through PgBouncer (pgbouncer), the pools are PgBouncer's
clients and the budget is its max_client_conn (the replica's pools too: it is another [databases]
entry of the same PgBouncer); what reaches PostgreSQL is PgBouncer's server pool, instances x
(default_pool_size + reserve_pool_size), which must fit max_connections beside the migration (straight
to PostgreSQL) and the reserve, and the replica's beside its reserve.
*/}}
{{- define "inkwell.connectionBudget" -}}
{{- $db := .Values.database }}
{{- $pooled := eq $db.pooler "pgbouncer" }}
{{- $replica := $db.replica.enabled }}
{{- $maxConnections := int $db.maxConnections }}
{{- $reserved := int $db.reservedConnections }}
{{- $migration := 1 }}
{{- $replicaMax := int (ternary $db.maxConnections $db.replica.maxConnections (kindIs "invalid" $db.replica.maxConnections)) }}
{{- $replicaReserved := int (ternary $db.reservedConnections $db.replica.reservedConnections (kindIs "invalid" $db.replica.reservedConnections)) }}
{{- $databases := ternary 2 1 $replica }}
{{- $replicasFrom := ternary "autoscaling.maxReplicas" "replicaCount" .Values.autoscaling.enabled }}
{{- $replicas := int (ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled) }}
{{- $surge := div (add (mul $replicas (include "inkwell.maxSurgePercent" . | int)) 99) 100 }}
{{- $pods := add $replicas $surge }}
{{- $workers := int .Values.workers }}
{{- $processes := mul $pods $workers }}
{{- $podsText := printf "%d pods (%s %d + a rolling update's surge of %d) x %d worker(s)" $pods $replicasFrom $replicas $surge $workers }}
{{- $budget := 0 }}
{{- $share := 0 }}
{{- if $pooled }}
{{- $budget = int $db.pgbouncer.maxClientConnections }}
{{- $share = div $budget (mul $processes $databases) }}
{{- else }}
{{- $budget = sub (sub $maxConnections $reserved) $migration }}
{{- $share = div (max $budget 0) $processes }}
{{- if $replica }}
{{- $share = min $share (div (max (sub $replicaMax $replicaReserved) 0) $processes) }}
{{- end }}
{{- end }}
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
{{- $poolText := printf "(config.dbPoolSize %d + config.dbMaxOverflow %d)" $pool $overflow }}
{{- $connections := mul $processes $perProcess }}
{{- $server := 0 }}
{{- if $pooled }}
{{- $pgbouncer := $db.pgbouncer }}
{{- $instances := int $pgbouncer.instances }}
{{- $reservePool := int $pgbouncer.reservePoolSize }}
{{- $server = mul $instances (add (int $pgbouncer.serverPoolSize) $reservePool) }}
{{- $serverText := printf "database.pgbouncer.instances %d x (database.pgbouncer.serverPoolSize %d + database.pgbouncer.reservePoolSize %d) = %d server connections" $instances (int $pgbouncer.serverPoolSize) $reservePool $server }}
{{- $serverNeeded := add $server $migration $reserved }}
{{- if gt $serverNeeded $maxConnections }}
{{- $fit := sub (div (max (sub (sub $maxConnections $migration) $reserved) 0) $instances) $reservePool }}
{{- $advice := "Not even one server connection per PgBouncer instance fits: run fewer PgBouncer instances (database.pgbouncer.instances), lower database.pgbouncer.reservePoolSize or database.reservedConnections, or raise database.maxConnections (the database's max_connections, with its owners)." }}
{{- if ge $fit 1 }}
{{- $advice = printf "Lower PgBouncer's default_pool_size, and database.pgbouncer.serverPoolSize with it, to at most %d, or raise database.maxConnections (the database's max_connections, with its owners) to at least %d." $fit $serverNeeded }}
{{- end }}
{{- fail (printf "PgBouncer's server connections do not fit the database's: %s, + %d for the migration (straight to PostgreSQL) + %d reserved (database.reservedConnections) = %d, more than database.maxConnections %d. %s" $serverText $migration $reserved $serverNeeded $maxConnections $advice) }}
{{- end }}
{{- if and $replica (gt (add $server $replicaReserved) $replicaMax) }}
{{- fail (printf "PgBouncer's server connections to the replica do not fit it: %s, + %d reserved (database.replica.reservedConnections) = %d, more than database.replica.maxConnections %d. Lower PgBouncer's pool for the replica (its [databases] entry's pool_size, or default_pool_size) and database.pgbouncer.serverPoolSize with it, or raise database.replica.maxConnections (the replica's max_connections, with its owners)." $serverText $replicaReserved (add $server $replicaReserved) $replicaMax) }}
{{- end }}
{{- $clients := mul $connections $databases }}
{{- if gt $clients $budget }}
{{- $databasesText := ternary " x 2 (a pool to the primary and one to the replica)" "" $replica }}
{{- $advice := printf "Even one connection per pool does not fit: lower %s or workers, or raise PgBouncer's max_client_conn, and database.pgbouncer.maxClientConnections with it." $replicasFrom }}
{{- if ge $share 1 }}
{{- $advice = printf "Lower config.dbPoolSize and config.dbMaxOverflow (or leave them unset to size them from the budget: %d connections per pool here), lower %s or workers, or raise PgBouncer's max_client_conn, and database.pgbouncer.maxClientConnections with it, to at least %d." $share $replicasFrom $clients }}
{{- end }}
{{- fail (printf "the release needs more PgBouncer client connections than database.pgbouncer.maxClientConnections allows: %s x %s%s = %d client connections, more than database.pgbouncer.maxClientConnections %d (PgBouncer's max_client_conn). %s" $podsText $poolText $databasesText $clients $budget $advice) }}
{{- end }}
{{- else }}
{{- $needed := add $connections $migration $reserved }}
{{- if gt $needed $maxConnections }}
{{- $advice := printf "Even one connection per process does not fit: lower %s or workers, or raise database.maxConnections (the database's max_connections, with its owners)." $replicasFrom }}
{{- if ge $share 1 }}
{{- $advice = printf "Lower config.dbPoolSize and config.dbMaxOverflow (or leave them unset to size them from the budget: %d connections per process here), lower %s or workers, or raise database.maxConnections (the database's max_connections, with its owners) to at least %d." $share $replicasFrom $needed }}
{{- end }}
{{- fail (printf "the release needs more database connections than database.maxConnections allows: %s x %s = %d connections, + %d for the migration + %d reserved (database.reservedConnections) = %d, more than database.maxConnections %d. %s" $podsText $poolText $connections $migration $reserved $needed $maxConnections $advice) }}
{{- end }}
{{- $replicaNeeded := add $connections $replicaReserved }}
{{- if and $replica (gt $replicaNeeded $replicaMax) }}
{{- $advice := printf "Even one connection per process does not fit the replica: lower %s or workers, or raise database.replica.maxConnections (the replica's max_connections, with its owners)." $replicasFrom }}
{{- if ge $share 1 }}
{{- $advice = printf "Lower config.dbPoolSize and config.dbMaxOverflow (or leave them unset to size them from both budgets: %d connections per process here), lower %s or workers, or raise database.replica.maxConnections (the replica's max_connections, with its owners) to at least %d." $share $replicasFrom $replicaNeeded }}
{{- end }}
{{- fail (printf "the release needs more connections to the replica than database.replica.maxConnections allows: %s x %s, the replica's pool being the primary's size, = %d connections, + %d reserved (database.replica.reservedConnections) = %d, more than database.replica.maxConnections %d. %s" $podsText $poolText $connections $replicaReserved $replicaNeeded $replicaMax $advice) }}
{{- end }}
{{- end }}
{{- dict "pooler" $db.pooler "replica" $replica "databases" $databases "replicas" $replicas "replicasFrom" $replicasFrom "surge" $surge "pods" $pods "workers" $workers "pool" $pool "overflow" $overflow "connections" $connections "clients" (mul $connections $databases) "budget" $budget "migration" $migration "reserved" $reserved "maxConnections" $maxConnections "server" $server "replicaMaxConnections" $replicaMax "replicaReserved" $replicaReserved | toJson }}
{{- end }}

{{/*
What the chart cannot leave to the service to refuse at start-up, or would count wrongly: a replica
outside development and test needs Redis (the service keeps each user's read-your-writes there, for
every pod to see, and refuses to start without it); a URL for something not switched on would be
silently unused; and the pooler or the replica set through extraEnv would escape the budget above.
*/}}
{{- define "inkwell.checkDatabase" -}}
{{- $extra := list }}
{{- range .Values.extraEnv }}
{{- $extra = append $extra .name }}
{{- end }}
{{- range $name, $value := dict "INKWELL_DATABASE_POOLER" "database.pooler" "INKWELL_DATABASE_READ_URL" "database.replica" }}
{{- if has $name $extra }}
{{- fail (printf "extraEnv sets %s: use %s instead, so that the connection budget counts what the pods open" $name $value) }}
{{- end }}
{{- end }}
{{- if and .Values.secret.databaseReadUrl (not .Values.database.replica.enabled) }}
{{- fail "secret.databaseReadUrl is set but database.replica.enabled is false: enable the replica (its connections are then counted against database.replica.maxConnections) or leave the URL empty" }}
{{- end }}
{{- if and .Values.secret.redisUrl (not .Values.redis.enabled) }}
{{- fail "secret.redisUrl is set but redis.enabled is false: enable Redis or leave the URL empty" }}
{{- end }}
{{- $local := has .Values.config.environment (list "development" "test") }}
{{- $redis := or .Values.redis.enabled (has "INKWELL_REDIS_URL" $extra) }}
{{- if and .Values.database.replica.enabled (not $local) (not $redis) }}
{{- fail (printf "database.replica.enabled needs Redis outside development and test (config.environment is %s): set redis.enabled and its URL (secret.redisUrl, or the key %s of secret.existingSecret). Every pod must know which users' writes the replica has not replayed yet, and the service refuses to start without it." .Values.config.environment .Values.secret.keys.redisUrl) }}
{{- end }}
{{- end }}

{{/*
"true" when the pods rate-limit (rateLimits.enabled, null: with Redis, or in development and test
where each process counts alone), else "false"; limits without Redis elsewhere fail here, as the
service would refuse to start with them.
*/}}
{{- define "inkwell.rateLimits" -}}
{{- $extra := list }}
{{- range .Values.extraEnv }}
{{- $extra = append $extra .name }}
{{- end }}
{{- $local := has .Values.config.environment (list "development" "test") }}
{{- $redis := or .Values.redis.enabled (has "INKWELL_REDIS_URL" $extra) }}
{{- $enabled := .Values.rateLimits.enabled }}
{{- if kindIs "invalid" $enabled }}
{{- $enabled = or $redis $local }}
{{- end }}
{{- if and $enabled (not $redis) (not $local) }}
{{- fail (printf "rateLimits.enabled needs Redis outside development and test (config.environment is %s): set redis.enabled and its URL, or leave rateLimits.enabled null (off without Redis). Limits counted in each pod would give a client its quota once per pod; the service would refuse to start." .Values.config.environment) }}
{{- end }}
{{- ternary "true" "false" $enabled }}
{{- end }}

{{/*
"true" when the pods serve live updates (live.enabled), else "false". Several pods (replicaCount > 1,
or autoscaling) need Redis for it: each pod fans out only what its own Redis Streams reader sees, and
without Redis a comment posted through one pod would reach only that pod's sockets. That fails here.
*/}}
{{- define "inkwell.live" -}}
{{- $extra := list }}
{{- range .Values.extraEnv }}
{{- $extra = append $extra .name }}
{{- end }}
{{- $redis := or .Values.redis.enabled (has "INKWELL_REDIS_URL" $extra) }}
{{- $several := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) (gt (int .Values.workers) 1) }}
{{- if and (eq (toString .Values.live.enabled) "true") $several (not $redis) }}
{{- $pods := ternary (printf "autoscaling up to %d pods" (int .Values.autoscaling.maxReplicas)) (printf "replicaCount %d, workers %d" (int .Values.replicaCount) (int .Values.workers)) .Values.autoscaling.enabled }}
{{- fail (printf "live.enabled across several processes (%s) needs Redis: set redis.enabled and its URL (secret.redisUrl, or the key %s of secret.existingSecret), or run one pod of one worker, or leave live.enabled null (then off without Redis). Each process delivers the events its Redis Streams reader sees; without Redis a comment posted through one would reach only that process's listeners." $pods .Values.secret.keys.redisUrl) }}
{{- end }}
{{- if kindIs "invalid" .Values.live.enabled }}
{{- ternary "true" "false" (or $redis (not $several)) }}
{{- else }}
{{- ternary "true" "false" .Values.live.enabled }}
{{- end }}
{{- end }}

{{/*
The Host names the service answers (INKWELL_ALLOWED_HOSTS): the Ingress's host, the Service's names
inside the cluster, localhost for a port-forward, and config.extraAllowedHosts.
*/}}
{{- define "inkwell.allowedHosts" -}}
{{- $service := include "inkwell.fullname" . -}}
{{- $hosts := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) "localhost" "127.0.0.1" -}}
{{- if .Values.ingress.enabled }}{{ $hosts = prepend $hosts .Values.ingress.host }}{{ end -}}
{{- join "," (concat $hosts .Values.config.extraAllowedHosts) -}}
{{- end }}

{{/*
Password hashes each process may run at once, as JSON (read it with fromJson): each Argon2id hash
holds config.argon2MemoryCostKib while it runs (service/auth/security.py), so as many as fit a
process's share of resources.limits.memory (the limit over `workers`) once config.processMemoryMi is
set aside, at most 8. Without a memory limit, config.argon2MaxConcurrent or the service's 2. A limit
that cannot hold one hash beside the process, or a config.argon2MaxConcurrent it cannot hold, fails
the render with the numbers.
*/}}
{{- define "inkwell.hashingBudget" -}}
{{- $config := .Values.config }}
{{- $hashMi := div (add (int $config.argon2MemoryCostKib) 1023) 1024 }}
{{- $baseMi := int $config.processMemoryMi }}
{{- $set := not (kindIs "invalid" $config.argon2MaxConcurrent) }}
{{- $limit := toString (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- $concurrent := ternary (int $config.argon2MaxConcurrent) 2 $set }}
{{- $fit := 0 }}
{{- if $limit }}
{{- $bytes := 0 }}
{{- $units := list (list "Ki" 1024) (list "Mi" 1048576) (list "Gi" 1073741824) (list "k" 1000) (list "M" 1000000) (list "G" 1000000000) }}
{{- $matched := false }}
{{- range $units }}
{{- if and (not $matched) (hasSuffix (index . 0) $limit) }}
{{- $bytes = mul (trimSuffix (index . 0) $limit | int64) (index . 1) }}
{{- $matched = true }}
{{- end }}
{{- end }}
{{- if not $matched }}
{{- if not (regexMatch "^[0-9]+$" $limit) }}
{{- fail (printf "resources.limits.memory %s: the chart reads a plain number of bytes or one with Ki, Mi, Gi, k, M or G" $limit) }}
{{- end }}
{{- $bytes = $limit | int64 }}
{{- end }}
{{- $workers := int .Values.workers }}
{{- $shareMi := div (div $bytes 1048576) $workers }}
{{- $fit = div (max (sub $shareMi $baseMi) 0) $hashMi }}
{{- $text := printf "resources.limits.memory %s over %d worker(s) is %d MiB a process; less config.processMemoryMi %d, it holds %d password hash(es) of config.argon2MemoryCostKib %d KiB (%d MiB each)" $limit $workers $shareMi $baseMi $fit (int $config.argon2MemoryCostKib) $hashMi }}
{{- if lt $fit 1 }}
{{- fail (printf "%s: not one, so a single login could get the pod killed for memory. Raise resources.limits.memory to at least %d Mi, run fewer workers, or lower config.argon2MemoryCostKib." $text (mul $workers (add $baseMi $hashMi))) }}
{{- end }}
{{- if and $set (gt $concurrent $fit) }}
{{- fail (printf "config.argon2MaxConcurrent %d does not fit: %s. Lower it (or leave it unset), or raise resources.limits.memory to at least %d Mi." $concurrent $text (mul $workers (add $baseMi (mul $hashMi $concurrent)))) }}
{{- end }}
{{- if not $set }}
{{- $concurrent = min $fit 8 }}
{{- end }}
{{- end }}
{{- dict "concurrent" $concurrent "fit" $fit "hashMi" $hashMi | toJson }}
{{- end }}
