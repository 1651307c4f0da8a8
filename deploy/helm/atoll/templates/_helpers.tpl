{{- define "atoll.fullname" -}}
{{ .Release.Name }}-{{ .Values.mode }}
{{- end }}

{{- define "atoll.selectorLabels" -}}
app.kubernetes.io/name: atoll
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "atoll.labels" -}}
{{ include "atoll.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "atoll.passwordSecret" -}}
{{ .Values.store.postgres.passwordSecret.name | default (include "atoll.fullname" .) }}
{{- end }}
