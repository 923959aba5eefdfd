{{/*
The chart's name, or nameOverride.
*/}}
{{- define "outboxd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, at most 63 characters (DNS label). A release name that already holds
the chart's name is used alone.
*/}}
{{- define "outboxd.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "outboxd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object; each template adds its app.kubernetes.io/component.
*/}}
{{- define "outboxd.labels" -}}
helm.sh/chart: {{ include "outboxd.chart" . }}
app.kubernetes.io/name: {{ include "outboxd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: outboxd
{{- end }}

{{/*
Selector labels: the daemon's pods. The migration Job's pods carry a different component, so
neither the Service nor the PodDisruptionBudget counts them.
*/}}
{{- define "outboxd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outboxd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: daemon
{{- end }}

{{/*
The service account of the daemon's pods.
*/}}
{{- define "outboxd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "outboxd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image, tag defaulting to the chart's appVersion.
*/}}
{{- define "outboxd.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Which database choice the values make: "url" or "ferriskey". Fails, naming the values, when
they make both or neither.
*/}}
{{- define "outboxd.databaseMode" -}}
{{- $db := .Values.database }}
{{- $url := $db.urlSecret.name }}
{{- $ferriskey := or $db.host $db.name $db.user $db.passwordSecret.name }}
{{- if and $url $ferriskey }}
{{- fail "database: set either database.urlSecret.name (a whole URL from a Secret) or database.host/name/user/passwordSecret (FerrisKey's DATABASE_* settings), not both" }}
{{- else if $url }}
{{- if not $db.urlSecret.key }}
{{- fail "database.urlSecret.key: name the key of the URL in Secret database.urlSecret.name" }}
{{- end }}
{{- "url" }}
{{- else if $ferriskey }}
{{- range $field := list "host" "name" "user" }}
{{- if not (get $db $field) }}
{{- fail (printf "database.%s: FerrisKey's database settings need database.host, database.name, database.user and database.passwordSecret.name; database.%s is empty" $field $field) }}
{{- end }}
{{- end }}
{{- if not $db.passwordSecret.name }}
{{- fail "database.passwordSecret.name: FerrisKey's database settings need the password from an existing Secret (database.passwordSecret.name and .key)" }}
{{- end }}
{{- "ferriskey" }}
{{- else }}
{{- fail "database: no database chosen: set database.urlSecret.name (an existing Secret holding the PostgreSQL URL) or database.host, database.name, database.user and database.passwordSecret.name (FerrisKey's DATABASE_* settings)" }}
{{- end }}
{{- end }}

{{/*
The database environment of the daemon and the migration Job. libpq's PG* variables fill in
what the URL `postgresql://` leaves out (all of it).
*/}}
{{- define "outboxd.databaseEnv" -}}
{{- $db := .Values.database }}
{{- if eq (include "outboxd.databaseMode" .) "url" }}
{{- if eq $db.urlSecret.as "file" }}
- name: OUTBOXD_DATABASE_URL_FILE
  value: /etc/outboxd/database/url
{{- else }}
- name: OUTBOXD_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db.urlSecret.name }}
      key: {{ $db.urlSecret.key }}
{{- end }}
{{- else }}
- name: OUTBOXD_DATABASE_URL
  value: "postgresql://"
- name: PGHOST
  value: {{ $db.host | quote }}
- name: PGPORT
  value: {{ $db.port | quote }}
- name: PGDATABASE
  value: {{ $db.name | quote }}
- name: PGUSER
  value: {{ $db.user | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db.passwordSecret.name }}
      key: {{ $db.passwordSecret.key }}
{{- with $db.sslMode }}
- name: PGSSLMODE
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret volume of a URL given as a file, and its mount.
*/}}
{{- define "outboxd.databaseVolumes" -}}
{{- if and (eq (include "outboxd.databaseMode" .) "url") (eq .Values.database.urlSecret.as "file") }}
- name: database-url
  secret:
    secretName: {{ .Values.database.urlSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.database.urlSecret.key }}
        path: url
{{- end }}
{{- end }}
{{- define "outboxd.databaseVolumeMounts" -}}
{{- if and (eq (include "outboxd.databaseMode" .) "url") (eq .Values.database.urlSecret.as "file") }}
- name: database-url
  mountPath: /etc/outboxd/database
  readOnly: true
{{- end }}
{{- end }}

{{/*
The config file (docs/configuration.md: one `name = value` per line, a repeatable setting once
per value), shared by `outboxd run` and `outboxd migrate`: each accepts and ignores the other's
settings.
*/}}
{{- define "outboxd.configFile" -}}
# Rendered by the outboxd chart from .Values.config and .Values.database.schema.
iam-schema = {{ .Values.database.schema }}
{{- range $name, $value := .Values.config }}
{{- range (kindIs "slice" $value | ternary $value (list $value)) }}
{{ $name }} = {{ include "outboxd.configValue" . }}
{{- end }}
{{- end }}
{{ end }}

{{/*
One config value as the daemon reads it. YAML numbers arrive as floats, which Go would print
as 1.048576e+06: whole ones are printed as integers.
*/}}
{{- define "outboxd.configValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/*
Environment of both containers: where the config file is, and the database.
*/}}
{{- define "outboxd.commonEnv" -}}
- name: OUTBOXD_CONFIG
  value: /etc/outboxd/config/outboxd.conf
{{ include "outboxd.databaseEnv" . | trim }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
