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

{{/* Namespace of every namespaced object: namespaceOverride, else the release namespace. */}}
{{- define "automator.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The PodDisruptionBudget API: policy/v1 where the cluster serves it (Kubernetes 1.21+),
policy/v1beta1 before. Installing asks the cluster; `helm template` without --api-versions
falls back to --kube-version.
*/}}
{{- define "automator.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}
{{- "policy/v1" }}
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" }}
{{- "policy/v1beta1" }}
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}
{{- "policy/v1" }}
{{- else }}
{{- "policy/v1beta1" }}
{{- end }}
{{- end }}

{{/*
A program's repository URL, or a failed install saying what to set. The synchronizer applies
the repository the automator opens pull requests against unless told otherwise, so its URL
defaults to the automator's. Only an enabled program needs one: `<program>.enabled=false` is the
other way out.
*/}}
{{- define "automator.gitUrl" -}}
{{- $root := .root }}
{{- if eq .component "automator" }}
{{- required "automator.git.url is required: the config repository the automator rewrites and opens pull requests against, e.g. --set automator.git.url=https://github.com/acme/config.git (or --set automator.enabled=false)" .values.git.url }}
{{- else }}
{{- required "synchronizer.git.url is required: the config repository the synchronizer applies (it defaults to automator.git.url), e.g. --set synchronizer.git.url=https://github.com/acme/config.git" (.values.git.url | default $root.Values.automator.git.url) }}
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

{{/* Environment variable prefix of one program's flags: AUTOMATOR_ (run) or AUTOMATOR_SYNC_ (sync). */}}
{{- define "automator.envPrefix" -}}
{{- if eq .component "synchronizer" }}AUTOMATOR_SYNC_{{ else }}AUTOMATOR_{{ end }}
{{- end }}

{{/* The one container port: webhooks, /healthz, /readyz and /metrics. */}}
{{- define "automator.containerPorts" -}}
- name: http
  containerPort: {{ .values.port }}
  protocol: TCP
{{- end }}

{{/*
Environment both programs take under their own prefix: where to listen, where to cache clones,
which repository, and the files holding credentials (never the credentials themselves). HOME
matches the emptyDir mounted below; the image sets the same value, repeated here so that the two
cannot drift apart.
*/}}
{{- define "automator.commonEnv" -}}
{{- $p := include "automator.envPrefix" . }}
{{- $git := .values.git }}
- name: HOME
  value: /home/automator
- name: AUTOMATOR_LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: AUTOMATOR_LOG_FORMAT
  value: {{ .root.Values.logFormat | quote }}
- name: {{ $p }}LISTEN
  value: {{ printf "%s:%v" (include "automator.hostForPort" .root.Values.listenHost) (int .values.port) | quote }}
- name: {{ $p }}CACHE_DIR
  value: /var/cache/automator
- name: {{ $p }}GIT_URL
  value: {{ include "automator.gitUrl" . | quote }}
- name: {{ $p }}BRANCH
  value: {{ $git.branch | quote }}
- name: {{ $p }}INTERVAL
  value: {{ .values.interval | quote }}
{{- if $git.tokenSecret.name }}
- name: {{ $p }}GIT_USERNAME
  value: {{ $git.username | quote }}
- name: {{ $p }}GIT_TOKEN_FILE
  value: /etc/automator/git-token/{{ $git.tokenSecret.key }}
{{- end }}
{{- if $git.sshSecret.name }}
- name: {{ $p }}SSH_KEY
  value: /etc/automator/git-ssh/identity
- name: {{ $p }}SSH_KNOWN_HOSTS
  value: /etc/automator/git-ssh/known_hosts
{{- end }}
{{- if .values.webhookSecret.name }}
- name: {{ $p }}WEBHOOK_SECRET_FILE
  value: /etc/automator/webhook/{{ .values.webhookSecret.key }}
{{- end }}
{{- end }}

{{/* An IPv6 host needs brackets in host:port. */}}
{{- define "automator.hostForPort" -}}
{{- if contains ":" . }}[{{ . }}]{{ else }}{{ . }}{{ end }}
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
{{- end }}

{{/*
An Ingress routing `paths` ({path, pathType}) on each of the ingress values' hosts (any host when
there are none) to one port of a program's Service, and to nothing else. Takes a dict:
  ctx      the program's helper dict (root, component, values)
  name     the Ingress's name
  port     the name of the Service port the paths lead to
  ingress  className, annotations and tls (rendered through `tpl`), labels, hosts
  paths    the paths
*/}}
{{- define "automator.ingress" -}}
{{- $root := .ctx.root }}
{{- $ing := .ingress }}
{{- $service := include "automator.componentName" .ctx }}
{{- $port := .port }}
{{- $paths := .paths }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .name }}
  namespace: {{ include "automator.namespace" $root }}
  labels:
    {{- include "automator.componentLabels" .ctx | nindent 4 }}
    {{- with $ing.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $ing.annotations }}
  annotations:
    {{- range $key, $value := . }}
    {{ $key }}: {{ tpl (toString $value) $root | quote }}
    {{- end }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  rules:
    {{- range $host := $ing.hosts | default (list "") }}
    - {{- with $host }}
      host: {{ tpl . $root | quote }}
      {{- end }}
      http:
        paths:
          {{- range $paths }}
          - path: {{ .path }}
            pathType: {{ .pathType | default "Prefix" }}
            backend:
              service:
                name: {{ $service }}
                port:
                  name: {{ $port }}
          {{- end }}
    {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- tpl (toYaml .) $root | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Name of the automator's dashboard Ingress: "<fullname>-automator-dashboard". */}}
{{- define "automator.dashboardIngressName" -}}
{{- printf "%s-dashboard" (include "automator.componentName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The dashboard's own paths on the automator's `port`, and nothing else that listens there
(/metrics, /status, /healthz, /readyz).
*/}}
{{- define "automator.dashboardPaths" -}}
- path: /
  pathType: Exact
- path: /policies
  pathType: Prefix
- path: /static
  pathType: Prefix
- path: /login
  pathType: Exact
- path: /logout
  pathType: Exact
{{- end }}

{{/* A Secret volume exposing only the listed keys, readable by the pod's fsGroup and no one else. */}}
{{- define "automator.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 288  # 0440: owner and group (fsGroup) may read
    items:
      {{- range $key := .keys }}
      - key: {{ $key }}
        path: {{ get $.paths $key | default $key }}
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
{{- with .values.git.tokenSecret }}
{{- if .name }}
{{ include "automator.secretVolume" (dict "name" "git-token" "secretName" .name "keys" (list .key) "paths" dict) }}
{{- end }}
{{- end }}
{{- with .values.git.sshSecret }}
{{- if .name }}
{{ include "automator.secretVolume" (dict "name" "git-ssh" "secretName" .name "keys" (list "identity" "known_hosts") "paths" dict) }}
{{- end }}
{{- end }}
{{- with .values.webhookSecret }}
{{- if .name }}
{{ include "automator.secretVolume" (dict "name" "webhook" "secretName" .name "keys" (list .key) "paths" dict) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod settings both Deployments share. */}}
{{- define "automator.podCommon" -}}
serviceAccountName: {{ include "automator.serviceAccountName" . }}
automountServiceAccountToken: {{ or .values.serviceAccount.automountToken (and (eq .component "automator") .values.clusterReport.enabled) (eq (include "automator.leaderElect" .) "true") }}
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
{{- /* A constraint without a labelSelector spreads this program's pods. */}}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range $c := . }}
  {{- if not (hasKey $c "labelSelector") }}
  {{- $c = set (deepCopy $c) "labelSelector" (dict "matchLabels" (include "automator.selectorLabels" $ | fromYaml)) }}
  {{- end }}
  - {{- toYaml $c | nindent 4 }}
  {{- end }}
{{- end }}
{{- with .values.initContainers }}
initContainers:
  {{- tpl (toYaml .) $.root | nindent 2 }}
{{- end }}
{{- end }}

{{/* Namespaces the synchronizer manages in namespaced scope (the chart's namespace by default), comma-joined. */}}
{{- define "automator.syncNamespaces" -}}
{{- $ns := .Values.synchronizer.rbac.namespaces | default (list (include "automator.namespace" .)) }}
{{- join "," (uniq $ns) }}
{{- end }}

{{/* The synchronizer's identity; its inventory is the ConfigMap automator-sync-<name>. */}}
{{- define "automator.syncName" -}}
{{- .Values.synchronizer.name | default .Release.Name }}
{{- end }}

{{/* Namespace for objects that name none: set, else the first managed namespace (namespaced scope), else "default". */}}
{{- define "automator.syncDefaultNamespace" -}}
{{- $s := .Values.synchronizer }}
{{- if $s.defaultNamespace }}
{{- $s.defaultNamespace }}
{{- else if eq $s.rbac.scope "namespaced" }}
{{- first (splitList "," (include "automator.syncNamespaces" .)) }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}


{{/*
Leader election of one program: "true" when on, empty when off. `leaderElection.enabled` is
"auto" (on when `replicas` > 1), true or false; a key removed with null counts as auto.
*/}}
{{- define "automator.leaderElect" -}}
{{- $enabled := toString .values.leaderElection.enabled }}
{{- if or (eq $enabled "true") (and (ne $enabled "false") (gt (int .values.replicas) 1)) }}true{{ end }}
{{- end }}

{{/*
The Lease the program's replicas share: "<fullname>-automator" for `automator run` (the chart
passes it as AUTOMATOR_LEASE_NAME, so two releases in one namespace never share one), and
"automator-sync-<name>" for `automator sync`, which derives it from its own name.
*/}}
{{- define "automator.leaseName" -}}
{{- if eq .component "synchronizer" }}
{{- printf "automator-sync-%s" (include "automator.syncName" .root) }}
{{- else }}
{{- include "automator.componentName" . }}
{{- end }}
{{- end }}

{{/*
Replicas that cannot work: several without leader election would all work at once, and the
automator's state claim cannot follow several pods.
*/}}
{{- define "automator.replicasCheck" -}}
{{- $replicas := int .values.replicas }}
{{- if and (gt $replicas 1) (eq (toString .values.leaderElection.enabled) "false") }}
{{- $why := ternary "would race each other's applies and prunes" "would scan and open the same pull requests, each of them" (eq .component "synchronizer") }}
{{- fail (printf "%s.replicas is %d with %s.leaderElection.enabled=false: %d replicas %s. Set %s.leaderElection.enabled to auto (or true), or %s.replicas to 1" .component $replicas .component $replicas $why .component .component) }}
{{- end }}
{{- if and (eq .component "automator") (gt (int (default 1 .values.shards)) 1) (not (include "automator.leaderElect" .)) }}
{{- fail (printf "automator.shards is %d without leader election: each shard is held through a Lease. Set automator.leaderElection.enabled to true (or auto with more than one replica), or automator.shards to 1" (int .values.shards)) }}
{{- end }}
{{- if and (eq .component "automator") (gt $replicas 1) .values.state.enabled .values.state.persistence.enabled }}
{{- fail (printf "automator.replicas is %d with automator.state.persistence.enabled: every replica would mount the one state claim, and a ReadWriteOnce claim cannot be mounted by pods on different nodes. Set automator.state.persistence.enabled=false (each replica keeps its state on an emptyDir; a new leader rebuilds it from git and the forge), or automator.replicas to 1" $replicas) }}
{{- end }}
{{- end }}

{{/*
The Deployment strategy: RollingUpdate when the replicas take turns through the Lease (a new pod
stands by until the old one hands the Lease over); Recreate otherwise, and for the automator's
state claim, which the new pod could not mount while the old one holds it.
*/}}
{{- define "automator.strategy" -}}
{{- $claim := and (eq .component "automator") .values.state.enabled .values.state.persistence.enabled }}
{{- if and (include "automator.leaderElect" .) (not $claim) }}RollingUpdate{{ else }}Recreate{{ end }}
{{- end }}

{{/*
Leader election's environment: on, the Lease duration, this pod's name (the identity it writes
into the Lease), and for `automator run` the Lease's name and namespace (the synchronizer derives
both from its name and inventory namespace).
*/}}
{{- define "automator.leaderElectionEnv" -}}
{{- if include "automator.leaderElect" . }}
{{- $p := include "automator.envPrefix" . }}
# Leader election: only the holder of the Lease works; the other replicas stand by, Ready.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: {{ $p }}LEADER_ELECT
  value: "true"
- name: {{ $p }}LEASE_DURATION
  value: {{ .values.leaderElection.leaseDuration | quote }}
{{- if eq .component "automator" }}
# where the holder takes webhooks (http://$POD_IP:webhookPort): standbys pass theirs on to it
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: AUTOMATOR_LEASE_NAME
  value: {{ include "automator.leaseName" . | quote }}
- name: AUTOMATOR_LEASE_NAMESPACE
  value: {{ include "automator.namespace" .root | quote }}
{{- if gt (int (default 1 .values.shards)) 1 }}
# shards: each held through its own Lease by one replica
- name: AUTOMATOR_SHARDS
  value: {{ .values.shards | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Whether the program gets a PodDisruptionBudget: `podDisruptionBudget.enabled` true, or "auto"
(the default) with more than one replica.
*/}}
{{- define "automator.pdbEnabled" -}}
{{- $enabled := toString .values.podDisruptionBudget.enabled }}
{{- if or (eq $enabled "true") (and (ne $enabled "false") (gt (int .values.replicas) 1)) }}true{{ end }}
{{- end }}

{{/*
`automator.promotion.prometheus` as --prometheus takes it: NAME=URL pairs, comma-separated, in
name order.
*/}}
{{- define "automator.prometheusFlag" -}}
{{- $pairs := list }}
{{- range $name := keys . | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $name (index $ $name)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
