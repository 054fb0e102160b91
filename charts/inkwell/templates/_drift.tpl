{{/*
Helm and inkwell-ops change the same fields: the image, the replica count, the HPA's bounds. Helm stays
the source of truth (inkwell-ops needs no access to the release's Secrets); inkwell-ops makes the quick
change an incident needs. So that neither silently undoes the other, the chart stamps what it rendered
into annotations (inkwell.dev/helm-*): inkwell-ops compares the live object with the stamp and prints the
`helm upgrade --reuse-values --set ...` that records its change, and an upgrade whose values would put
Helm's old value back over a change made outside Helm fails here, saying which --set keeps the change.
An upgrade that sets a value of its own (a new image.tag) is a decision, and goes through.
*/}}
{{- define "inkwell.deploymentStamp" -}}
inkwell.dev/helm-image: {{ include "inkwell.image" . | quote }}
{{- if not .Values.autoscaling.enabled }}
inkwell.dev/helm-replicas: {{ .Values.replicaCount | quote }}
{{- end }}
{{- end }}

{{- define "inkwell.hpaStamp" -}}
inkwell.dev/helm-min-replicas: {{ .Values.autoscaling.minReplicas | quote }}
inkwell.dev/helm-max-replicas: {{ .Values.autoscaling.maxReplicas | quote }}
{{- end }}

{{/* Fails the render when these values would revert a change made outside Helm (lookup: install and
upgrade only; `helm template` and `helm lint` see no live objects). */}}
{{- define "inkwell.refuseDrift" -}}
{{- $name := include "inkwell.fullname" . }}
{{- $changes := list }}
{{- $keep := list }}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace $name }}
{{- if $live }}
{{- $stamp := $live.metadata.annotations | default dict }}
{{- $helmImage := get $stamp "inkwell.dev/helm-image" }}
{{- $liveImage := "" }}
{{- range $live.spec.template.spec.containers }}
{{- if eq .name "inkwell" }}{{ $liveImage = .image }}{{ end }}
{{- end }}
{{- if and $helmImage $liveImage (ne $liveImage $helmImage) (eq (include "inkwell.image" .) $helmImage) }}
{{- $repository := regexReplaceAll ":[^:/]+$" $liveImage "" }}
{{- $changes = append $changes (printf "image %s (Helm's: %s)" $liveImage $helmImage) }}
{{- if ne $repository .Values.image.repository }}
{{- $keep = append $keep (printf "--set image.repository=%s" $repository) }}
{{- end }}
{{- $keep = append $keep (printf "--set image.tag=%s" (trimPrefix (printf "%s:" $repository) $liveImage)) }}
{{- end }}
{{- $helmReplicas := get $stamp "inkwell.dev/helm-replicas" }}
{{- $liveReplicas := toString (int ($live.spec.replicas | default 1)) }}
{{- if and (not .Values.autoscaling.enabled) $helmReplicas (ne $liveReplicas $helmReplicas) (eq (toString .Values.replicaCount) $helmReplicas) }}
{{- $changes = append $changes (printf "%s replicas (Helm's: %s)" $liveReplicas $helmReplicas) }}
{{- $keep = append $keep (printf "--set replicaCount=%s" $liveReplicas) }}
{{- end }}
{{- end }}
{{- $hpa := lookup "autoscaling/v2" "HorizontalPodAutoscaler" .Release.Namespace $name }}
{{- if and $hpa .Values.autoscaling.enabled }}
{{- $stamp := $hpa.metadata.annotations | default dict }}
{{- range $field := list "minReplicas" "maxReplicas" }}
{{- $helmValue := get $stamp (printf "inkwell.dev/helm-%s" (kebabcase $field)) }}
{{- $liveValue := toString (int (get $hpa.spec $field)) }}
{{- if and $helmValue (ne $liveValue $helmValue) (eq (toString (get $.Values.autoscaling $field)) $helmValue) }}
{{- $changes = append $changes (printf "HPA %s %s (Helm's: %s)" $field $liveValue $helmValue) }}
{{- $keep = append $keep (printf "--set autoscaling.%s=%s" $field $liveValue) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $changes }}
{{- fail (printf "release %s was changed outside Helm (inkwell-ops): %s; these values would put Helm's back. To keep the change, add %s to this helm upgrade; to return to Helm's values, undo it with inkwell-ops first (docs/runbooks/README.md)" .Release.Name (join ", " $changes) (join " " $keep)) }}
{{- end }}
{{- end }}
