{{/*
Notifications (`--notifications FILE`, README: Notifications) for one program. Each helper takes
the program's helper dict (root, component, values); `<program>.notifications` holds:
  enabled            mount a notifications file and point the program at it
  config             the document's `spec`; the chart writes the whole document into a ConfigMap
  existingConfigMap  a ConfigMap of the user's with key notifications.yaml, instead of `config`
  secrets            existing Secrets, each mounted whole at /etc/automator/notify/<name>/, for the
                     urlFile and secretFile paths the document names
*/}}

{{/* Where the file is mounted; the program's NOTIFICATIONS variable names it. */}}
{{- define "automator.notificationsDir" -}}
/etc/automator/notifications
{{- end }}

{{/* The ConfigMap holding notifications.yaml: the user's, or "<fullname>-<program>-notifications". */}}
{{- define "automator.notificationsConfigMapName" -}}
{{- .values.notifications.existingConfigMap | default (printf "%s-notifications" (include "automator.componentName" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/*
Fails the install when notifications are on but say nothing to load, or say it twice; renders
nothing otherwise.
*/}}
{{- define "automator.notificationsCheck" -}}
{{- $n := .values.notifications }}
{{- if $n.enabled }}
{{- if and $n.existingConfigMap $n.config }}
{{- fail (printf "%s.notifications: set config or existingConfigMap, not both (existingConfigMap %q holds the whole notifications.yaml)" .component $n.existingConfigMap) }}
{{- end }}
{{- if not (or $n.existingConfigMap (get ($n.config | default dict) "notifiers")) }}
{{- fail (printf "%s.notifications.enabled needs config.notifiers (the notifications file's spec, README: Notifications), e.g. --set-json '%s.notifications.config={\"notifiers\":[{\"name\":\"ops\",\"type\":\"webhook\",\"url\":\"https://hooks.example.com/automator\"}]}', or existingConfigMap (a ConfigMap with key notifications.yaml)" .component .component) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The whole notifications document the chart writes from `config`. */}}
{{- define "automator.notificationsDocument" -}}
apiVersion: automator.dev/v1alpha1
kind: Notifications
spec:
  {{- toYaml .values.notifications.config | nindent 2 }}
{{- end }}

{{/* The ConfigMap the chart creates from `config` (nothing with existingConfigMap). */}}
{{- define "automator.notificationsConfigMap" -}}
{{- $n := .values.notifications }}
{{- if and .values.enabled $n.enabled (not $n.existingConfigMap) }}
{{- include "automator.notificationsCheck" . }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "automator.notificationsConfigMapName" . }}
  namespace: {{ include "automator.namespace" .root }}
  labels:
    {{- include "automator.componentLabels" . | nindent 4 }}
data:
  notifications.yaml: |
    {{- include "automator.notificationsDocument" . | nindent 4 }}
{{- end }}
{{- end }}

{{/* Pod annotation: a changed document rolls the pod (the programs read it at start-up). */}}
{{- define "automator.notificationsChecksum" -}}
{{- $n := .values.notifications }}
{{- if and $n.enabled (not $n.existingConfigMap) }}
checksum/notifications: {{ include "automator.notificationsDocument" . | sha256sum }}
{{- end }}
{{- end }}

{{/* AUTOMATOR_NOTIFICATIONS / AUTOMATOR_SYNC_NOTIFICATIONS: the mounted file. */}}
{{- define "automator.notificationsEnv" -}}
{{- if .values.notifications.enabled }}
{{- include "automator.notificationsCheck" . }}
- name: {{ include "automator.envPrefix" . }}NOTIFICATIONS
  value: {{ printf "%s/notifications.yaml" (include "automator.notificationsDir" .) | quote }}
{{- end }}
{{- end }}

{{- define "automator.notificationsVolumeMounts" -}}
{{- $n := .values.notifications }}
{{- if $n.enabled }}
- name: notifications
  mountPath: {{ include "automator.notificationsDir" . }}
  readOnly: true
{{- range $i, $name := $n.secrets }}
- name: notify-secret-{{ $i }}
  mountPath: /etc/automator/notify/{{ $name }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/*
The document's ConfigMap, and each Secret whole (every key a file, re-read by the program when
the kubelet updates it after a rotation), readable by the pod's fsGroup and no one else.
*/}}
{{- define "automator.notificationsVolumes" -}}
{{- $n := .values.notifications }}
{{- if $n.enabled }}
- name: notifications
  configMap:
    name: {{ include "automator.notificationsConfigMapName" . }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
    items:
      - key: notifications.yaml
        path: notifications.yaml
{{- range $i, $name := $n.secrets }}
- name: notify-secret-{{ $i }}
  secret:
    secretName: {{ $name }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
{{- end }}
{{- end }}
{{- end }}
