{{/*
Names, labels and the pieces both Deployments share.

Helpers that concern one program take a dict:
  root       the top-level context ($)
  component  "automator" or "synchronizer"
  values     that program's values (.Values.automator or .Values.synchronizer)
*/}}

{{- define "automator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix: "<release>-<chart>", or the release name alone when it already contains the
chart name. Truncated so that "-synchronizer" still fits in 63 characters.
*/}}
{{- define "automator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 49 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "automator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of one program's objects: "<fullname>-automator" / "<fullname>-synchronizer". */}}
{{- define "automator.componentName" -}}
{{- printf "%s-%s" (include "automator.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "automator.labels" -}}
helm.sh/chart: {{ include "automator.chart" . }}
app.kubernetes.io/name: {{ include "automator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: automator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels on one program's objects. */}}
{{- define "automator.componentLabels" -}}
{{ include "automator.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of one program: stable across upgrades, so never the version. */}}
{{- define "automator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "automator.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "automator.serviceAccountName" -}}
{{- if .values.serviceAccount.create }}
{{- default (include "automator.componentName" .) .values.serviceAccount.name }}
{{- else }}
{{- default "default" .values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "automator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* Service target of the metrics port: the http port when one listener serves both. */}}
{{- define "automator.metricsTargetPort" -}}
{{- if eq (int .values.ports.metrics) (int .values.ports.http) }}http{{ else }}metrics{{ end }}
{{- end }}

{{/* Container ports of one program. */}}
{{- define "automator.containerPorts" -}}
- name: http
  containerPort: {{ .values.ports.http }}
  protocol: TCP
{{- if ne (int .values.ports.metrics) (int .values.ports.http) }}
- name: metrics
  containerPort: {{ .values.ports.metrics }}
  protocol: TCP
{{- end }}
{{- end }}

{{/*
Environment both programs read the same way. HOME and the cache directory match the emptyDirs
mounted below; the image sets the same values, repeated here so that the two cannot drift apart.
*/}}
{{- define "automator.commonEnv" -}}
- name: HOME
  value: /home/automator
- name: AUTOMATOR_CACHE_DIR
  value: /var/cache/automator
- name: AUTOMATOR_LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: AUTOMATOR_LOG_FORMAT
  value: {{ .root.Values.logFormat | quote }}
{{- if .values.git.sshSecret.name }}
- name: GIT_SSH_COMMAND
  value: "ssh -i /etc/automator/git-ssh/identity -o UserKnownHostsFile=/etc/automator/git-ssh/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
{{- end }}
{{- end }}

{{/* Writable directories (the root filesystem is read-only) and mounted Secrets. */}}
{{- define "automator.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/automator
- name: cache
  mountPath: /var/cache/automator
{{- if .values.git.tokenSecret.name }}
- name: git-token
  mountPath: /etc/automator/git-token
  readOnly: true
{{- end }}
{{- if .values.git.sshSecret.name }}
- name: git-ssh
  mountPath: /etc/automator/git-ssh
  readOnly: true
{{- end }}
{{- if .values.webhookSecret.name }}
- name: webhook
  mountPath: /etc/automator/webhook
  readOnly: true
{{- end }}
{{- with .values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "automator.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .values.tmpSizeLimit }}
- name: home
  emptyDir:
    sizeLimit: 64Mi
- name: cache
  emptyDir:
    sizeLimit: {{ .values.cacheSizeLimit }}
{{- if .values.git.tokenSecret.name }}
- name: git-token
  secret:
    secretName: {{ .values.git.tokenSecret.name }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
    items:
      - key: {{ .values.git.tokenSecret.key }}
        path: {{ .values.git.tokenSecret.key }}
{{- end }}
{{- if .values.git.sshSecret.name }}
- name: git-ssh
  secret:
    secretName: {{ .values.git.sshSecret.name }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
    items:
      - key: identity
        path: identity
      - key: known_hosts
        path: known_hosts
{{- end }}
{{- if .values.webhookSecret.name }}
- name: webhook
  secret:
    secretName: {{ .values.webhookSecret.name }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
    items:
      - key: {{ .values.webhookSecret.key }}
        path: {{ .values.webhookSecret.key }}
{{- end }}
{{- with .values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod settings both Deployments share. */}}
{{- define "automator.podCommon" -}}
serviceAccountName: {{ include "automator.serviceAccountName" . }}
automountServiceAccountToken: {{ .values.serviceAccount.automountToken }}
{{- /* Service links would inject AUTOMATOR_*_PORT variables that collide with the programs' own env prefix. */}}
enableServiceLinks: false
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Namespaces the synchronizer manages in namespaced scope (the release namespace by default), comma-joined. */}}
{{- define "automator.syncNamespaces" -}}
{{- $ns := .Values.synchronizer.rbac.namespaces | default (list .Release.Namespace) }}
{{- join "," (uniq $ns) }}
{{- end }}

{{/* Name of the synchronizer's inventory ConfigMap/Secret in the release namespace. */}}
{{- define "automator.inventoryName" -}}
{{- $ctx := dict "root" . "component" "synchronizer" }}
{{- .Values.synchronizer.inventoryName | default (printf "%s-inventory" (include "automator.componentName" $ctx)) }}
{{- end }}
