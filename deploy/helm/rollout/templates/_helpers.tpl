{{/* Names and labels shared by every template. */}}

{{- define "rollout.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rollout.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollout.labels" -}}
app.kubernetes.io/name: {{ include "rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "rollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollout.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollout.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "rollout.slackSecret" -}}
{{- default (printf "%s-slack" (include "rollout.fullname" .)) .Values.slack.secretName -}}
{{- end -}}

{{/* The daemon's rules on namespaced objects (deploy/base/rbac.yaml, ClusterRole rollout): one
list for the ClusterRole and every per-namespace Role. */}}
{{- define "rollout.rules" -}}
- apiGroups: [delivery.rollout.dev]
  resources: [rollouts]
  verbs: [get, list, watch, patch, create]
- apiGroups: [delivery.rollout.dev]
  resources: [rollouts/status]
  verbs: [get, patch, update]
- apiGroups: [delivery.rollout.dev]
  resources: [rolloutcommands]
  verbs: [get, list, watch, create, delete]
- apiGroups: [delivery.rollout.dev]
  resources: [rolloutcommands/status]
  verbs: [patch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [appmesh.k8s.aws]
  resources: [gatewayroutes]
  verbs: [get, list, watch, patch, create, delete]
- apiGroups: [appmesh.k8s.aws]
  resources: [virtualrouters]
  verbs: [get, list, watch, patch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, patch]
{{- end -}}

{{/* A subject list naming the daemon's ServiceAccount. */}}
{{- define "rollout.subjects" -}}
- kind: ServiceAccount
  name: {{ include "rollout.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Environment entries for one Prometheus endpoint's credentials, from a Secret:
(dict "prefix" "ROLLOUT_PROMETHEUS__" "auth" .Values.prometheus.auth "field" "prometheus.auth"). */}}
{{- define "rollout.prometheusAuthEnv" -}}
{{- $auth := .auth | default dict }}
{{- $type := $auth.type | default "none" }}
{{- if eq $type "bearer" }}
- name: {{ .prefix }}BEARER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.secretName is required with auth.type bearer" .field) $auth.secretName }}
      key: {{ $auth.bearerTokenKey | default "token" }}
{{- else if eq $type "basic" }}
- name: {{ .prefix }}USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.secretName is required with auth.type basic" .field) $auth.secretName }}
      key: {{ $auth.usernameKey | default "username" }}
- name: {{ .prefix }}PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $auth.secretName }}
      key: {{ $auth.passwordKey | default "password" }}
{{- else if ne $type "none" }}
{{- fail (printf "%s.type must be none, bearer or basic, not %q" .field $type) }}
{{- end }}
{{- end -}}

