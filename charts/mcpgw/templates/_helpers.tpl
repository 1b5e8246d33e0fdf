{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "mcpgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name of the gateway's objects. */}}
{{- define "mcpgw.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcpgw.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "mcpgw.labels" -}}
helm.sh/chart: {{ include "mcpgw.chart" . }}
{{ include "mcpgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels selecting the gateway's pods. */}}
{{- define "mcpgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "mcpgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcpgw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mcpgw.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The bundled Redis: name and labels. */}}
{{- define "mcpgw.redis.fullname" -}}
{{- printf "%s-redis" (include "mcpgw.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcpgw.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "mcpgw.redis.labels" -}}
helm.sh/chart: {{ include "mcpgw.chart" . }}
{{ include "mcpgw.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.redis.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Whether the metrics listener is separate from the MCP listener. */}}
{{- define "mcpgw.metricsSeparate" -}}
{{- if and .Values.metrics.port (ne (int .Values.metrics.port) (int .Values.service.port)) -}}true{{- end -}}
{{- end -}}

{{/* Name of the port Prometheus scrapes. */}}
{{- define "mcpgw.metricsPortName" -}}
{{- if include "mcpgw.metricsSeparate" . -}}metrics{{- else -}}http{{- end -}}
{{- end -}}

{{/*
The configuration file the gateway loads: values.config with the keys the
chart owns filled in. Setting one of them in values.config is refused, so
the pod spec and the file cannot disagree.
*/}}
{{- define "mcpgw.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $server := get $cfg "server" | default dict -}}
{{- if hasKey $server "listen" -}}
{{- fail "config.server.listen is set by the chart from service.port; remove it" -}}
{{- end -}}
{{- if hasKey $server "shutdown_delay" -}}
{{- fail "config.server.shutdown_delay is set by the chart from drain.shutdownDelaySeconds; remove it" -}}
{{- end -}}
{{- if hasKey $server "shutdown_timeout" -}}
{{- fail "config.server.shutdown_timeout is set by the chart from drain.shutdownTimeoutSeconds; remove it" -}}
{{- end -}}
{{- $_ := set $server "listen" (printf ":%d" (int .Values.service.port)) -}}
{{- $_ := set $server "shutdown_delay" (printf "%ds" (int .Values.drain.shutdownDelaySeconds)) -}}
{{- $_ := set $server "shutdown_timeout" (printf "%ds" (int .Values.drain.shutdownTimeoutSeconds)) -}}
{{- $_ := set $cfg "server" $server -}}
{{- if and .Values.redis.enabled .Values.redis.url -}}
{{- fail "redis.enabled and redis.url are exclusive: the bundled Redis or an external one" -}}
{{- end -}}
{{- if or .Values.redis.enabled .Values.redis.url -}}
{{- $redis := get $cfg "redis" | default dict -}}
{{- if hasKey $redis "url" -}}
{{- fail "config.redis.url is set by the chart from redis.url or redis.enabled; remove it" -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- $_ := set $redis "url" (printf "redis://%s:6379/0" (include "mcpgw.redis.fullname" .)) -}}
{{- else -}}
{{- $_ := set $redis "url" .Values.redis.url -}}
{{- end -}}
{{- if .Values.redis.auth.secretName -}}
{{- if hasKey $redis "password" -}}
{{- fail "config.redis.password is set by the chart from redis.auth.secretName; remove it" -}}
{{- end -}}
{{- $_ := set $redis "password" (dict "env" "REDIS_PASSWORD") -}}
{{- end -}}
{{- $_ := set $cfg "redis" $redis -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
