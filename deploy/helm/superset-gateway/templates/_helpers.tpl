{{- define "sgw.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sgw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sgw.labels" -}}
{{ include "sgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sgw.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "sgw.fullname" .) -}}
{{- end -}}

{{/* "true" when the Secret holds the optional key .key (a value name):
     the chart's own Secret when the value is set, an existing one when
     secrets.existingSecretHas lists it. */}}
{{- define "sgw.has" -}}
{{- $s := .root.Values.secrets -}}
{{- if $s.existingSecret -}}
{{- if has .key $s.existingSecretHas -}}true{{- end -}}
{{- else if index $s.values .key -}}true{{- end -}}
{{- end -}}

{{/* The config file: the operator's config with the keys the chart owns. */}}
{{- define "sgw.config" -}}
{{- $dir := "/etc/superset-gateway/secrets/" -}}
{{- $c := deepCopy .Values.config -}}
{{- $_ := set $c "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- $_ := set $c "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port))) -}}
{{- $sup := deepCopy (default dict $c.superset) -}}
{{- $_ := set $sup "secret_key_file" (print $dir "superset_secret_key") -}}
{{- if include "sgw.has" (dict "root" . "key" "guestTokenSecret") -}}
{{- $_ := set $sup "guest_token_secret_file" (print $dir "superset_guest_token_secret") -}}
{{- end -}}
{{- $_ := set $c "superset" $sup -}}
{{- $store := deepCopy (default dict $c.store) -}}
{{- $_ := set $store "data_dir" "/data" -}}
{{- $_ := set $c "store" $store -}}
{{- $sess := deepCopy (default dict $c.session) -}}
{{- $_ := set $sess "cookie_keys_file" (print $dir "gateway_cookie_keys") -}}
{{- $_ := set $c "session" $sess -}}
{{- if include "sgw.has" (dict "root" . "key" "accessTokenPepper") -}}
{{- $at := deepCopy (default dict $c.access_tokens) -}}
{{- $_ := set $at "pepper_file" (print $dir "gateway_access_token_pepper") -}}
{{- $_ := set $c "access_tokens" $at -}}
{{- end -}}
{{- if include "sgw.has" (dict "root" . "key" "adminTokens") -}}
{{- $ad := deepCopy (default dict $c.admin) -}}
{{- $_ := set $ad "tokens_file" (print $dir "gateway_admin_tokens") -}}
{{- $_ := set $c "admin" $ad -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}
