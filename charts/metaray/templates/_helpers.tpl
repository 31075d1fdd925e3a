{{/* The name of the release's objects: the release name when it contains "metaray". */}}
{{- define "metaray.fullname" -}}
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

{{/* What metacontroller/kustomization.yaml puts on every object, plus Helm's own labels. */}}
{{- define "metaray.labels" -}}
app.kubernetes.io/name: metaray
{{ include "metaray.partOfLabels" . }}
{{- end -}}

{{/* The labels of objects that are about Ray's pods rather than metaray's (the PodMonitor). */}}
{{- define "metaray.partOfLabels" -}}
app.kubernetes.io/part-of: metaray
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The hook's pods. The same as the kustomize install's, so that one can replace the other
     (a Deployment's selector is immutable). */}}
{{- define "metaray.selectorLabels" -}}
app.kubernetes.io/name: metaray
app.kubernetes.io/component: sync-hook
{{- end -}}

{{/* The toggle of a CompositeController, by its parent resource. A registration without a
     toggle fails the render, so that a new controller gets one. */}}
{{- define "metaray.controllerEnabled" -}}
{{- /* A RayCronJob only creates RayJobs: without the RayJob controller nothing would run them. */ -}}
{{- $toggles := dict "rayclusters" true "rayjobs" .Values.rayjob.enabled "raycronjobs" (and .Values.rayjob.enabled .Values.raycronjob.enabled) "rayservices" .Values.rayservice.enabled -}}
{{- if not (hasKey $toggles .resource) -}}
{{- fail (printf "files/controllers registers %s, which has no toggle in values.yaml" .resource) -}}
{{- end -}}
{{- if get $toggles .resource }}true{{ end -}}
{{- end -}}

{{/* The enabled CompositeControllers as YAML {items: [...]}: the kustomize install's
     registrations (files/controllers, copied by scripts/sync-chart) with this release's hook
     Service, name and labels, and the optional child types. */}}
{{- define "metaray.controllers" -}}
{{- $root := . -}}
{{- $fullname := include "metaray.fullname" . -}}
{{- $items := list -}}
{{- range $path, $_ := .Files.Glob "files/controllers/*.yaml" -}}
{{- $cc := $root.Files.Get $path | fromYaml -}}
{{- $resource := $cc.spec.parentResource.resource -}}
{{- if include "metaray.controllerEnabled" (dict "resource" $resource "Values" $root.Values) -}}
{{- $_ := set $cc.metadata "name" (printf "%s%s" $fullname (trimPrefix "metaray" $cc.metadata.name)) -}}
{{- $_ := set $cc.metadata "labels" (include "metaray.labels" $root | fromYaml) -}}
{{- range $hook := values $cc.spec.hooks -}}
{{- $_ := set $hook.webhook "service" (dict "name" $fullname "namespace" $root.Release.Namespace "port" $root.Values.service.port "protocol" "http") -}}
{{- end -}}
{{- $children := $cc.spec.childResources -}}
{{- if and (eq $resource "rayclusters") $root.Values.mtls.enabled -}}
{{- range $kind := list "issuers" "certificates" -}}
{{- $children = append $children (dict "apiVersion" "cert-manager.io/v1" "resource" $kind "updateStrategy" (dict "method" "InPlace")) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $resource "rayservices") $root.Values.gatewayAPI.enabled -}}
{{- range $kind := list "gateways" "httproutes" -}}
{{- $children = append $children (dict "apiVersion" "gateway.networking.k8s.io/v1" "resource" $kind "updateStrategy" (dict "method" "InPlace")) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cc.spec "childResources" $children -}}
{{- $items = append $items $cc -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}
